import { ExecutionBackend, ExecutionContext, ExecutionFailure, ExecutionJob, PayloadError } from '@blixard/executor-sdk';

export interface HttpPayload {
  url: string;
  method: 'GET' | 'POST';
  body?: unknown;
}

/** Calls a URL; the answer is the job's result. 5xx, 429 and network errors are retried. */
export class HttpBackend implements ExecutionBackend<HttpPayload> {
  readonly name = 'http';

  capabilities() {
    return { features: ['get', 'post'] };
  }

  /** Runs at submit too (the gateway asks an executor): a bad payload is a 400, never an attempt. */
  validate(payload: unknown): HttpPayload {
    const p = (payload ?? {}) as Partial<HttpPayload>;
    if (typeof p.url !== 'string' || !/^https?:\/\//.test(p.url)) throw new PayloadError('url: must be an http(s) URL');
    const method = p.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') throw new PayloadError('method: must be GET or POST');
    return { url: p.url, method, body: p.body };
  }

  async execute(job: ExecutionJob<HttpPayload>, ctx: ExecutionContext) {
    const { url, method, body } = job.payload;
    const res = await fetch(url, {
      method,
      signal: ctx.signal, // timeout, cancel and drain abort the request
      headers: { 'content-type': 'application/json', 'idempotency-key': `${job.id}:${ctx.attempt}` },
      body: method === 'POST' ? JSON.stringify(body ?? null) : undefined,
    });
    const text = await res.text();
    if (!res.ok) {
      throw new ExecutionFailure(`http_${res.status}`, `${method} ${url} answered ${res.status}`, {
        retryable: res.status >= 500 || res.status === 429,
        stderrTail: text.slice(-2_000),
      });
    }
    return { output: { status: res.status, body: text.slice(0, 10_000) } };
  }
}
