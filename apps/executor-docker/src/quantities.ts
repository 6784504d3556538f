/**
 * Resource quantities of a docker job, written as in Kubernetes so one job spec reads the same on
 * both backends: cpu in cores (`0.5`, `"500m"`, `"2"`), memory in bytes or with a unit (`"256Mi"`,
 * `"1Gi"`, `"512M"`, `268435456`). Both throw a RangeError whose message says what is accepted.
 */

/** Docker refuses less than 0.01 CPU. */
export const MIN_NANO_CPUS = 10_000_000;
/** Docker and podman refuse a memory limit below 6 MiB. */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

const CPU = /^(\d+(?:\.\d+)?)(m?)$/;
const MEMORY = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$/;
const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/** Cores → the engine's NanoCpus (1 core = 1e9). */
export function parseCpu(value: number | string): number {
  let cores: number;
  if (typeof value === 'number') cores = value;
  else {
    const m = CPU.exec(value.trim());
    if (!m) throw new RangeError(`${JSON.stringify(value)} is not a cpu quantity (cores: 0.5, "2", or millicores: "500m")`);
    cores = m[2] === 'm' ? Number(m[1]) / 1000 : Number(m[1]);
  }
  if (!Number.isFinite(cores) || cores <= 0) throw new RangeError(`${JSON.stringify(value)}: cpu must be more than 0 cores`);
  if (cores > 4096) throw new RangeError(`${JSON.stringify(value)}: cpu is at most 4096 cores`);
  const nano = Math.round(cores * 1e9);
  if (nano < MIN_NANO_CPUS) throw new RangeError(`${JSON.stringify(value)}: cpu is at least 0.01 cores ("10m")`);
  return nano;
}

/** Bytes, or a number with a unit → bytes. */
export function parseMemory(value: number | string): number {
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new RangeError(`${value}: memory as a number is a whole number of bytes`);
    bytes = value;
  } else {
    const m = MEMORY.exec(value.trim());
    if (!m) {
      throw new RangeError(
        `${JSON.stringify(value)} is not a memory quantity (bytes, or a number with Ki, Mi, Gi, Ti or k, M, G, T: "256Mi", "1Gi", "512M")`,
      );
    }
    bytes = Math.floor(Number(m[1]) * MEMORY_UNITS[m[2] ?? '']!);
  }
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`${JSON.stringify(value)}: memory is too large`);
  if (bytes < MIN_MEMORY_BYTES) throw new RangeError(`${JSON.stringify(value)}: memory is at least 6Mi (the engine's minimum)`);
  return bytes;
}

/** Bytes as a short human string for messages: 16777216 → "16 MiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = bytes;
  while (v >= 1024 && i < units.length - 1 && v % 1024 === 0) {
    v /= 1024;
    i++;
  }
  return `${v} ${units[i]}`;
}
