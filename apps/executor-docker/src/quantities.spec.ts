import { formatBytes, parseCpu, parseMemory } from './quantities';

describe('resource quantities', () => {
  it.each([
    [1, 1_000_000_000],
    [0.5, 500_000_000],
    ['2', 2_000_000_000],
    ['250m', 250_000_000],
    ['10m', 10_000_000],
    ['1.25', 1_250_000_000],
  ])('cpu %j is %d NanoCpus', (v, nano) => expect(parseCpu(v)).toBe(nano));

  it.each([
    [6 * 2 ** 20, 6 * 2 ** 20],
    ['16Mi', 16 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['512M', 512e6],
    ['7000k', 7e6],
    ['7000Ki', 7000 * 1024],
    ['10000000', 1e7],
  ])('memory %j is %d bytes', (v, bytes) => expect(parseMemory(v)).toBe(bytes));

  it('refuses what the engine refuses or what is ambiguous', () => {
    expect(() => parseCpu(-1)).toThrow('cpu must be more than 0 cores');
    expect(() => parseCpu(Number.NaN)).toThrow('cpu must be more than 0 cores');
    expect(() => parseCpu('5000')).toThrow('at most 4096 cores');
    expect(() => parseMemory('5Mi')).toThrow('at least 6Mi');
    // Docker's "512m" means MiB, Kubernetes' means milli-bytes: neither guess is safe.
    expect(() => parseMemory('512m')).toThrow('not a memory quantity');
    expect(() => parseMemory('1e9')).toThrow('not a memory quantity');
  });

  it('formats bytes for messages', () => {
    expect(formatBytes(16 * 2 ** 20)).toBe('16 MiB');
    expect(formatBytes(2 ** 30)).toBe('1 GiB');
    expect(formatBytes(1536 * 2 ** 20)).toBe('1536 MiB');
    expect(formatBytes(1e9)).toBe('1000000000 B');
  });
});
