import { ValidationError } from './errors';
import {
  assertValid,
  isPlainObject,
  LABEL_KEY_PATTERN,
  NAME_PATTERN,
  onlyKnownFields,
  requireInteger,
  requireLabels,
  requireName,
  requireNumber,
  validateAll,
  Validator,
} from './validation';

type Input = { name?: unknown; size?: unknown };
const nameIsSet: Validator<Input> = ({ name }) => (name === undefined ? [{ field: 'name', message: 'is required' }] : []);
const sizeIsSet: Validator<Input> = ({ size }) => (size === undefined ? [{ field: 'size', message: 'is required' }] : []);

describe('validateAll', () => {
  it('returns no errors for input every validator accepts', () => {
    expect(validateAll({ name: 'a', size: 1 }, [nameIsSet, sizeIsSet])).toEqual([]);
  });

  it('returns no errors when there are no validators', () => {
    expect(validateAll({}, [])).toEqual([]);
  });

  it('runs every validator, even after one has found errors, and keeps their order', () => {
    expect(validateAll({}, [nameIsSet, sizeIsSet])).toEqual([
      { field: 'name', message: 'is required' },
      { field: 'size', message: 'is required' },
    ]);
  });

  it('keeps every error a single validator reports', () => {
    const both: Validator<Input> = (input) => [...nameIsSet(input), ...sizeIsSet(input)];
    expect(validateAll({}, [both])).toHaveLength(2);
  });

  it('hands each validator the whole input', () => {
    const input = { name: 'a', size: 2 };
    const validator = jest.fn(() => []);
    validateAll(input, [validator, validator]);
    expect(validator).toHaveBeenCalledTimes(2);
    expect(validator).toHaveBeenNthCalledWith(1, input);
    expect(validator).toHaveBeenNthCalledWith(2, input);
  });
});

describe('assertValid', () => {
  it('returns quietly for valid input', () => {
    expect(() => assertValid({ name: 'a', size: 1 }, [nameIsSet, sizeIsSet])).not.toThrow();
  });

  it('throws one ValidationError listing every error', () => {
    let thrown: unknown;
    try {
      assertValid({}, [nameIsSet, sizeIsSet]);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).errors).toEqual([
      { field: 'name', message: 'is required' },
      { field: 'size', message: 'is required' },
    ]);
  });
});

describe('isPlainObject', () => {
  it.each([{}, { a: 1 }, Object.create(null)])('accepts %p', (value) => {
    expect(isPlainObject(value)).toBe(true);
  });

  it.each([null, undefined, [], [1], 'text', 0, true, () => ({})])('rejects %p', (value) => {
    expect(isPlainObject(value)).toBe(false);
  });
});

describe('requireName', () => {
  it('reports a missing required name', () => {
    expect(requireName('backend', undefined, true)).toEqual([{ field: 'backend', message: 'is required' }]);
  });

  it('accepts a missing optional name', () => {
    expect(requireName('queue', undefined, false)).toEqual([]);
  });

  it.each([null, 1, {}, ['a']])('rejects %p as not a string', (value) => {
    expect(requireName('queue', value, false)).toEqual([{ field: 'queue', message: 'must be a string' }]);
  });

  it.each(['a', '9', 'abc-def', 'a.b_c-d', 'x'.repeat(63)])('accepts %j', (value) => {
    expect(requireName('queue', value, true)).toEqual([]);
    expect(NAME_PATTERN.test(value)).toBe(true);
  });

  it.each(['', 'A', 'aB', '-a', '_a', '.a', 'a b', 'a/b', 'é', 'x'.repeat(64)])('rejects %j', (value) => {
    expect(requireName('queue', value, true)).toEqual([
      { field: 'queue', message: expect.stringMatching(/^must be 1-63 characters/) },
    ]);
  });
});

