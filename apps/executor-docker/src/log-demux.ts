/**
 * Splits the engine's multiplexed log stream into stdout and stderr. Without a TTY, the engine
 * sends frames: an 8-byte header — byte 0 the stream (1 stdout, 2 stderr, 3 an engine error),
 * bytes 1-3 zero, bytes 4-7 the payload length (big-endian uint32) — then the payload. A frame may
 * arrive split across chunks, and one chunk may hold several frames, so the tail of a chunk that
 * does not complete a frame is kept for the next one.
 */
export type LogStream = 'stdout' | 'stderr';

const HEADER_BYTES = 8;

export class LogDemuxer {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onFrame: (stream: LogStream, data: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= HEADER_BYTES) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < HEADER_BYTES + size) break;
      const kind = this.pending[0];
      const data = this.pending.subarray(HEADER_BYTES, HEADER_BYTES + size);
      this.pending = this.pending.subarray(HEADER_BYTES + size);
      // stdin (0) never comes back; an engine error (3) is the job's stderr as far as a user is concerned.
      if (size > 0) this.onFrame(kind === 1 ? 'stdout' : 'stderr', data);
    }
  }

  /** Bytes of an incomplete frame still waiting for the rest (the stream ended mid-frame if > 0). */
  get pendingBytes(): number {
    return this.pending.length;
  }
}
