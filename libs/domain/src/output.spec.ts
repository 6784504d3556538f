import { OutputTail } from './output';

const marker = (dropped: number): string => `[... ${dropped} earlier bytes truncated ...]\n`;

describe('OutputTail', () => {
  it('is empty before anything is pushed', () => {
    const tail = new OutputTail(10);
    expect(tail.toString()).toBe('');
    expect(tail.truncatedBytes).toBe(0);
  });

  it('keeps all output that fits, without a truncation marker', () => {
    const tail = new OutputTail(100);
    tail.push('hello ');
    tail.push('world\n');
    expect(tail.toString()).toBe('hello world\n');
    expect(tail.truncatedBytes).toBe(0);
  });

  it('adds no marker when the output is exactly maxBytes long', () => {
    const tail = new OutputTail(5);
    tail.push('12345');
    expect(tail.toString()).toBe('12345');
    expect(tail.truncatedBytes).toBe(0);
  });

  it('keeps the last maxBytes of one chunk that is too long, and marks the bytes it dropped', () => {
    const tail = new OutputTail(4);
    tail.push('abcdefgh');
    expect(tail.toString()).toBe(`${marker(4)}efgh`);
    expect(tail.truncatedBytes).toBe(4);
  });

  it('drops whole chunks and part of one to keep the last maxBytes across chunks', () => {
    const tail = new OutputTail(6);
    tail.push('aaaa');
    tail.push('bbbb');
    tail.push('cccc');
    expect(tail.toString()).toBe(`${marker(6)}bbcccc`);
    expect(tail.truncatedBytes).toBe(6);
  });

  it('counts the dropped bytes across every push', () => {
    const tail = new OutputTail(3);
    tail.push('12345');
    expect(tail.truncatedBytes).toBe(2);
    tail.push('67');
    expect(tail.truncatedBytes).toBe(4);
    tail.push('8');
    expect(tail.truncatedBytes).toBe(5);
    expect(tail.toString()).toBe(`${marker(5)}678`);
  });

  it('accepts Buffers as well as strings', () => {
    const tail = new OutputTail(5);
    tail.push(Buffer.from('abc'));
    tail.push('def');
    tail.push(Buffer.from('gh'));
    expect(tail.toString()).toBe(`${marker(3)}defgh`);
  });

  it('counts bytes, not characters', () => {
    const tail = new OutputTail(4);
    tail.push('ééé'); // 6 bytes in UTF-8
    expect(tail.toString()).toBe(`${marker(2)}éé`);
    expect(tail.truncatedBytes).toBe(2);
  });

  it('keeps nothing but still says how much it dropped when maxBytes is 0', () => {
    const tail = new OutputTail(0);
    tail.push('abc');
    tail.push(Buffer.from('de'));
    expect(tail.toString()).toBe(marker(5));
    expect(tail.truncatedBytes).toBe(5);
  });

  it('ignores empty chunks', () => {
    const tail = new OutputTail(3);
    tail.push('');
    tail.push(Buffer.alloc(0));
    tail.push('abc');
    tail.push('');
    expect(tail.toString()).toBe('abc');
    expect(tail.truncatedBytes).toBe(0);
  });

  it('holds exactly the last maxBytes of a long, chatty stream', () => {
    const tail = new OutputTail(1_024);
    let all = '';
    for (let i = 0; i < 10_000; i++) {
      const line = `line ${i}\n`;
      all += line;
      tail.push(line);
    }
    const dropped = Buffer.byteLength(all) - 1_024;
    expect(tail.truncatedBytes).toBe(dropped);
    expect(tail.toString()).toBe(`${marker(dropped)}${all.slice(-1_024)}`);
    expect(tail.toString().endsWith('line 9999\n')).toBe(true);
  });

  it('does not change a Buffer it was given', () => {
    const chunk = Buffer.from('abcdef');
    const tail = new OutputTail(2);
    tail.push(chunk);
    expect(chunk.toString()).toBe('abcdef');
    expect(tail.toString()).toBe(`${marker(4)}ef`);
  });
});
