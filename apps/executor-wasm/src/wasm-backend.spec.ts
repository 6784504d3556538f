import { ConfigError } from '@blixard/config';
import { PayloadError } from '@blixard/executor-sdk';
import { WasmBackend } from './wasm-backend';

describe('the wasm backend\'s configuration', () => {
  it('reads its limits from WASM_* variables and enforces them in validate()', () => {
    const backend = WasmBackend.fromEnv({ WASM_MODULE_DIR: '/srv/wasm', WASM_MEMORY_LIMIT_MB: '32', WASM_MAX_INLINE_MODULE_BYTES: '16' });
    expect(backend.capabilities()).toEqual({
      features: ['wasi-preview1', 'args', 'env', 'stdin', 'scratch-dir', 'memory-limit', 'inline-module', 'module-dir'],
    });
    expect(backend.validate({ module: { path: 'a.wasm' }, memoryLimitMb: 32 })).toMatchObject({ memoryLimitMb: 32 });
    expect(() => backend.validate({ module: { path: 'a.wasm' }, memoryLimitMb: 33 })).toThrow(PayloadError);
    expect(() => backend.validate({ module: { base64: Buffer.alloc(20).toString('base64') } })).toThrow('takes at most 16 inline');
  });

  it('refuses module paths by default: only inline modules run until WASM_MODULE_DIR is set', () => {
    const backend = WasmBackend.fromEnv({});
    expect(backend.capabilities().features).not.toContain('module-dir');
    expect(() => backend.validate({ module: { path: 'a.wasm' } })).toThrow('WASM_MODULE_DIR is not set');
  });

  it('stops at start on a bad variable, naming it', () => {
    expect(() => WasmBackend.fromEnv({ WASM_MEMORY_LIMIT_MB: 'lots', WASM_MAX_INLINE_MODULE_BYTES: '0' })).toThrow(ConfigError);
    expect(() => WasmBackend.fromEnv({ WASM_MEMORY_LIMIT_MB: '8192' })).toThrow('WASM_MEMORY_LIMIT_MB=8192 is out of range 1..4096');
  });
});
