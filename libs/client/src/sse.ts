/** One Server-Sent Event: `event` is `message` when the server named none. */
export interface SseEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export interface ReadSseOptions {
  headers?: Record<string, string>;
  /** Resume after this event (sent as `Last-Event-ID`). */
  lastEventId?: string;
  signal?: AbortSignal;
  /** Called for each comment line (the server's heartbeats). */
  onComment?: (text: string) => void;
}

/** A stream request the server refused: its status and problem body. */
export class SseHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`the stream was refused with HTTP ${status}: ${body}`);
    this.name = 'SseHttpError';
  }
}

/**
 * Reads a Server-Sent Events stream (the WHATWG event-stream format) until the server ends it or
 * `signal` aborts. No reconnection: resume by calling again with `lastEventId`.
 */
export async function* readSse(url: string, options: ReadSseOptions = {}): AsyncGenerator<SseEvent> {
  const res = await fetch(url, {
    headers: { Accept: 'text/event-stream', ...(options.lastEventId ? { 'Last-Event-ID': options.lastEventId } : {}), ...options.headers },
    signal: options.signal,
  });
  if (!res.ok || !res.body) throw new SseHttpError(res.status, await res.text());
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\n|\r/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) yield { id, event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) {
          options.onComment?.(line.slice(1).trim());
          continue;
        }
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'data') data.push(v);
        else if (field === 'event') event = v;
        else if (field === 'id') id = v;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
