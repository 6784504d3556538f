/**
 * The memory limit of a WebAssembly module, enforced where WebAssembly itself enforces it: the
 * `maximum` of the module's linear memory. Before compiling, the memory section is rewritten so
 * every memory the module defines has `maximum <= limit`; a `memory.grow` past it then returns -1
 * inside the module (as an allocator out of memory), and V8 never reserves more. A worker's
 * `resourceLimits` cannot do this: they bound the JavaScript heap, not linear memory.
 *
 * Pure byte handling, no I/O (binary format: https://webassembly.github.io/spec/core/binary/).
 */

/** 64 KiB, the unit of linear memory. */
export const WASM_PAGE_BYTES = 65_536;

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
const VERSION = [0x01, 0x00, 0x00, 0x00];
const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const IMPORT_KIND_MEMORY = 2;

/** The bytes are not a WebAssembly module this backend can run. */
export class ModuleFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModuleFormatError';
  }
}

/** The module asks for more memory up front than its limit allows. */
export class MemoryLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemoryLimitError';
  }
}

export interface CappedModule {
  /** The module with every defined memory's maximum at most `limitPages`. */
  bytes: Uint8Array;
  /** What each memory the module defines declared (pages), before capping. */
  declared: { minPages: number; maxPages: number | null }[];
}

/** True when `bytes` start with the WebAssembly magic number and version 1. */
export function hasWasmHeader(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && [...MAGIC, ...VERSION].every((b, i) => bytes[i] === b);
}

/**
 * Returns the module with its memories' maximum lowered to `limitPages`. Throws MemoryLimitError
 * when a memory's initial size is already over the limit, ModuleFormatError for bytes that are
 * not a module, a 64-bit memory, or a memory imported from the host (a WASI command defines and
 * exports its own).
 */
export function capModuleMemory(bytes: Uint8Array, limitPages: number): CappedModule {
  if (!hasWasmHeader(bytes)) throw new ModuleFormatError('not a WebAssembly module (no \\0asm version 1 header)');
  const r = new Reader(bytes, 8);
  const parts: Uint8Array[] = [bytes.subarray(0, 8)];
  const declared: CappedModule['declared'] = [];
  while (!r.done) {
    const start = r.pos;
    const id = r.byte();
    const size = r.u32();
    const contentStart = r.pos;
    if (contentStart + size > bytes.length) throw new ModuleFormatError(`section ${id} runs past the end of the module`);
    if (id === SECTION_IMPORT) rejectImportedMemory(new Reader(bytes.subarray(contentStart, contentStart + size), 0));
    if (id === SECTION_MEMORY) {
      const content = new Reader(bytes.subarray(contentStart, contentStart + size), 0);
      const count = content.u32();
      const out: number[] = [...uleb(count)];
      for (let i = 0; i < count; i++) {
        const { flags, min, max } = content.limits();
        declared.push({ minPages: min, maxPages: max });
        if (min > limitPages) {
          throw new MemoryLimitError(
            `the module declares ${formatPages(min)} of initial memory, over its memory limit of ${formatPages(limitPages)}`,
          );
        }
        // Flag bit 0 says "has a maximum"; bit 1 (shared) is kept as it was.
        out.push(flags | 0x01, ...uleb(min), ...uleb(Math.min(max ?? limitPages, limitPages)));
      }
      const body = Uint8Array.from(out);
      parts.push(Uint8Array.from([SECTION_MEMORY, ...uleb(body.length)]), body);
    } else {
      parts.push(bytes.subarray(start, contentStart + size));
    }
    r.pos = contentStart + size;
  }
  return { bytes: concat(parts), declared };
}

export function formatPages(pages: number): string {
  const mib = (pages * WASM_PAGE_BYTES) / 1_048_576;
  return `${Number(mib.toFixed(2))} MiB (${pages} pages)`;
}

function rejectImportedMemory(r: Reader): void {
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    const moduleName = r.name();
    const field = r.name();
    const kind = r.byte();
    switch (kind) {
      case 0: // function: type index
        r.u32();
        break;
      case 1: // table: reference type, limits
        r.byte();
        r.limits();
        break;
      case IMPORT_KIND_MEMORY:
        throw new ModuleFormatError(`the module imports its memory (${moduleName}.${field}); a WASI command must define and export its own`);
      case 3: // global: value type, mutability
        r.byte();
        r.byte();
        break;
      case 4: // tag (exception handling): attribute, type index
        r.byte();
        r.u32();
        break;
      default:
        throw new ModuleFormatError(`unknown import kind ${kind}`);
    }
  }
}

class Reader {
  constructor(
    private readonly b: Uint8Array,
    public pos: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.b.length;
  }

  byte(): number {
    if (this.pos >= this.b.length) throw new ModuleFormatError('the module ends in the middle of a section');
    return this.b[this.pos++]!;
  }

  /** Unsigned LEB128, at most 32 bits. */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (result > 0xffff_ffff) break;
        return result;
      }
    }
    throw new ModuleFormatError('malformed LEB128 integer');
  }

  name(): string {
    const len = this.u32();
    if (this.pos + len > this.b.length) throw new ModuleFormatError('a name runs past the end of its section');
    const s = Buffer.from(this.b.subarray(this.pos, this.pos + len)).toString('utf8');
    this.pos += len;
    return s;
  }

  limits(): { flags: number; min: number; max: number | null } {
    const flags = this.byte();
    if (flags & 0x04) throw new ModuleFormatError('64-bit memories (memory64) are not supported');
    if (flags > 0x03) throw new ModuleFormatError(`unknown limits flags 0x${flags.toString(16)}`);
    const min = this.u32();
    const max = flags & 0x01 ? this.u32() : null;
    return { flags, min, max };
  }
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
