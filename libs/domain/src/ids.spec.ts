import { isUuid, newJobId, UUID_PATTERN } from './ids';

/**
 * A fresh copy of the module, whose last-timestamp and sequence start from zero, for tests that
 * pass explicit timestamps: in the shared copy, earlier ids would carry over.
 */
function freshIds(): typeof import('./ids') {
  let ids!: typeof import('./ids');
  jest.isolateModules(() => {
    ids = require('./ids');
  });
  return ids;
}

/** The 48-bit Unix-millisecond timestamp at the front of a UUIDv7. */
const timestampOf = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16);
/** The 12-bit counter that follows the version nibble. */
const sequenceOf = (id: string): number => parseInt(id.slice(15, 18), 16);

describe('newJobId', () => {
  it('returns a lower-case UUID in 8-4-4-4-12 form', () => {
    const id = newJobId();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(isUuid(id)).toBe(true);
  });

  it('sets the version nibble to 7 and the variant bits to 10', () => {
    for (let i = 0; i < 1_000; i++) {
      const id = newJobId();
      expect(id[14]).toBe('7');
      // The variant is the top two bits of the 17th hex digit: 10xx is 8, 9, a or b.
      expect(parseInt(id[19]!, 16) >> 2).toBe(0b10);
    }
  });

  it('gives 10,000 ids made in a tight loop, all distinct and strictly increasing as strings', () => {
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) ids.push(newJobId());
    expect(new Set(ids).size).toBe(10_000);
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i - 1]! < ids[i]!)) throw new Error(`id ${i} (${ids[i]}) does not sort after id ${i - 1} (${ids[i - 1]})`);
    }
  });

  it('embeds the current time in milliseconds', () => {
    const { newJobId: fresh } = freshIds();
    const before = Date.now();
    const id = fresh();
    const after = Date.now();
    expect(timestampOf(id)).toBeGreaterThanOrEqual(before);
    expect(timestampOf(id)).toBeLessThanOrEqual(after);
  });

  it('embeds the timestamp it is given', () => {
    const { newJobId: fresh } = freshIds();
    const at = Date.parse('2031-05-06T07:08:09.123Z');
    const id = fresh(at);
    expect(timestampOf(id)).toBe(at);
    expect(id.startsWith(at.toString(16).padStart(12, '0').slice(0, 8))).toBe(true);
  });

  it('starts the sequence at 0 in each new millisecond and counts up within one', () => {
    const { newJobId: fresh } = freshIds();
    const at = 1_800_000_000_000;
    expect([fresh(at), fresh(at), fresh(at)].map(sequenceOf)).toEqual([0, 1, 2]);
    expect(sequenceOf(fresh(at + 1))).toBe(0);
  });

  it('moves on to the next millisecond once 4,096 ids have been made in one', () => {
    const { newJobId: fresh } = freshIds();
    const at = 1_800_000_000_000;
    const ids = Array.from({ length: 4_097 }, () => fresh(at));
    expect(timestampOf(ids[4_095]!)).toBe(at);
    expect(sequenceOf(ids[4_095]!)).toBe(0xfff);
    expect(timestampOf(ids[4_096]!)).toBe(at + 1);
    expect(sequenceOf(ids[4_096]!)).toBe(0);
    expect(ids[4_095]! < ids[4_096]!).toBe(true);
  });

  it('keeps ids increasing when the clock goes backwards', () => {
    const { newJobId: fresh } = freshIds();
    const first = fresh(1_800_000_000_000);
    const second = fresh(1_700_000_000_000);
    expect(second > first).toBe(true);
    expect(timestampOf(second)).toBe(1_800_000_000_000);
  });

  it('fills the rest of the id with random bits', () => {
    const { newJobId: fresh } = freshIds();
    const at = 1_800_000_000_000;
    const tails = new Set(Array.from({ length: 100 }, () => fresh(at).slice(19)));
    expect(tails.size).toBe(100);
  });
});

describe('isUuid', () => {
  it.each([
    '01890a5d-ac96-774b-bcce-b302099a8057',
    '550e8400-e29b-41d4-a716-446655440000',
    '550E8400-E29B-41D4-A716-446655440000',
  ])('accepts %s', (value) => {
    expect(isUuid(value)).toBe(true);
    expect(UUID_PATTERN.test(value)).toBe(true);
  });

  it.each([
    '',
    'not-a-uuid',
    '550e8400e29b41d4a716446655440000',
    '550e8400-e29b-41d4-a716-44665544000',
    '550e8400-e29b-41d4-a716-4466554400000',
    '550e8400-e29b-41d4-a716-44665544000g',
    ' 550e8400-e29b-41d4-a716-446655440000',
    '{550e8400-e29b-41d4-a716-446655440000}',
  ])('rejects %j', (value) => {
    expect(isUuid(value)).toBe(false);
  });
});
