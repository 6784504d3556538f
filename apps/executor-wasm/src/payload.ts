import path from 'node:path';
import { z } from 'zod';
import { PayloadError } from '@blixard/executor-sdk';

/**
 * The `wasm` job payload. Exactly one of `module.path` (a file under the executor's
 * WASM_MODULE_DIR) or `module.base64` (the module itself, size-capped) names the WASI command to
 * run; `args` follow argv[0], `env` is the whole environment the module sees (plus BLIXARD_*),
 * `stdin` is fed on fd 0. `memoryLimitMb` may lower the executor's memory limit, never raise it.
 */
export const wasmPayloadSchema = z
  .object({
    module: z
      .object({
        path: z.string().min(1).max(4096).optional(),
        base64: z.string().min(1).optional(),
      })
      .strict(),
    args: z.array(z.string().max(65_536)).max(4096).default([]),
    env: z.record(z.string().regex(/^[^=\0]+$/, 'not a variable name'), z.string().regex(/^[^\0]*$/, 'contains a NUL byte')).default({}),
    stdin: z.string().optional(),
    memoryLimitMb: z.number().int().min(1).max(4096).optional(),
  })
  .strict();
export type WasmPayload = z.infer<typeof wasmPayloadSchema>;

/** What an executor allows, from its configuration. */
export interface WasmPayloadLimits {
  /** Absolute directory `module.path` is resolved in; null: module paths are refused. */
  moduleDir: string | null;
  maxInlineModuleBytes: number;
  memoryLimitMb: number;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// "\0asm" and version 1, the first 8 bytes of every module, as the first 8 base64 characters
// encode 6 of them.
const HEADER_PREFIX = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00]);

/**
 * Parses and checks a payload without touching the filesystem (validate() runs at submit): the
 * shape, which module source, the inline module's size, alphabet and header, a module path that
 * cannot leave the module directory, and the memory limit. Throws PayloadError naming the field.
 */
export function parseWasmPayload(payload: unknown, limits: WasmPayloadLimits): WasmPayload {
  const parsed = wasmPayloadSchema.safeParse(payload);
  if (!parsed.success) {
    throw new PayloadError(`wasm payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  }
  const p = parsed.data;
  const problems: string[] = [];
  const { path: modulePath, base64 } = p.module;
  if ((modulePath === undefined) === (base64 === undefined)) {
    problems.push('module: give exactly one of `path` (a file under the executor\'s module directory) or `base64` (the module itself)');
  }
  if (modulePath !== undefined) {
    const problem = checkModulePath(modulePath, limits.moduleDir);
    if (problem) problems.push(`module.path: ${problem}`);
  }
  if (base64 !== undefined) {
    const problem = checkInlineModule(base64, limits.maxInlineModuleBytes);
    if (problem) problems.push(`module.base64: ${problem}`);
  }
  if (p.memoryLimitMb !== undefined && p.memoryLimitMb > limits.memoryLimitMb) {
    problems.push(`memoryLimitMb: ${p.memoryLimitMb} is over this executor's limit of ${limits.memoryLimitMb} MiB`);
  }
  if (problems.length > 0) throw new PayloadError(`wasm payload: ${problems.join('; ')}`);
  return p;
}

function checkModulePath(p: string, moduleDir: string | null): string | undefined {
  if (moduleDir === null) return 'this executor runs no modules from files (WASM_MODULE_DIR is not set); send the module in `module.base64`';
  if (p.includes('\0')) return 'contains a NUL byte';
  if (path.isAbsolute(p)) return 'must be relative to the executor\'s module directory';
  const normal = path.posix.normalize(p.replace(/\\/g, '/'));
  if (normal === '..' || normal.startsWith('../')) return 'must stay inside the executor\'s module directory';
  return undefined;
}

function checkInlineModule(b64: string, maxBytes: number): string | undefined {
  const padding = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  const decodedBytes = Math.floor(((b64.length - padding) * 3) / 4);
  if (decodedBytes > maxBytes) return `the module is ${decodedBytes} bytes; this executor takes at most ${maxBytes} inline (use module.path for larger ones)`;
  if (b64.length % 4 === 1 || !BASE64.test(b64)) return 'is not base64 (standard alphabet A-Z a-z 0-9 + /, optional = padding)';
  if (decodedBytes < 8 || !Buffer.from(b64.slice(0, 8), 'base64').equals(HEADER_PREFIX)) {
    return 'is not a WebAssembly module (it does not start with \\0asm, version 1)';
  }
  return undefined;
}
