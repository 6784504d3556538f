import type { CompiledModule } from './wasm-api';

/**
 * The code of the worker thread that runs one attempt's module. It is a string run with
 * `new Worker(code, { eval: true })` rather than a file so the same thing runs from `dist/` and
 * from sources under Jest (where a `.ts` worker file cannot be loaded). Keep it small: everything
 * that can be decided before the module runs is decided in the main thread.
 *
 * workerData: `WorkerInput`. It posts exactly one `WorkerOutcome` unless it is terminated.
 */

export interface WorkerInput {
  /** Compiled in the main thread (compile errors are reported there); modules clone to workers. */
  module: CompiledModule;
  args: string[];
  env: Record<string, string>;
  /** Guest path → host directory. */
  preopens: Record<string, string>;
  /** File descriptors opened by the main thread (fds are per process, so they work here too). */
  stdin: number;
  stdout: number;
  stderr: number;
}

export type WorkerOutcome =
  /** `_start` returned (code 0) or the module called `proc_exit(code)`. */
  | { type: 'exit'; code: number; memoryBytes: number }
  /** `link`: the module cannot be instantiated as a WASI command; `trap`: it trapped while running. */
  | { type: 'error'; kind: 'link' | 'trap' | 'error'; message: string; memoryBytes: number };

export const WORKER_SOURCE = String.raw`
'use strict';
const { parentPort, workerData } = require('node:worker_threads');

// node:wasi prints "ExperimentalWarning: WASI is an experimental feature..." when it loads, once per
// thread, so once per attempt here. Drop that one warning; every other warning still shows.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const text = typeof warning === 'string' ? warning : warning && warning.message;
  if (typeof text === 'string' && text.startsWith('WASI is an experimental feature')) return;
  return emitWarning.call(this, warning, ...rest);
};
const { WASI } = require('node:wasi');

const d = workerData;
const wasi = new WASI({
  version: 'preview1',
  args: d.args,
  env: d.env,
  preopens: d.preopens,
  stdin: d.stdin,
  stdout: d.stdout,
  stderr: d.stderr,
  returnOnExit: true,
});
let memory;
const memoryBytes = () => (memory instanceof WebAssembly.Memory ? memory.buffer.byteLength : 0);

// A module that sleeps (poll_oneoff with only clock subscriptions, e.g. Rust's thread::sleep)
// would block this thread inside libuv, where terminate() cannot reach it until the sleep ends.
// Sleep in Atomics.wait instead: terminate() interrupts it at once, so cancel and timeout stay
// prompt. Anything else (fd subscriptions) goes to Node's implementation.
const native = wasi.getImportObject().wasi_snapshot_preview1;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const ERRNO_SUCCESS = 0, ERRNO_FAULT = 21, ERRNO_INVAL = 28;
const SUBSCRIPTION_SIZE = 48, EVENT_SIZE = 32;
function clockNow(id) {
  return id === 0 ? BigInt(Date.now()) * 1000000n : process.hrtime.bigint();
}
function pollOneoff(inPtr, outPtr, nsubscriptions, neventsPtr) {
  if (!memory) return native.poll_oneoff(inPtr, outPtr, nsubscriptions, neventsPtr);
  if (nsubscriptions === 0) return ERRNO_INVAL;
  try {
    const view = new DataView(memory.buffer);
    const remaining = [];
    for (let i = 0; i < nsubscriptions; i++) {
      const s = inPtr + i * SUBSCRIPTION_SIZE;
      if (view.getUint8(s + 8) !== 0) return native.poll_oneoff(inPtr, outPtr, nsubscriptions, neventsPtr);
      const clock = view.getUint32(s + 16, true);
      const timeout = view.getBigUint64(s + 24, true);
      const absolute = (view.getUint16(s + 40, true) & 1) === 1;
      remaining.push(absolute ? timeout - clockNow(clock) : timeout);
    }
    const soonest = remaining.reduce((a, b) => (b < a ? b : a));
    if (soonest > 0n) Atomics.wait(sleeper, 0, 0, Number(soonest) / 1e6);
    let n = 0;
    for (let i = 0; i < nsubscriptions; i++) {
      if (remaining[i] > soonest) continue;
      const e = outPtr + n * EVENT_SIZE;
      view.setBigUint64(e, view.getBigUint64(inPtr + i * SUBSCRIPTION_SIZE, true), true); // userdata
      view.setUint16(e + 8, ERRNO_SUCCESS, true); // error
      view.setUint8(e + 10, 0); // type: clock
      n++;
    }
    view.setUint32(neventsPtr, n, true);
    return ERRNO_SUCCESS;
  } catch (err) {
    if (err instanceof RangeError) return ERRNO_FAULT; // a pointer outside linear memory
    throw err;
  }
}

function run() {
  const imports = { wasi_snapshot_preview1: { ...native, poll_oneoff: pollOneoff } };
  let instance;
  try {
    instance = new WebAssembly.Instance(d.module, imports);
  } catch (err) {
    // LinkError (an import WASI preview1 does not provide) or a start-function trap.
    const kind = err instanceof WebAssembly.RuntimeError ? 'trap' : 'link';
    parentPort.postMessage({ type: 'error', kind, message: String(err && err.message || err), memoryBytes: 0 });
    return;
  }
  memory = instance.exports.memory;
  if (!(memory instanceof WebAssembly.Memory)) {
    parentPort.postMessage({ type: 'error', kind: 'link', message: 'the module exports no "memory" (a WASI command exports its linear memory)', memoryBytes: 0 });
    return;
  }
  if (typeof instance.exports._start !== 'function') {
    parentPort.postMessage({ type: 'error', kind: 'link', message: 'the module exports no "_start" function (not a WASI command)', memoryBytes: memoryBytes() });
    return;
  }
  const code = wasi.start(instance);
  parentPort.postMessage({ type: 'exit', code, memoryBytes: memoryBytes() });
}

try {
  run();
} catch (err) {
  // RangeError: the wasm stack overflowed (worker stackSizeMb), which is a trap too.
  const kind = err instanceof WebAssembly.RuntimeError || err instanceof RangeError ? 'trap' : 'error';
  parentPort.postMessage({ type: 'error', kind, message: String(err && err.message || err), memoryBytes: memoryBytes() });
}
`;
