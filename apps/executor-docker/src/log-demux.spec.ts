import { LogDemuxer, LogStream } from './log-demux';

function frame(kind: number, text: string): Buffer {
  const data = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = kind;
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

function collect(): { frames: [LogStream, string][]; demux: LogDemuxer } {
  const frames: [LogStream, string][] = [];
  return { frames, demux: new LogDemuxer((s, d) => frames.push([s, d.toString()])) };
}

describe('multiplexed log stream', () => {
  it('splits frames into stdout and stderr, several per chunk', () => {
    const { frames, demux } = collect();
    demux.push(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n'), frame(1, 'more')]));
    expect(frames).toEqual([['stdout', 'out\n'], ['stderr', 'err\n'], ['stdout', 'more']]);
    expect(demux.pendingBytes).toBe(0);
  });

  it('reassembles frames split anywhere, also inside the header', () => {
    const bytes = Buffer.concat([frame(1, 'hello '), frame(2, 'oops'), frame(1, 'world')]);
    for (let size = 1; size <= 9; size++) {
      const { frames, demux } = collect();
      for (let i = 0; i < bytes.length; i += size) demux.push(bytes.subarray(i, i + size));
      expect(frames).toEqual([['stdout', 'hello '], ['stderr', 'oops'], ['stdout', 'world']]);
    }
  });

  it('keeps an incomplete frame until the rest arrives', () => {
    const { frames, demux } = collect();
    const f = frame(1, 'abcdef');
    demux.push(f.subarray(0, 10));
    expect(frames).toEqual([]);
    expect(demux.pendingBytes).toBe(10);
    demux.push(f.subarray(10));
    expect(frames).toEqual([['stdout', 'abcdef']]);
  });

  it('treats an engine error frame (3) as stderr and skips empty frames', () => {
    const { frames, demux } = collect();
    demux.push(Buffer.concat([frame(3, 'engine said no'), frame(1, '')]));
    expect(frames).toEqual([['stderr', 'engine said no']]);
  });

  it('carries binary and multi-byte output unchanged', () => {
    const received: Buffer[] = [];
    const demux = new LogDemuxer((_s, d) => received.push(Buffer.from(d)));
    const payload = Buffer.from([0, 1, 2, 255, 0xe2, 0x82, 0xac]);
    const header = Buffer.alloc(8);
    header[0] = 1;
    header.writeUInt32BE(payload.length, 4);
    demux.push(Buffer.concat([header, payload]));
    expect(Buffer.concat(received)).toEqual(payload);
  });
});
