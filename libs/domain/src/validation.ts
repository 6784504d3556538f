import { FieldError, ValidationError } from './errors';

/**
 * Composable validators: each looks at the whole input and returns every problem it sees, and
 * `validateAll` runs all of them and collects every error, so a client learns everything wrong
 * with a request at once. A third party adds a rule by adding a Validator to the list.
 */
export type Validator<T> = (input: T) => FieldError[];

export function validateAll<T>(input: T, validators: readonly Validator<T>[]): FieldError[] {
  return validators.flatMap((validate) => validate(input));
}

export function assertValid<T>(input: T, validators: readonly Validator<T>[]): void {
  const errors = validateAll(input, validators);
  if (errors.length > 0) throw new ValidationError(errors);
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Names of backends, queues and label keys: lower-case, digits, `-`, `_`, `.`; 1–63 chars. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const LABEL_KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

export function requireName(field: string, value: unknown, required: boolean): FieldError[] {
  if (value === undefined) return required ? [{ field, message: 'is required' }] : [];
  if (typeof value !== 'string') return [{ field, message: 'must be a string' }];
  if (!NAME_PATTERN.test(value)) {
    return [{ field, message: 'must be 1-63 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit' }];
  }
  return [];
}

export function requireInteger(
  field: string,
  value: unknown,
  min: number,
  max: number,
): FieldError[] {
  if (value === undefined) return [];
  if (typeof value !== 'number' || !Number.isInteger(value)) return [{ field, message: 'must be an integer' }];
  if (value < min || value > max) return [{ field, message: `must be between ${min} and ${max}` }];
  return [];
}

export function requireNumber(field: string, value: unknown, min: number, max: number): FieldError[] {
  if (value === undefined) return [];
  if (typeof value !== 'number' || !Number.isFinite(value)) return [{ field, message: 'must be a number' }];
  if (value < min || value > max) return [{ field, message: `must be between ${min} and ${max}` }];
  return [];
}

export function requireLabels(field: string, value: unknown): FieldError[] {
  if (value === undefined) return [];
  if (!isPlainObject(value)) return [{ field, message: 'must be an object of string values' }];
  const entries = Object.entries(value);
  const errors: FieldError[] = [];
  if (entries.length > 64) errors.push({ field, message: 'may hold at most 64 labels' });
  for (const [key, v] of entries) {
    if (!LABEL_KEY_PATTERN.test(key)) errors.push({ field: `${field}.${key}`, message: 'is not a valid label key' });
    if (typeof v !== 'string') errors.push({ field: `${field}.${key}`, message: 'must be a string' });
    else if (v.length > 253) errors.push({ field: `${field}.${key}`, message: 'must be at most 253 characters' });
  }
  return errors;
}

/** Fields the object may have; any other key is reported (a typo must not be silently ignored). */
export function onlyKnownFields(field: string, value: Record<string, unknown>, known: readonly string[]): FieldError[] {
  return Object.keys(value)
    .filter((key) => !known.includes(key))
    .map((key) => ({ field: field ? `${field}.${key}` : key, message: 'is not a known field' }));
}
