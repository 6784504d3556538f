import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startTracing } from './sdk';

/**
 * `import '@blixard/telemetry/register'` — the first line of every service's main.ts. Starts
 * tracing (when OTEL_EXPORTER_OTLP_ENDPOINT is set) before Nest, pg or http are loaded, so their
 * instrumentation can patch them. The service name is the app's folder (`apps/<name>/dist/main.js`)
 * unless OTEL_SERVICE_NAME says otherwise; the version is the app's package.json version.
 */
function appOf(mainFile: string | undefined): { name: string; version?: string } {
  if (!mainFile) return { name: 'blixard' };
  const m = /[\\/]apps[\\/]([^\\/]+)[\\/]/.exec(mainFile);
  let dir = path.dirname(mainFile);
  for (let i = 0; i < 4; i++) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: unknown }).version;
        return { name: m?.[1] ?? 'blixard', version: typeof version === 'string' ? version : undefined };
      } catch {
        break;
      }
    }
    dir = path.dirname(dir);
  }
  return { name: m?.[1] ?? 'blixard' };
}

const app = appOf(require.main?.filename);
try {
  startTracing({ serviceName: app.name, serviceVersion: app.version });
} catch (err) {
  // A bad OTEL_* value stops the service at start, like any other invalid configuration.
  process.stderr.write(`${app.name} failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}
