// Run by k8s/docker/base.Dockerfile after `pnpm install --prod`, from the workspace root. It removes
// what production code can never load but pnpm installs anyway:
//
// 1. Optional peer dependencies. The lockfile resolved @prisma/client's optional peers (`prisma`,
//    the CLI, and `typescript`, with the CLI's own dependencies) because the workspace has them
//    as devDependencies, and `--prod` keeps what the lockfile resolved. Kept is exactly what is
//    reachable from the workspace packages' `dependencies` through `dependencies`,
//    `optionalDependencies` and required (non-optional) `peerDependencies`.
// 2. Prisma's query compilers and engines for the databases the schema does not use (the runtime
//    ships one set per database; ours is the datasource provider in prisma/schema.prisma).
//
// Prints what it removed and the size saved; fails when nothing is left to keep (a broken tree).
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const root = process.cwd();
const store = path.join(root, 'node_modules', '.pnpm');

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function sizeOf(p) {
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const e of fs.readdirSync(p)) total += sizeOf(path.join(p, e));
  return total;
}

/** The real directory `name` resolves to from a package directory (a pnpm symlink), if any. */
function resolveFrom(nodeModules, name) {
  try {
    return fs.realpathSync(path.join(nodeModules, name));
  } catch {
    return undefined; // an optional dependency that was not installed
  }
}

/** node_modules directory that holds `pkgDir` and its dependencies' symlinks (pnpm layout). */
function siblingsOf(pkgDir, name) {
  return path.resolve(pkgDir, ...name.split('/').map(() => '..'));
}

function runtimeDeps(manifest) {
  const optionalPeers = new Set(Object.entries(manifest.peerDependenciesMeta ?? {}).filter(([, m]) => m && m.optional).map(([n]) => n));
  return [
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.optionalDependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}).filter((n) => !optionalPeers.has(n)),
  ];
}

// Workspace packages: the root and apps/*, libs/* (their own node_modules hold their links).
const workspaceDirs = [root];
for (const group of ['apps', 'libs']) {
  const dir = path.join(root, group);
  if (!fs.existsSync(dir)) continue;
  for (const e of fs.readdirSync(dir)) {
    if (fs.existsSync(path.join(dir, e, 'package.json'))) workspaceDirs.push(path.join(dir, e));
  }
}

const reached = new Set();
const queue = [];
for (const dir of workspaceDirs) {
  for (const name of runtimeDeps(readJson(path.join(dir, 'package.json')))) {
    const real = resolveFrom(path.join(dir, 'node_modules'), name);
    if (real) queue.push([real, name]);
  }
}
while (queue.length > 0) {
  const [dir, name] = queue.pop();
  if (reached.has(dir)) continue;
  reached.add(dir);
  const manifestFile = path.join(dir, 'package.json');
  if (!fs.existsSync(manifestFile)) continue;
  const nodeModules = dir.startsWith(store + path.sep) ? siblingsOf(dir, name) : path.join(dir, 'node_modules');
  for (const dep of runtimeDeps(readJson(manifestFile))) {
    const real = resolveFrom(nodeModules, dep);
    if (real) queue.push([real, dep]);
  }
}

// A store entry (.pnpm/<key>) is kept when any package inside it was reached.
const keptEntries = new Set();
for (const dir of reached) {
  if (dir.startsWith(store + path.sep)) keptEntries.add(path.relative(store, dir).split(path.sep)[0]);
}
if (keptEntries.size === 0) {
  console.error('prune-node-modules: nothing reachable from the workspace dependencies; is this the workspace root after `pnpm install`?');
  process.exit(1);
}

let saved = 0;
const removed = [];
for (const entry of fs.readdirSync(store)) {
  if (entry === 'node_modules' || entry.startsWith('.') || entry.endsWith('.yaml') || keptEntries.has(entry)) continue;
  const p = path.join(store, entry);
  saved += sizeOf(p);
  fs.rmSync(p, { recursive: true, force: true });
  removed.push(entry);
}

// Prisma's per-database runtime files for the databases we do not use.
const schema = fs.readFileSync(path.join(root, 'prisma', 'schema.prisma'), 'utf8');
const provider = /datasource\s+\w+\s*\{[^}]*provider\s*=\s*"([^"]+)"/.exec(schema)?.[1];
const databases = ['postgresql', 'cockroachdb', 'mysql', 'sqlite', 'sqlserver'];
if (!provider || !databases.includes(provider)) {
  console.error(`prune-node-modules: unknown datasource provider ${JSON.stringify(provider)} in prisma/schema.prisma`);
  process.exit(1);
}
const prismaRuntime = resolveFrom(path.join(root, 'node_modules'), '@prisma/client');
if (prismaRuntime) {
  const runtimeDir = path.join(prismaRuntime, 'runtime');
  for (const file of fs.readdirSync(runtimeDir)) {
    const db = /^query_(?:compiler|engine)_bg\.([a-z]+)\./.exec(file)?.[1];
    if (db && db !== provider) {
      saved += sizeOf(path.join(runtimeDir, file));
      fs.rmSync(path.join(runtimeDir, file));
    }
  }
}

// Links left pointing at removed entries (e.g. @prisma/client's link to the CLI).
function removeDanglingLinks(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) {
      if (!fs.existsSync(p)) fs.unlinkSync(p);
    } else if (e.isDirectory()) {
      removeDanglingLinks(p);
    }
  }
}
for (const dir of workspaceDirs) {
  const nm = path.join(dir, 'node_modules');
  if (fs.existsSync(nm)) removeDanglingLinks(nm);
}

console.log(`prune-node-modules: removed ${removed.length} packages not reachable at runtime (${removed.join(', ') || 'none'}) and Prisma runtimes for databases other than ${provider}: ${(saved / 1e6).toFixed(1)} MB`);
