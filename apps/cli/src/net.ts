import { connect } from 'node:net';

/** Host and port of a server named by a URL such as DATABASE_URL or NATS_URL. */
export interface Endpoint {
  host: string;
  port: number;
}

/** `postgresql://u@h:5432/db` → { host, port }; `defaultPort` when the URL names none. */
export function endpointOf(url: string, defaultPort: number): Endpoint {
  const u = new URL(url);
  // URL keeps the brackets of an IPv6 literal; net.connect wants the bare address.
  const host = (u.hostname || '127.0.0.1').replace(/^\[(.*)\]$/, '$1');
  return { host, port: u.port ? Number(u.port) : defaultPort };
}

/** Whether `host` is this machine, i.e. whether starting a server here could make it reachable. */
export function isLocalHost(host: string): boolean {
  return ['127.0.0.1', 'localhost', '::1', '0.0.0.0'].includes(host);
}

/** The URL with its password replaced, for messages (DATABASE_URL may carry a secret). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** Whether a TCP connection to `host:port` succeeds within `timeoutMs`. */
export function canConnect({ host, port }: Endpoint, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  /** Aborts the wait (Ctrl-C, or a child process that died meanwhile). */
  signal?: AbortSignal;
}

/**
 * Polls `probe` until it returns true; throws `what` after `timeoutMs`. Probes must not throw
 * for "not yet" (a refused connection is the normal state while a server starts).
 */
export async function waitUntil(what: string, probe: () => Promise<boolean>, { timeoutMs, intervalMs = 250, signal }: WaitOptions): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
    await sleep(intervalMs, signal);
  }
}

/** Whether `GET url` answers 200 (used for /readyz, which answers 503 until Postgres and NATS respond). */
export async function answers200(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}
