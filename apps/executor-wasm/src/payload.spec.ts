import { PayloadError } from '@blixard/executor-sdk';
import { parseWasmPayload, WasmPayloadLimits } from './payload';

// The smallest module: "\0asm" version 1, no sections.
const EMPTY_MODULE = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const limits: WasmPayloadLimits = { moduleDir: '/srv/modules', maxInlineModuleBytes: 1024, memoryLimitMb: 64 };

function problem(payload: unknown, l: WasmPayloadLimits = limits): string {
  try {
    parseWasmPayload(payload, l);
  } catch (err) {
    expect(err).toBeInstanceOf(PayloadError);
    return (err as PayloadError).message;
  }
  throw new Error('the payload was accepted');
}

describe('the wasm payload', () => {
  it('accepts an inline module and fills in the defaults', () => {
    expect(parseWasmPayload({ module: { base64: EMPTY_MODULE.toString('base64') } }, limits)).toEqual({
      module: { base64: EMPTY_MODULE.toString('base64') },
      args: [],
      env: {},
    });
  });

  it('accepts a module path with args, env, stdin and a lower memory limit', () => {
    const payload = { module: { path: 'tools/hello.wasm' }, args: ['a'], env: { K: 'v' }, stdin: 'in', memoryLimitMb: 16 };
    expect(parseWasmPayload(payload, limits)).toEqual(payload);
  });

  it('rejects an inline module over the size cap, naming module.base64 and both sizes', () => {
    const big = Buffer.concat([EMPTY_MODULE, Buffer.alloc(2000)]).toString('base64');
    expect(problem({ module: { base64: big } })).toBe(
      'wasm payload: module.base64: the module is 2008 bytes; this executor takes at most 1024 inline (use module.path for larger ones)',
    );
  });

  it('rejects base64 that is not base64, or not a WebAssembly module', () => {
    expect(problem({ module: { base64: 'not base64!' } })).toContain('module.base64: is not base64');
    expect(problem({ module: { base64: Buffer.from('#!/bin/sh\necho hi').toString('base64') } })).toContain(
      'module.base64: is not a WebAssembly module',
    );
  });

  it('wants exactly one module source', () => {
    expect(problem({ module: {} })).toContain('module: give exactly one of `path`');
    expect(problem({ module: { path: 'a.wasm', base64: EMPTY_MODULE.toString('base64') } })).toContain('module: give exactly one of `path`');
    expect(problem({ args: [] })).toContain('module: Required');
  });

  it('keeps module paths inside the module directory, and refuses them when there is none', () => {
    expect(problem({ module: { path: '/etc/passwd' } })).toContain('module.path: must be relative');
    expect(problem({ module: { path: '../outside.wasm' } })).toContain('module.path: must stay inside');
    expect(problem({ module: { path: 'a/../../outside.wasm' } })).toContain('module.path: must stay inside');
    expect(problem({ module: { path: 'hello.wasm' } }, { ...limits, moduleDir: null })).toContain('WASM_MODULE_DIR is not set');
  });

  it('names every bad field: args, env, stdin, memoryLimitMb and unknown keys', () => {
    expect(problem({ module: { path: 'a.wasm' }, args: 'one' })).toContain('args: Expected array, received string');
    expect(problem({ module: { path: 'a.wasm' }, env: { 'A=B': 'x' } })).toContain('env.A=B: not a variable name');
    expect(problem({ module: { path: 'a.wasm' }, stdin: 42 })).toContain('stdin: Expected string, received number');
    expect(problem({ module: { path: 'a.wasm' }, memoryLimitMb: 0.5 })).toContain('memoryLimitMb: Expected integer');
    expect(problem({ module: { path: 'a.wasm' }, memoryLimitMb: 128 })).toBe("wasm payload: memoryLimitMb: 128 is over this executor's limit of 64 MiB");
    expect(problem({ module: { path: 'a.wasm' }, command: ['sh'] })).toContain("Unrecognized key(s) in object: 'command'");
    expect(problem('not an object')).toContain('(root): Expected object, received string');
  });

  it('reports every problem at once', () => {
    expect(problem({ module: { path: '../x.wasm' }, memoryLimitMb: 100 })).toBe(
      "wasm payload: module.path: must stay inside the executor's module directory; memoryLimitMb: 100 is over this executor's limit of 64 MiB",
    );
  });
});
