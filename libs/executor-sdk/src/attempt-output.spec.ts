import { MAX_LOG_LINE_BYTES } from '@blixard/contracts';
import { lineSplitter } from './attempt-output';

describe('lineSplitter: output chunks to log lines', () => {
  const split = (chunks: (string | Buffer)[]) => {
    const lines: string[] = [];
    const s = lineSplitter((l) => lines.push(l));
    for (const c of chunks) s.push(c);
    s.end();
    return lines;
  };

  it('splits on newlines across chunks, drops CR before LF, and emits a last line without newline', () => {
    expect(split(['a\nb', 'c\r\n', '\nd'])).toEqual(['a', 'bc', '', 'd']);
  });

  it('decodes UTF-8 split between chunks', () => {
    const bytes = Buffer.from('æøå ✓\n');
    expect(split([bytes.subarray(0, 1), bytes.subarray(1, 5), bytes.subarray(5)])).toEqual(['æøå ✓']);
  });

  it('cuts a line longer than MAX_LOG_LINE_BYTES into pieces without losing any of it', () => {
    const long = 'x'.repeat(MAX_LOG_LINE_BYTES * 2 + 10);
    const lines = split([long, '\n']);
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.join('')).toBe(long);
    expect(lines.every((l) => Buffer.byteLength(l) <= MAX_LOG_LINE_BYTES)).toBe(true);
  });
});