describe('requireInteger', () => {
  it('accepts a missing value', () => {
    expect(requireInteger('n', undefined, 0, 10)).toEqual([]);
  });

  it.each([0, 5, 10])('accepts %d within 0..10, bounds included', (value) => {
    expect(requireInteger('n', value, 0, 10)).toEqual([]);
  });

  it.each([-1, 11])('rejects %d outside 0..10', (value) => {
    expect(requireInteger('n', value, 0, 10)).toEqual([{ field: 'n', message: 'must be between 0 and 10' }]);
  });

  it.each([1.5, NaN, Infinity, '3', null, true])('rejects %p as not an integer', (value) => {
    expect(requireInteger('n', value, 0, 10)).toEqual([{ field: 'n', message: 'must be an integer' }]);
  });
});

describe('requireNumber', () => {
  it('accepts a missing value', () => {
    expect(requireNumber('x', undefined, 0, 1)).toEqual([]);
  });

  it.each([0, 0.25, 1])('accepts %d within 0..1, bounds included', (value) => {
    expect(requireNumber('x', value, 0, 1)).toEqual([]);
  });

  it.each([-0.01, 1.01])('rejects %d outside 0..1', (value) => {
    expect(requireNumber('x', value, 0, 1)).toEqual([{ field: 'x', message: 'must be between 0 and 1' }]);
  });

  it.each([NaN, Infinity, -Infinity, '0.5', null])('rejects %p as not a number', (value) => {
    expect(requireNumber('x', value, 0, 1)).toEqual([{ field: 'x', message: 'must be a number' }]);
  });
});

describe('requireLabels', () => {
  it('accepts missing labels', () => {
    expect(requireLabels('labels', undefined)).toEqual([]);
  });

  it('accepts keys with capitals, dots, slashes and dashes, and values up to 253 characters', () => {
    expect(requireLabels('labels', { Zone: 'eu', 'example.com/team': 'data', a: 'v'.repeat(253), empty: '' })).toEqual([]);
    expect(LABEL_KEY_PATTERN.test('example.com/team')).toBe(true);
  });

  it.each([null, 'zone=eu', ['eu'], 3])('rejects %p as not an object', (value) => {
    expect(requireLabels('labels', value)).toEqual([{ field: 'labels', message: 'must be an object of string values' }]);
  });

  it.each(['', '-zone', '/zone', 'zone name', 'k'.repeat(64)])('rejects %j as a label key', (key) => {
    expect(requireLabels('labels', { [key]: 'v' })).toEqual([{ field: `labels.${key}`, message: 'is not a valid label key' }]);
  });

  it.each([1, null, true, ['a']])('rejects %p as a label value', (value) => {
    expect(requireLabels('labels', { zone: value })).toEqual([{ field: 'labels.zone', message: 'must be a string' }]);
  });

  it('rejects a value longer than 253 characters', () => {
    expect(requireLabels('labels', { zone: 'v'.repeat(254) })).toEqual([
      { field: 'labels.zone', message: 'must be at most 253 characters' },
    ]);
  });

  it('accepts 64 labels and rejects 65', () => {
    const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect(requireLabels('labels', labels(64))).toEqual([]);
    expect(requireLabels('labels', labels(65))).toEqual([{ field: 'labels', message: 'may hold at most 64 labels' }]);
  });

  it('reports both a bad key and a bad value of the same label', () => {
    expect(requireLabels('labels', { 'bad key': 1 })).toEqual([
      { field: 'labels.bad key', message: 'is not a valid label key' },
      { field: 'labels.bad key', message: 'must be a string' },
    ]);
  });
});

describe('onlyKnownFields', () => {
  it('accepts an object with only known fields', () => {
    expect(onlyKnownFields('', { a: 1, b: 2 }, ['a', 'b', 'c'])).toEqual([]);
  });

  it('names each unknown top-level field by its key', () => {
    expect(onlyKnownFields('', { a: 1, x: 2, y: 3 }, ['a'])).toEqual([
      { field: 'x', message: 'is not a known field' },
      { field: 'y', message: 'is not a known field' },
    ]);
  });

  it('names an unknown nested field by its path', () => {
    expect(onlyKnownFields('backoff', { factor: 2 }, ['type'])).toEqual([
      { field: 'backoff.factor', message: 'is not a known field' },
    ]);
  });

  it('reports a field even when its value is undefined', () => {
    expect(onlyKnownFields('', { typo: undefined }, [])).toEqual([{ field: 'typo', message: 'is not a known field' }]);
  });
});
