import { StringDecoder } from 'node:string_decoder';
import { LogLine, LogMessage, LogStream, MAX_LOG_LINE_BYTES, ProgressMessage } from '@blixard/contracts';
import { Bus, encodeJson, sleep } from '@blixard/messaging';
import type { Logger } from '@blixard/telemetry';

/**
 * What an attempt streams while it runs: its output lines (`ctx.log`) and its progress
 * (`ctx.progress`). Both are news, not state: the final report does not wait on them for long,
 * and a line NATS would not take is counted and said, never silently lost.
 */
export interface AttemptOutputOptions {
  bus: Bus;
  logger: Logger;
  jobId: string;
  attempt: number;
  workerId: string;
  /** LOG_MAX_BYTES_PER_ATTEMPT: job output past it is dropped, and a `system` line says so. */
  logMaxBytes: number;
  /** PROGRESS_MIN_INTERVAL_MS. */
  progressMinIntervalMs: number;
}

/** Line bytes per message: JSON escaping at most sextuples them, under NATS' default 1 MiB payload. */
const MAX_BATCH_BYTES = 128 * 1024;
/** How long the end of an attempt waits for its lines to reach NATS before reporting anyway. */
const END_FLUSH_TIMEOUT_MS = 10_000;
const PUBLISH_TRIES = 5;
const LOST_NOTICE = /^\[blixard\] \d+ lines were lost/;

export class AttemptLog {
  private seq = 0;
  private bytes = 0;
  private truncated = false;
  private droppedLines = 0;
  private droppedBytes = 0;
  /** Lines a failed publish lost (each loss is said in a `system` line in their place). */
  private lostLines = 0;
  private buffer: LogLine[] = [];
  private flushing: Promise<void> | undefined;
  private ended = false;

  constructor(private readonly o: AttemptOutputOptions) {}

  /** Takes one line of output. Never throws, never blocks: publishing happens in the background. */
  line(stream: Exclude<LogStream, 'system'>, text: string): void {
    if (this.ended) return;
    const line = cutLine(String(text));
    const size = Buffer.byteLength(line) + 1;
    if (this.truncated || this.bytes + size > this.o.logMaxBytes) {
      if (!this.truncated) {
        this.truncated = true;
        this.push('system', `[blixard] output truncated: this attempt reached LOG_MAX_BYTES_PER_ATTEMPT (${this.o.logMaxBytes} bytes); further lines are dropped and counted`);
      }
      this.droppedLines++;
      this.droppedBytes += size;
      return;
    }
    this.bytes += size;
    this.push(stream, line);
  }

  /**
   * Ends the attempt's log: says what was dropped and publishes what is buffered (bounded in
   * time): the attempt is reported after its lines are in the stream. Returns the publish of the
   * `end` marker (nothing more comes for this attempt), which need not hold up the report.
   */
  async end(): Promise<{ marker: Promise<void> }> {
    if (this.ended) return { marker: Promise.resolve() };
    if (this.droppedLines > 0) this.push('system', `[blixard] ${this.droppedLines} lines (${this.droppedBytes} bytes) of output were dropped`);
    this.ended = true;
    let timer: NodeJS.Timeout | undefined;
    const flushed = await Promise.race([
      this.flushed().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), END_FLUSH_TIMEOUT_MS))),
    ]).finally(() => clearTimeout(timer));
    if (!flushed) {
      this.o.logger.warn({ jobId: this.o.jobId, attempt: this.o.attempt }, 'log lines still unpublished at the end of the attempt');
      return { marker: Promise.resolve() };
    }
    const end: LogMessage = {
      type: 'end',
      jobId: this.o.jobId,
      attempt: this.o.attempt,
      workerId: this.o.workerId,
      lastSeq: this.seq,
      droppedLines: this.droppedLines + this.lostLines,
      droppedBytes: this.droppedBytes,
      at: Date.now(),
    };
    return { marker: this.publish(end, `${this.o.jobId}:${this.o.attempt}:log-end`).then(() => undefined) };
  }

  private push(stream: LogStream, line: string): void {
    this.buffer.push({ seq: ++this.seq, stream, at: Date.now(), line });
    this.flushing ??= this.flushLoop().finally(() => (this.flushing = undefined));
  }

  private async flushed(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Publishes the buffer in batches, one at a time: the stream keeps the lines in order. */
  private async flushLoop(): Promise<void> {
    // Lines printed in the same burst share a message; an idle stream sends a line at once.
    await new Promise((r) => setImmediate(r));
    while (this.buffer.length > 0) {
      let size = 0;
      let n = 0;
      while (n < this.buffer.length) {
        const next = Buffer.byteLength(this.buffer[n]!.line) + 64;
        if (n > 0 && size + next > MAX_BATCH_BYTES) break;
        size += next;
        n++;
      }
      const lines = this.buffer.splice(0, n);
      const message: LogMessage = { type: 'lines', jobId: this.o.jobId, attempt: this.o.attempt, workerId: this.o.workerId, lines };
      if (await this.publish(message, `${this.o.jobId}:${this.o.attempt}:log:${lines[0]!.seq}`)) continue;
      // Lost: say so in their place (the first lost line's number; the rest are a gap), unless
      // what was lost was only such a notice.
      const lost = lines.filter((l) => !LOST_NOTICE.test(l.line) || l.stream !== 'system').length;
      this.lostLines += lost;
      if (lost > 0) this.buffer.unshift({ seq: lines[0]!.seq, stream: 'system', at: Date.now(), line: `[blixard] ${lost} lines were lost: NATS did not take them` });
    }
  }

  private async publish(message: LogMessage, msgID: string): Promise<boolean> {
    const subject = this.o.bus.subjects.logs(this.o.jobId);
    for (let i = 0, delay = 100; i < PUBLISH_TRIES; i++, delay *= 2) {
      try {
        // The message id makes a retried publish a no-op when the first one did land.
        await this.o.bus.js.publish(subject, encodeJson(message), { msgID, timeout: 5_000 });
        return true;
      } catch (err) {
        if (i === PUBLISH_TRIES - 1) {
          this.o.logger.warn({ jobId: this.o.jobId, attempt: this.o.attempt, err: String(err) }, 'log lines not published; counted as lost');
          return false;
        }
        await sleep(delay);
      }
    }
    return false;
  }
}

