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
  payloadValidateTimeoutMs: ({ env: 'PAYLOAD_VALIDATE_TIMEOUT_MS', kind: 'int', default: '1000', min: 10, max: 60000, description: 'At submit, how long the gateway waits for an executor of the job\'s backend to check the payload (a bad one is a 400); with no answer the job is accepted and the executor judges it when it runs.' }),
  gatewayPort: ({ env: 'GATEWAY_PORT', kind: 'int', default: '8080', min: 0, max: 65535, description: 'HTTP port of the gateway (public API).' }),
  schedulerPort: ({ env: 'SCHEDULER_PORT', kind: 'int', default: '8081', min: 0, max: 65535, description: 'HTTP port of the scheduler (health, metrics).' }),
  registryPort: ({ env: 'REGISTRY_PORT', kind: 'int', default: '8082', min: 0, max: 65535, description: 'HTTP port of the worker registry (health, metrics).' }),
  executorPort: ({ env: 'EXECUTOR_PORT', kind: 'int', default: '8090', min: 0, max: 65535, description: 'HTTP port of an executor (health, metrics); 0 picks a free one.' }),
  authDisabled: ({ env: 'AUTH_DISABLED', kind: 'bool', default: 'false', description: 'Gateway: answer every request without an API key, as tenant `default` with every scope. Local development only; the gateway logs a loud warning at start.' }),
  publicDocs: ({ env: 'PUBLIC_DOCS', kind: 'bool', default: 'false', description: 'Gateway: serve the API documentation (`/docs` and `/openapi.json`) without an API key; otherwise they need a key of any scope. The gateway logs it at start.' }),
  rateLimitPerSecond: ({ env: 'RATE_LIMIT_PER_SECOND', kind: 'int', default: '100', min: 0, max: 1000000, description: 'Gateway: requests per second one API key may make (token bucket, per gateway instance); above it a 429 with Retry-After. 0: no limit.' }),
  rateLimitBurst: ({ env: 'RATE_LIMIT_BURST', kind: 'int', default: '200', min: 1, max: 10000000, description: 'Gateway: requests one API key may make at once above its rate (the token bucket\'s size).' }),
  tenantMaxWaitingJobs: ({ env: 'TENANT_MAX_WAITING_JOBS', kind: 'int', default: '100000', min: 0, max: 100000000, description: 'Gateway: jobs one tenant may have waiting (BLOCKED, SCHEDULED, PENDING); a submission past it is a 429 `quota_exceeded`. 0: no quota.' }),
  maxPayloadBytes: ({ env: 'MAX_PAYLOAD_BYTES', kind: 'int', default: '1048576', min: 1, max: 67108864, description: 'Largest job payload (its JSON, in bytes); larger is a 400 naming `payload`. MAX_BODY_BYTES caps the whole request first.' }),
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
  executorResources: ({ env: 'EXECUTOR_RESOURCES', kind: 'string', default: '', description: 'What one executor offers to jobs with `resources`, as `name=number` pairs: `cpuMillis=4000,memoryMb=8192,gpu=1`. Slots are `EXECUTOR_CONCURRENCY`.' }),
  executorId: ({ env: 'EXECUTOR_ID', kind: 'string', default: '', description: 'Worker id; default `<backend>-<host>-<pid>-<random>`.' }),
  drainTimeoutMs: ({ env: 'DRAIN_TIMEOUT_MS', kind: 'int', default: '30000', min: 0, max: 86400000, description: 'On SIGTERM, how long running attempts may finish before they are handed back for retry.' }),
  ackWaitMs: ({ env: 'DISPATCH_ACK_WAIT_MS', kind: 'int', default: '30000', min: 1000, max: 3600000, description: 'JetStream redelivers a dispatch no executor acknowledged within this time.' }),
  reportAckWaitMs: ({ env: 'REPORT_ACK_WAIT_MS', kind: 'int', default: '10000', min: 500, max: 3600000, description: 'JetStream redelivers an executor report that no scheduler acknowledged within this time (a scheduler died holding it).' }),
  outputTailBytes: ({ env: 'OUTPUT_TAIL_BYTES', kind: 'int', default: '65536', min: 0, max: 16777216, description: 'Bytes of stdout and of stderr kept on each attempt (the end is kept; truncation is marked).' }),
  processAllowInheritEnv: ({ env: 'PROCESS_ALLOW_INHERIT_ENV', kind: 'bool', default: 'false', description: 'process backend: let a payload ask for the executor\'s whole environment (`inheritEnv: true`); otherwise a job gets PATH, HOME, LANG, LC_ALL, TZ, TMPDIR and what its payload sets, and `inheritEnv` is a 400.' }),
  killGraceMs: ({ env: 'KILL_GRACE_MS', kind: 'int', default: '2000', min: 0, max: 600000, description: 'process backend: time between SIGTERM and SIGKILL to the process group on timeout or cancel.' }),
  // Tracing (read by @blixard/telemetry/register before anything else loads, and validated there).
  otelEndpoint: ({ env: 'OTEL_EXPORTER_OTLP_ENDPOINT', kind: 'string', default: '', description: 'OTLP/HTTP collector (Jaeger: `http://jaeger:4318`) every service sends its traces to; empty: tracing off.' }),
  otelProtocol: ({ env: 'OTEL_EXPORTER_OTLP_PROTOCOL', kind: 'enum', default: 'http/json', values: ['http/json', 'http/protobuf'], description: 'OTLP encoding; traces are sent as JSON (Jaeger and the OpenTelemetry Collector take both on their HTTP port).' }),
  otelSampler: ({ env: 'OTEL_TRACES_SAMPLER', kind: 'enum', default: 'parentbased_always_on', values: ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'], description: 'Which traces are kept; `parentbased_*`: the gateway decides per job and every later hop follows.' }),
  otelSamplerArg: ({ env: 'OTEL_TRACES_SAMPLER_ARG', kind: 'string', default: '', description: 'The ratio (0 to 1) of a `*traceidratio` sampler.' }),
  otelServiceName: ({ env: 'OTEL_SERVICE_NAME', kind: 'string', default: '', description: 'Service name on traces; empty: the app\'s name (`gateway`, `scheduler`, `executor-mock`, ...).' }),
  logMaxBytesPerAttempt: ({ env: 'LOG_MAX_BYTES_PER_ATTEMPT', kind: 'int', default: '10485760', min: 1024, max: 1073741824, description: 'Output (stdout and stderr lines) streamed and stored per attempt; past it the rest is dropped and a `system` line says so.' }),
  progressMinIntervalMs: ({ env: 'PROGRESS_MIN_INTERVAL_MS', kind: 'int', default: '250', min: 0, max: 600000, description: 'An executor sends an attempt\'s progress at most this often (the latest report wins); the scheduler stores each one it receives and emits `dev.blixard.job.progress`.' }),
  sseHeartbeatMs: ({ env: 'SSE_HEARTBEAT_MS', kind: 'int', default: '15000', min: 100, max: 600000, description: 'Gateway: a comment line is written to idle SSE streams this often, so proxies keep them open.' }),
  notifierPort: ({ env: 'NOTIFIER_PORT', kind: 'int', default: '8083', min: 0, max: 65535, description: 'HTTP port of the notifier (health, metrics).' }),
  webhookAllowPrivate: ({ env: 'WEBHOOK_ALLOW_PRIVATE', kind: 'bool', default: 'false', description: 'Allow webhook URLs that resolve to loopback, private, link-local or other non-public addresses (checked at creation and at every delivery). Development and tests only.' }),
  webhookTimeoutMs: ({ env: 'WEBHOOK_TIMEOUT_MS', kind: 'int', default: '10000', min: 100, max: 120000, description: 'How long one webhook delivery attempt waits for the receiver\'s answer.' }),
  webhookRetryBaseMs: ({ env: 'WEBHOOK_RETRY_BASE_MS', kind: 'int', default: '5000', min: 10, max: 3600000, description: 'First wait before a failed webhook delivery is tried again; doubled each attempt (with 20% jitter) up to WEBHOOK_RETRY_MAX_MS.' }),
  webhookRetryMaxMs: ({ env: 'WEBHOOK_RETRY_MAX_MS', kind: 'int', default: '3600000', min: 10, max: 86400000, description: 'Longest wait between two attempts of a webhook delivery.' }),
  webhookRetryForMs: ({ env: 'WEBHOOK_RETRY_FOR_MS', kind: 'int', default: '86400000', min: 0, max: 2592000000, description: 'A webhook delivery is retried for this long after the event; then it is marked failed.' }),
  webhookDisableAfterMs: ({ env: 'WEBHOOK_DISABLE_AFTER_MS', kind: 'int', default: '259200000', min: 0, max: 2592000000, description: 'A webhook whose deliveries have all failed for this long is disabled (event `dev.blixard.webhook.disabled`); its pending deliveries fail.' }),
  webhookConcurrency: ({ env: 'WEBHOOK_CONCURRENCY', kind: 'int', default: '16', min: 1, max: 1000, description: 'Webhook deliveries one notifier sends at once.' }),
  dockerHost: ({ env: 'DOCKER_HOST', kind: 'string', default: 'unix:///var/run/docker.sock', description: 'docker backend: the engine\'s API socket (Docker, or podman\'s `podman system service`); only `unix://`.' }),
  dockerNetworks: ({ env: 'DOCKER_NETWORKS', kind: 'list', default: 'none,bridge', description: 'docker backend: network modes a job may ask for (`payload.network`); the first is the default. Add `host` only if every submitter may use the host\'s network.' }),
  dockerScratchDir: ({ env: 'DOCKER_SCRATCH_DIR', kind: 'string', default: '', description: 'docker backend: host directory under which each attempt\'s scratch directory is made and bind-mounted (the engine resolves it on its host: an executor in a container must see it at the same path); empty: the OS temp directory.' }),
  wasmModuleDir: ({ env: 'WASM_MODULE_DIR', kind: 'string', default: '', description: 'wasm backend: directory a job\'s `module.path` is resolved in (nothing outside it, symlinks included, is read); empty: only inline (`module.base64`) modules.' }),
  wasmMaxInlineModuleBytes: ({ env: 'WASM_MAX_INLINE_MODULE_BYTES', kind: 'int', default: '1048576', min: 8, max: 67108864, description: 'wasm backend: largest module a payload may carry in `module.base64` (decoded bytes); MAX_BODY_BYTES also caps it.' }),
  wasmMemoryLimitMb: ({ env: 'WASM_MEMORY_LIMIT_MB', kind: 'int', default: '256', min: 1, max: 4096, description: 'wasm backend: most linear memory one module may use; a payload may ask for less (`memoryLimitMb`).' }),
  wasmScratchDir: ({ env: 'WASM_SCRATCH_DIR', kind: 'string', default: '', description: 'wasm backend: where each attempt\'s scratch directory (preopened as `/scratch`, removed afterwards) is made; empty: the OS temp directory.' }),
  kubeNamespace: ({ env: 'KUBE_NAMESPACE', kind: 'string', default: '', description: 'kubernetes backend: namespace the Jobs run in; empty: the executor pod\'s own namespace (in-cluster), else `default`.' }),
  kubeApiUrl: ({ env: 'KUBE_API_URL', kind: 'string', default: '', description: 'kubernetes backend: API server URL, used with KUBE_TOKEN; empty: KUBECONFIG, ~/.kube/config or the in-cluster service account.' }),
  kubeToken: ({ env: 'KUBE_TOKEN', kind: 'string', default: '', description: 'kubernetes backend: bearer token for KUBE_API_URL.' }),
  kubeInsecureSkipTlsVerify: ({ env: 'KUBE_INSECURE_SKIP_TLS_VERIFY', kind: 'bool', default: 'false', description: 'kubernetes backend: do not verify KUBE_API_URL\'s TLS certificate (development clusters only).' }),
  kubeJobTtlSeconds: ({ env: 'KUBE_JOB_TTL_SECONDS', kind: 'int', default: '600', min: 0, max: 31536000, description: 'kubernetes backend: `ttlSecondsAfterFinished` of each Job (finished Jobs and their logs stay this long for `kubectl`).' }),
  kubePollIntervalMs: ({ env: 'KUBE_POLL_INTERVAL_MS', kind: 'int', default: '500', min: 50, max: 60000, description: 'kubernetes backend: how often a running Job and its pod are read.' }),
  kubeStartTimeoutMs: ({ env: 'KUBE_START_TIMEOUT_MS', kind: 'int', default: '300000', min: 1000, max: 86400000, description: 'kubernetes backend: how long a pod may stay unscheduled or Pending (pulling its image) before the attempt fails.' }),
  kubeJobServiceAccount: ({ env: 'KUBE_JOB_SERVICE_ACCOUNT', kind: 'string', default: '', description: 'kubernetes backend: service account of the Jobs\' pods; empty: the namespace default, with no API token mounted.' }),
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
/** `cpuMillis=4000,memoryMb=8192,gpu=1` → numbers; anything else is a ConfigError naming the pair. */
export function parseResources(raw: string, env = 'EXECUTOR_RESOURCES'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(parseLabels(raw, env))) {
    const n = Number(v);
    if (v === '' || !Number.isFinite(n) || n < 0) throw new ConfigError([`${env}: ${k}=${v} is not a non-negative number`]);
    if (k === 'slots') throw new ConfigError([`${env}: slots come from EXECUTOR_CONCURRENCY`]);
    out[k] = n;
  }
  return out;
}

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
