import { readFileSync } from 'node:fs';
import path from 'node:path';
import wabtInit from 'wabt';

/**
 * Test modules are built from WAT sources (./fixtures) at test time with wabt from npm, so no
 * binary of unknown origin is committed.
 */
export async function compileWat(source: string, filename = 'inline.wat'): Promise<Buffer> {
  const wabt = await wabtInit();
  const parsed = wabt.parseWat(filename, source);
  try {
    parsed.resolveNames();
    parsed.validate();
    return Buffer.from(parsed.toBinary({}).buffer);
  } finally {
    parsed.destroy();
  }
}

export function compileFixture(name: string): Promise<Buffer> {
  const file = path.join(__dirname, 'fixtures', `${name}.wat`);
  return compileWat(readFileSync(file, 'utf8'), file);
}
