import { promises as fs } from 'node:fs';
import { OutputTail } from '@blixard/domain';

/**
 * One output stream of a module (stdout or stderr): a file the module writes through its WASI fd
 * (WASI's stdio options take file descriptors, not streams), read back into an OutputTail while
 * the module runs. The file is opened O_APPEND so that, once read, it can be truncated: a module
 * printing forever then fills neither memory nor the disk, only the tail is kept.
 */
export class OutputFile {
  private readonly tail: OutputTail;
  private readonly chunk: Buffer;
  private position = 0;
  private reading: Promise<void> = Promise.resolve();

  private constructor(
    private readonly handle: fs.FileHandle,
    tailBytes: number,
    /** Truncate the file once this much has been read from it. */
    private readonly truncateAfterBytes: number,
  ) {
    this.tail = new OutputTail(tailBytes);
    this.chunk = Buffer.alloc(64 * 1024);
  }

  static async open(file: string, tailBytes: number): Promise<OutputFile> {
    const handle = await fs.open(file, 'a+');
    return new OutputFile(handle, tailBytes, Math.max(4 * tailBytes, 1_048_576));
  }

  /** The descriptor to hand to WASI. */
  get fd(): number {
    return this.handle.fd;
  }

  /** Reads what was written since the last read (reads never overlap). */
  drain(): Promise<void> {
    this.reading = this.reading.then(() => this.readNew());
    return this.reading;
  }

  private async readNew(): Promise<void> {
    for (;;) {
      const { bytesRead } = await this.handle.read(this.chunk, 0, this.chunk.length, this.position);
      if (bytesRead === 0) break;
      this.tail.push(Buffer.from(this.chunk.subarray(0, bytesRead)));
      this.position += bytesRead;
    }
    if (this.position >= this.truncateAfterBytes) {
      // Bytes written between the read above and this truncate are lost; they are in the middle
      // of a long output, and the tail (what explains the end of a run) is still read whole.
      await this.handle.truncate(0);
      this.position = 0;
    }
  }

  /** Reads the rest and closes the file; the tail is final afterwards. */
  async close(): Promise<string> {
    try {
      await this.drain();
    } finally {
      await this.handle.close();
    }
    return this.tail.toString();
  }

  toString(): string {
    return this.tail.toString();
  }
}
