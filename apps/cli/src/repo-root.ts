import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The monorepo root: the nearest directory above `from` that holds pnpm-workspace.yaml.
 * `up` starts `apps/<app>/dist/main.js` and keeps NATS data in `.blixard/`, both relative to it,
 * so the command works from any working directory (and from `pnpm run up`).
 */
export function findRepoRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no pnpm-workspace.yaml above ${from}: run blixard from inside the repository`);
    dir = parent;
  }
}
