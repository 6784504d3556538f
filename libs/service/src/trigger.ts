import { runDetached } from '@blixard/telemetry';

/**
 * A single-flight background task: `kick()` runs it now, or once more right after the current run
 * if one is in progress; it also runs every `intervalMs` as a backstop for lost wake-ups. Errors
 * are handed to `onError` and never stop the loop.
 */
export class Trigger {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly task: () => Promise<boolean | void>,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.intervalMs);
    this.kick();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    // Outside any trace: a kick from inside a span (a wake-up, a report) must not make this run,
    // and every run it chains to, part of that span's trace.
    this.current = runDetached(async () => {
      do {
        this.again = false;
        try {
          // A task returns true when it did a full batch and more work may be waiting.
          if ((await this.task()) === true) this.again = true;
        } catch (err) {
          this.onError(err);
        }
      } while (this.again && !this.stopped);
      this.running = false;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.current;
  }
}
