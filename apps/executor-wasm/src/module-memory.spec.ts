import { capModuleMemory, MemoryLimitError, ModuleFormatError } from './module-memory';

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/** A module of the given sections, each `[id, ...content]`. */
function moduleOf(...sections: number[][]): Uint8Array {
  return Uint8Array.from([...HEADER, ...sections.flatMap(([id, ...content]) => [id!, content.length, ...content])]);
}
const memorySection = (...limits: number[][]) => [5, limits.length, ...limits.flat()];
// A custom section ("x", one byte) to prove other sections pass through untouched.
const CUSTOM = [0, 1, 0x78, 0xaa];

describe('capping a module\'s linear memory', () => {
  it('adds the limit as the maximum of a memory that declares none', () => {
    const capped = capModuleMemory(moduleOf(memorySection([0x00, 1])), 128);
    // 128 is 0x80 0x01 in LEB128.
    expect([...capped.bytes]).toEqual([...moduleOf(memorySection([0x01, 1, 0x80, 0x01]))]);
    expect(capped.declared).toEqual([{ minPages: 1, maxPages: null }]);
  });

  it('lowers a larger maximum to the limit and keeps a smaller one', () => {
    expect([...capModuleMemory(moduleOf(memorySection([0x01, 2, 100])), 10).bytes]).toEqual([...moduleOf(memorySection([0x01, 2, 10]))]);
    expect([...capModuleMemory(moduleOf(memorySection([0x01, 2, 5])), 10).bytes]).toEqual([...moduleOf(memorySection([0x01, 2, 5]))]);
  });

  it('keeps the other sections as they are, in order', () => {
    const capped = capModuleMemory(moduleOf(CUSTOM, memorySection([0x00, 1]), CUSTOM), 4);
    expect([...capped.bytes]).toEqual([...moduleOf(CUSTOM, memorySection([0x01, 1, 4]), CUSTOM)]);
  });

  it('returns a module without memories unchanged', () => {
    const m = moduleOf(CUSTOM);
    expect([...capModuleMemory(m, 4).bytes]).toEqual([...m]);
  });

  it('refuses a module whose initial memory is over the limit', () => {
    expect(() => capModuleMemory(moduleOf(memorySection([0x00, 20])), 16)).toThrow(
      new MemoryLimitError('the module declares 1.25 MiB (20 pages) of initial memory, over its memory limit of 1 MiB (16 pages)'),
    );
  });

  it('refuses bytes that are not a module, are cut short, or use memory64 or an imported memory', () => {
    expect(() => capModuleMemory(Uint8Array.from([1, 2, 3]), 4)).toThrow(ModuleFormatError);
    expect(() => capModuleMemory(Uint8Array.from([...HEADER, 5, 10, 1]), 4)).toThrow('runs past the end');
    expect(() => capModuleMemory(moduleOf(memorySection([0x04, 1])), 4)).toThrow('memory64');
    // (import "env" "memory" (memory 1))
    const importMemory = [2, 1, 3, 0x65, 0x6e, 0x76, 6, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 2, 0x00, 1];
    expect(() => capModuleMemory(moduleOf(importMemory), 4)).toThrow('the module imports its memory (env.memory)');
  });
});
