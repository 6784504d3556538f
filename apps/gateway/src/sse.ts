import type { Request, Response } from 'express';

/** Whether the client asked for a stream (`Accept: text/event-stream`). */
export function wantsEventStream(req: Request): boolean {
  return /\btext\/event-stream\b/i.test(req.headers.accept ?? '');
}

/** The `Last-Event-ID` header (a client reconnecting) or the `after` query parameter, as a number. */
export function resumePoint(req: Request, queryAfter: unknown): number | undefined | 'invalid' {
  const raw = (req.headers['last-event-id'] as string | undefined) ?? (typeof queryAfter === 'string' ? queryAfter : undefined);
  if (raw === undefined || raw === '') return undefined;
  return /^\d{1,15}$/.test(raw.trim()) ? Number(raw.trim()) : 'invalid';
}

/**
 * One Server-Sent Events response: `id:`/`event:`/`data:` frames, a comment every
 * `heartbeatMs` so that proxies keep an idle stream open, backpressure (a slow client makes the
 * writer wait, it does not buffer without bound), and `closed` when the client goes away.
 */
export class SseStream {
  private heartbeat: NodeJS.Timeout;
  private ended = false;
  private readonly onClose: (() => void)[] = [];
  readonly closed: Promise<void>;

  constructor(
    req: Request,
    private readonly res: Response,
    heartbeatMs: number,
    /** Where the stream registers while open (the gateway ends them all when it stops). */
    registry?: Set<{ end(): void }>,
  ) {
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    // nginx would otherwise buffer the stream.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    // Tell EventSource clients how soon to reconnect.
    res.write('retry: 2000\n\n');
    this.heartbeat = setInterval(() => this.comment('heartbeat'), heartbeatMs);
    let resolveClosed: () => void = () => undefined;
    this.closed = new Promise<void>((resolve) => (resolveClosed = resolve));
    this.done = () => {
      if (this.ended) return;
      this.ended = true;
      clearInterval(this.heartbeat);
      for (const f of this.onClose.splice(0)) f();
      resolveClosed();
    };
    res.once('close', this.done);
    if (registry) {
      registry.add(this);
      this.onClose.push(() => registry.delete(this));
    }
  }

  private readonly done: () => void;

  get isClosed(): boolean {
    return this.ended;
  }

  /** Runs `f` once when the stream closes (client gone, or `end()`). */
  whenClosed(f: () => void): void {
    if (this.ended) f();
    else this.onClose.push(f);
  }

  /** Writes one event; resolves when the client can take more. */
  async send(frame: { id?: string | number; event?: string; data: string }): Promise<void> {
    if (this.ended) return;
    let text = '';
    if (frame.id !== undefined) text += `id: ${frame.id}\n`;
    if (frame.event) text += `event: ${frame.event}\n`;
    // A data field may not hold a newline: each line is its own `data:` (JSON has none).
    for (const line of frame.data.split('\n')) text += `data: ${line}\n`;
    text += '\n';
    if (!this.res.write(text)) await Promise.race([new Promise((r) => this.res.once('drain', r)), this.closed]);
  }

  comment(text: string): void {
    if (!this.ended) this.res.write(`: ${text}\n\n`);
  }

  end(): void {
    if (!this.ended) this.res.end();
    this.done();
  }
}
