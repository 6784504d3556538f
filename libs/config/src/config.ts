/**
 * Typed configuration from the environment, validated at start. Every value has one name, one
 * default and one description; `CONFIG_TABLE` is the single list (the README's configuration
 * table is printed from it by `blixard config`). A service reads only the keys it declares, and
 * an invalid value stops it at start with every problem listed.
 */
export type ConfigKind = 'string' | 'int' | 'bool' | 'url' | 'enum' | 'list';

export interface ConfigEntry {
  readonly env: string;
  readonly kind: ConfigKind;
  readonly default: string | undefined;
  readonly description: string;
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
}


export const CONFIG_TABLE = {
  databaseUrl: ({ env: 'DATABASE_URL', kind: 'url', default: 'postgresql://postgres@127.0.0.1:5432/blixard', description: 'Postgres connection string (the source of truth).' }),
  databasePoolSize: ({ env: 'DATABASE_POOL_SIZE', kind: 'int', default: '10', min: 1, max: 200, description: 'Connections per service process.' }),
  natsUrl: ({ env: 'NATS_URL', kind: 'list', default: 'nats://127.0.0.1:4222', description: 'NATS server(s), comma-separated; JetStream must be enabled.' }),
  subjectPrefix: ({ env: 'BLIXARD_PREFIX', kind: 'string', default: 'blixard', description: 'Prefix of every NATS subject, stream and consumer name (one cluster per prefix).' }),
  logLevel: ({ env: 'LOG_LEVEL', kind: 'enum', default: 'info', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], description: 'pino log level.' }),
  logFormat: ({ env: 'LOG_FORMAT', kind: 'enum', default: 'json', values: ['json', 'pretty'], description: 'JSON lines in production, pretty for a terminal.' }),
  gatewayPort: ({ env: 'GATEWAY_PORT', kind: 'int', default: '8080', min: 0, max: 65535, description: 'HTTP port of the gateway (public API).' }),
  schedulerPort: ({ env: 'SCHEDULER_PORT', kind: 'int', default: '8081', min: 0, max: 65535, description: 'HTTP port of the scheduler (health, metrics).' }),
  registryPort: ({ env: 'REGISTRY_PORT', kind: 'int', default: '8082', min: 0, max: 65535, description: 'HTTP port of the worker registry (health, metrics).' }),
  executorPort: ({ env: 'EXECUTOR_PORT', kind: 'int', default: '8090', min: 0, max: 65535, description: 'HTTP port of an executor (health, metrics); 0 picks a free one.' }),
  maxBodyBytes: ({ env: 'MAX_BODY_BYTES', kind: 'int', default: '1048576', min: 1024, max: 67108864, description: 'Largest accepted request body (and so job payload); larger is a 413.' }),
  dispatchBatchSize: ({ env: 'DISPATCH_BATCH_SIZE', kind: 'int', default: '100', min: 1, max: 10000, description: 'Jobs claimed per dispatch round.' }),
  dispatchFairness: ({ env: 'DISPATCH_FAIRNESS', kind: 'bool', default: 'true', description: 'Share dispatch round-robin across fairness keys (tenants); false: strict priority then age.' }),
  fairnessReservePercent: ({ env: 'FAIRNESS_RESERVE_PERCENT', kind: 'int', default: '2', min: 0, max: 50, description: 'Minimum share: percent of each backend\'s slots (rounded down) kept for fairness keys with nothing running there, so a tenant arriving during another\'s flood starts at the next round.' }),
  dispatchIntervalMs: ({ env: 'DISPATCH_INTERVAL_MS', kind: 'int', default: '250', min: 10, max: 60000, description: 'Longest pause between dispatch rounds when no wake-up arrives.' }),
  reconcileIntervalMs: ({ env: 'RECONCILE_INTERVAL_MS', kind: 'int', default: '1000', min: 50, max: 600000, description: 'Period of the reconciler sweep (due jobs, expired leases, deadlines, outbox).' }),
  claimLeaseMs: ({ env: 'CLAIM_LEASE_MS', kind: 'int', default: '30000', min: 100, max: 3600000, description: 'How long a dispatched attempt may wait for an executor to start it before it is dispatched again.' }),
  runLeaseMs: ({ env: 'RUN_LEASE_MS', kind: 'int', default: '15000', min: 100, max: 3600000, description: 'Lease of a running attempt; renewed by every executor heartbeat.' }),
  idempotencyWindowMs: ({ env: 'IDEMPOTENCY_WINDOW_MS', kind: 'int', default: '86400000', min: 1000, max: 31536000000, description: 'How long an idempotency key returns its original job; afterwards the key may be used for a new job.' }),
  timeoutGraceMs: ({ env: 'TIMEOUT_GRACE_MS', kind: 'int', default: '5000', min: 0, max: 3600000, description: 'How long past its deadline the scheduler waits for the executor before it times an attempt out itself.' }),
  heartbeatIntervalMs: ({ env: 'HEARTBEAT_INTERVAL_MS', kind: 'int', default: '2000', min: 50, max: 600000, description: 'Executor heartbeat period.' }),
  workerLostAfterMissed: ({ env: 'WORKER_LOST_AFTER_MISSED', kind: 'int', default: '3', min: 1, max: 1000, description: 'Missed heartbeats after which the registry declares a worker lost and its attempts are requeued.' }),
  executorConcurrency: ({ env: 'EXECUTOR_CONCURRENCY', kind: 'int', default: '4', min: 1, max: 10000, description: 'Attempts one executor runs at once.' }),
  executorLabels: ({ env: 'EXECUTOR_LABELS', kind: 'string', default: '', description: 'Executor labels, `key=value` pairs separated by commas.' }),
  executorId: ({ env: 'EXECUTOR_ID', kind: 'string', default: '', description: 'Worker id; default `<backend>-<host>-<pid>-<random>`.' }),
  drainTimeoutMs: ({ env: 'DRAIN_TIMEOUT_MS', kind: 'int', default: '30000', min: 0, max: 86400000, description: 'On SIGTERM, how long running attempts may finish before they are handed back for retry.' }),
  ackWaitMs: ({ env: 'DISPATCH_ACK_WAIT_MS', kind: 'int', default: '30000', min: 1000, max: 3600000, description: 'JetStream redelivers a dispatch no executor acknowledged within this time.' }),
  reportAckWaitMs: ({ env: 'REPORT_ACK_WAIT_MS', kind: 'int', default: '10000', min: 500, max: 3600000, description: 'JetStream redelivers an executor report that no scheduler acknowledged within this time (a scheduler died holding it).' }),
  outputTailBytes: ({ env: 'OUTPUT_TAIL_BYTES', kind: 'int', default: '65536', min: 0, max: 16777216, description: 'Bytes of stdout and of stderr kept on each attempt (the end is kept; truncation is marked).' }),
  killGraceMs: ({ env: 'KILL_GRACE_MS', kind: 'int', default: '2000', min: 0, max: 600000, description: 'process backend: time between SIGTERM and SIGKILL to the process group on timeout or cancel.' }),
} as const satisfies Record<string, ConfigEntry>;

