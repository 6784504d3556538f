import http from 'node:http';

/**
 * A minimal Docker Engine API client: plain HTTP/1.1 over the engine's unix socket (node:http
 * `socketPath`), no dependency. It speaks API v1.41, which Docker (20.10+) and podman's
 * Docker-compatible service (`podman system service`, 4.x) both serve. Only what the docker
 * backend uses is here.
 */
export const DOCKER_API_VERSION = 'v1.41';

/** The engine answered with an HTTP error. `status` is the HTTP status (404: no such thing). */
export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** The engine could not be reached at all (no socket, refused, permission denied). */
export class EngineUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal;
}

export interface ContainerSummary {
  Id: string;
  Names?: string[];
  Labels?: Record<string, string>;
  State?: string;
}

export interface ContainerInspect {
  Id: string;
  State: { Status: string; Running: boolean; OOMKilled: boolean; ExitCode: number; Error?: string; StartedAt?: string };
  HostConfig: Record<string, unknown>;
  Config: { Labels?: Record<string, string>; Env?: string[]; WorkingDir?: string; Image?: string };
}

export class DockerEngine {
  // Keep-alive: create, start, inspect and remove reuse one connection instead of a connect each.
  private readonly agent = new http.Agent({ keepAlive: true, maxFreeSockets: 8 });

  constructor(readonly socketPath: string) {}

  /** `unix:///path` as the user would write it, for messages. */
  get address(): string {
    return `unix://${this.socketPath}`;
  }

  async ping(signal?: AbortSignal): Promise<void> {
    try {
      await this.request('GET', '/_ping', { signal }, false);
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw new EngineUnavailableError(`the container engine at ${this.address} did not answer /_ping in time`);
      throw err;
    }
  }

  /** The image's inspect document, or null when the engine does not have it. */
  async inspectImage(image: string, signal?: AbortSignal): Promise<Record<string, unknown> | null> {
    try {
      // Unescaped, as Docker's own client sends it: the reference grammar allows no character that needs it.
      return await this.json('GET', `/images/${image}/json`, { signal });
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return null;
      throw err;
    }
  }

  /**
   * Pulls `repository:tag` (or `repository@digest`). The engine answers 200 and then streams
   * progress lines; a failure may arrive as an `{"error": ...}` line inside that stream.
   */
  async pullImage(repository: string, tagOrDigest: string, signal?: AbortSignal): Promise<void> {
    const res = await this.open('POST', '/images/create', { query: { fromImage: repository, tag: tagOrDigest }, signal });
    let error: string | undefined;
    let rest = '';
    for await (const chunk of res) {
      rest += (chunk as Buffer).toString('utf8');
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) error ??= progressError(line);
    }
    error ??= progressError(rest);
    if (error) throw new EngineError(500, error);
  }

  createContainer(name: string, spec: Record<string, unknown>): Promise<{ Id: string; Warnings?: string[] }> {
    return this.json('POST', '/containers/create', { query: { name }, body: spec });
  }

  async startContainer(id: string): Promise<void> {
    await this.request('POST', `/containers/${id}/start`);
  }

  /** Resolves with the exit code once the container is not running any more. */
  async waitContainer(id: string): Promise<number> {
    const body = await this.json<{ StatusCode: number; Error?: { Message?: string } | null }>('POST', `/containers/${id}/wait`, {
      query: { condition: 'not-running' },
    });
    return body.StatusCode;
  }

  inspectContainer(id: string): Promise<ContainerInspect> {
    return this.json('GET', `/containers/${id}/json`);
  }

  /**
   * Signals the container. Resolves false when it was not running (not started yet, stopped or
   * gone): not an error, but the signal reached nobody.
   */
  async killContainer(id: string, signal: 'SIGTERM' | 'SIGKILL'): Promise<boolean> {
    try {
      await this.request('POST', `/containers/${id}/kill`, { query: { signal } });
      return true;
    } catch (err) {
      if (err instanceof EngineError && (err.status === 404 || err.status === 409)) return false;
      throw err;
    }
  }

  /** Removes the container (force: also a running one) and its anonymous volumes; gone is fine. */
  async removeContainer(id: string): Promise<void> {
    try {
      await this.request('DELETE', `/containers/${id}`, { query: { force: true, v: true } });
    } catch (err) {
      if (err instanceof EngineError && err.status === 404) return;
      throw err;
    }
  }

  /** Every container (running or not) carrying all of `labels`. */
  listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    const filters = JSON.stringify({ label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) });
    return this.json('GET', '/containers/json', { query: { all: true, filters } });
  }

  /**
   * Follows the container's stdout and stderr from its start until it ends. The stream is the
   * engine's raw response: multiplexed (8-byte frame headers) unless the content type says raw.
   */
  async followLogs(id: string, signal?: AbortSignal): Promise<{ stream: http.IncomingMessage; multiplexed: boolean }> {
    const stream = await this.open('GET', `/containers/${id}/logs`, { query: { follow: true, stdout: true, stderr: true }, signal });
    // Only a TTY container's logs are raw; Docker says so with this content type, podman sends
    // application/octet-stream for the multiplexed form.
    const multiplexed = stream.headers['content-type'] !== 'application/vnd.docker.raw-stream';
    return { stream, multiplexed };
  }

  close(): void {
    this.agent.destroy();
  }

  // ---------------------------------------------------------------- transport

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const body = await this.request(method, path, options);
    try {
      return JSON.parse(body.toString('utf8')) as T;
    } catch {
      throw new EngineError(502, `${method} ${path}: the engine's answer is not JSON: ${body.toString('utf8').slice(0, 200)}`);
    }
  }

  /** Sends the request and reads the whole answer; a status >= 400 is an EngineError. */
  async request(method: string, path: string, options: RequestOptions = {}, versioned = true): Promise<Buffer> {
    const res = await this.open(method, path, options, versioned);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** Sends the request; resolves with the response stream once the status is known to be < 400. */
  open(method: string, path: string, options: RequestOptions = {}, versioned = true): Promise<http.IncomingMessage> {
    const url = `${versioned ? `/${DOCKER_API_VERSION}` : ''}${path}${queryString(options.query)}`;
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          agent: this.agent,
          method,
          path: url,
          signal: options.signal,
          headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : { 'content-length': 0 },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status < 400) {
            resolve(res);
            return;
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => reject(new EngineError(status, `${method} ${path}: ${errorMessage(Buffer.concat(chunks), status)}`)));
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') reject(err);
        else if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTSOCK', 'EPERM'].includes(err.code ?? '')) {
          reject(new EngineUnavailableError(`cannot reach the container engine at ${this.address}: ${err.message}`));
        } else reject(new EngineUnavailableError(`the container engine at ${this.address} failed: ${err.message}`));
      });
      req.end(payload);
    });
  }
}

function queryString(query: RequestOptions['query']): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** The engine's error document (`{"message": ...}` from Docker and podman) as one line. */
function errorMessage(body: Buffer, status: number): string {
  const text = body.toString('utf8').trim();
  try {
    const doc = JSON.parse(text) as { message?: string };
    if (doc.message) return doc.message;
  } catch {
    // not JSON
  }
  return text || `HTTP ${status}`;
}

/** The error of one line of pull progress, if it reports one. */
function progressError(line: string): string | undefined {
  if (!line.trim()) return undefined;
  try {
    const doc = JSON.parse(line) as { error?: string; errorDetail?: { message?: string } };
    return doc.errorDetail?.message ?? doc.error;
  } catch {
    return undefined;
  }
}