/** Cuts a line longer than MAX_LOG_LINE_BYTES (a backend should have split it; this is the guard). */
function cutLine(line: string): string {
  if (line.length * 3 <= MAX_LOG_LINE_BYTES || Buffer.byteLength(line) <= MAX_LOG_LINE_BYTES) return line;
  const cut = Buffer.from(line).subarray(0, MAX_LOG_LINE_BYTES - 32).toString('utf8').replace(/\uFFFD$/, '');
  return `${cut} [line cut at ${MAX_LOG_LINE_BYTES} bytes]`;
}

/**
 * An attempt's progress: the latest report wins. At most one message per `minIntervalMs` (a
 * report inside the interval replaces the pending one and goes out when it ends), each with the
 * next sequence number so that the scheduler drops one that arrives after a newer one.
 */
export class AttemptProgress {
  private seq = 0;
  private pending: { fraction: number; note: string | null } | undefined;
  private lastSentAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(private readonly o: AttemptOutputOptions) {}

  report(fraction: number, note?: string): void {
    if (typeof fraction !== 'number' || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
      throw new RangeError(`progress must be a number from 0 to 1, got ${String(fraction)}`);
    }
    if (this.ended) return;
    this.pending = { fraction, note: note === undefined || note === null ? null : String(note).slice(0, 1000) };
    if (this.timer) return;
    const wait = this.lastSentAt + this.o.progressMinIntervalMs - Date.now();
    if (wait <= 0) this.send();
    else this.timer = setTimeout(() => this.send(), wait);
  }

  /** Sends what is pending now: before the final report, so the last progress is not lost. */
  end(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.send();
    this.ended = true;
  }

  private send(): void {
    this.timer = undefined;
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    this.lastSentAt = Date.now();
    const message: ProgressMessage = { jobId: this.o.jobId, attempt: this.o.attempt, workerId: this.o.workerId, seq: ++this.seq, fraction: p.fraction, note: p.note, at: new Date().toISOString() };
    try {
      this.o.bus.nc.publish(this.o.bus.subjects.progress(this.o.jobId), encodeJson(message));
    } catch (err) {
      // Core NATS: progress is news, and the next report supersedes this one anyway.
      this.o.logger.debug({ jobId: this.o.jobId, err: String(err) }, 'progress not published');
    }
  }
}

/**
 * Turns a byte stream into lines for `ctx.log`: splits on `\n` (dropping a `\r` before it),
 * decodes UTF-8 across chunk boundaries, and cuts a line that grows past MAX_LOG_LINE_BYTES into
 * pieces (nothing is lost). `end()` emits a last line that had no newline.
 */
export function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer | string): void; end(): void } {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  // In characters: a UTF-8 character is at most 4 bytes.
  const maxChars = Math.floor(MAX_LOG_LINE_BYTES / 4);
  const take = (text: string) => {
    partial += text;
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      emit(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    while (partial.length > maxChars) {
      emit(partial.slice(0, maxChars));
      partial = partial.slice(maxChars);
    }
  };
  return {
    push: (chunk) => take(typeof chunk === 'string' ? chunk : decoder.write(chunk)),
    end: () => {
      take(decoder.end());
      if (partial.length > 0) emit(partial.endsWith('\r') ? partial.slice(0, -1) : partial);
      partial = '';
    },
  };
}