export type ConfigKey = keyof typeof CONFIG_TABLE;

type ValueOf<E extends ConfigEntry> = E['kind'] extends 'int'
  ? number
  : E['kind'] extends 'bool'
    ? boolean
    : E['kind'] extends 'list'
      ? string[]
      : string;

export type Config<K extends ConfigKey> = { [P in K]: ValueOf<(typeof CONFIG_TABLE)[P]> };

export class ConfigError extends Error {
  readonly code = 'invalid_configuration';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function parseValue(e: ConfigEntry, raw: string): { value?: unknown; problem?: string } {
  switch (e.kind) {
    case 'int': {
      if (!/^-?\d+$/.test(raw.trim())) return { problem: `${e.env}=${JSON.stringify(raw)} is not an integer` };
      const n = Number(raw);
      if ((e.min !== undefined && n < e.min) || (e.max !== undefined && n > e.max)) {
        return { problem: `${e.env}=${n} is out of range ${e.min ?? '-inf'}..${e.max ?? 'inf'}` };
      }
      return { value: n };
    }
    case 'bool':
      if (['true', '1', 'yes'].includes(raw.toLowerCase())) return { value: true };
      if (['false', '0', 'no', ''].includes(raw.toLowerCase())) return { value: false };
      return { problem: `${e.env}=${JSON.stringify(raw)} is not a boolean (true/false)` };
    case 'enum':
      return e.values!.includes(raw) ? { value: raw } : { problem: `${e.env}=${JSON.stringify(raw)} must be one of ${e.values!.join(', ')}` };
    case 'url':
      try {
        new URL(raw);
        return { value: raw };
      } catch {
        return { problem: `${e.env}=${JSON.stringify(raw)} is not a URL` };
      }
    case 'list':
      return { value: raw.split(',').map((s) => s.trim()).filter(Boolean) };
    case 'string':
      return { value: raw };
  }
}

/**
 * Reads `keys` from `env` (default: process.env), applying defaults; collects every problem and
 * throws one ConfigError naming each bad variable.
 */
export function loadConfig<K extends ConfigKey>(
  keys: readonly K[],
  env: Record<string, string | undefined> = process.env,
): Config<K> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const key of keys) {
    const e: ConfigEntry = CONFIG_TABLE[key];
    const raw = env[e.env] ?? e.default;
    if (raw === undefined) {
      problems.push(`${e.env} is required: ${e.description}`);
      continue;
    }
    const { value, problem } = parseValue(e, raw);
    if (problem) problems.push(problem);
    else out[key] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as Config<K>;
}

/** `key=value,key2=value2` → object; throws ConfigError on a malformed pair. */
export function parseLabels(raw: string, env = 'EXECUTOR_LABELS'): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = pair.indexOf('=');
    if (i <= 0) throw new ConfigError([`${env}: ${JSON.stringify(pair)} is not key=value`]);
    labels[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return labels;
}

/** The configuration table as Markdown, for the README. */
export function configTableMarkdown(): string {
  const rows = Object.values(CONFIG_TABLE as Record<string, ConfigEntry>).map(
    (e) => `| \`${e.env}\` | ${e.default === undefined ? '(required)' : e.default === '' ? '(empty)' : `\`${e.default}\``} | ${e.description} |`,
  );
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
