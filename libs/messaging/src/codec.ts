import type { z } from 'zod';
import { describeZodError } from '@blixard/contracts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** Parses a message body with its schema; never throws (a bad message is rejected, not a crash). */
export function decodeJson<T>(data: Uint8Array, schema: z.ZodType<T, z.ZodTypeDef, unknown>): Decoded<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(decoder.decode(data));
  } catch {
    return { ok: false, error: 'body is not JSON' };
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: describeZodError(parsed.error) };
}
