/**
 * Every NATS subject, stream and consumer name of Blixard, and the only place one is written.
 * All of them derive from one prefix (`BLIXARD_PREFIX`, default `blixard`), so several clusters —
 * or several test files — share one NATS server without seeing each other.
 */
export interface Subjects {
  readonly prefix: string;
  /** JetStream work queue, one durable pull consumer per backend. Message id `<jobId>:<attempt>`. */
  dispatch(backend: string): string;
  /** Attempts placed on one worker (jobs with requirements), its own durable consumer. */
  dispatchTo(backend: string, workerId: string): string;
  readonly dispatchAll: string;
  /** Core NATS request/reply, queue group per backend: "is this payload valid?" (gateway → executor). */
  validate(backend: string): string;
  /** Executor → scheduler reports of one job, in a JetStream stream consumed by the schedulers. */
  report(jobId: string): string;
  readonly reportAll: string;
  /** CloudEvents fan-out (also kept in a stream for replay). */
  event(entity: 'job' | 'worker' | 'webhook', type: string): string;
  /** Every event of one entity (a filter subject). */
  eventsOf(entity: 'job' | 'worker' | 'webhook'): string;
  readonly eventAll: string;
  /** Core NATS, executor → schedulers (queue group): an attempt's progress. Lossy; the latest (by seq) wins. */
  progress(jobId: string): string;
  readonly progressAll: string;
  /** JetStream stream `<PREFIX>_LOGS` (short retention): an attempt's output lines as the executor reads them. */
  logs(jobId: string): string;
  readonly logsAll: string;
  /** Request/reply between services. */
  rpc(service: 'registry' | 'scheduler', method: string): string;
  /** To one executor: cancel an attempt, drain. */
  control(workerId: string): string;
  /** Core NATS: executors' heartbeats (they register with the first one). */
  readonly heartbeat: string;
  /** Core NATS: "there is work" nudges to the schedulers; losing one only delays a round. */
  readonly wakeDispatch: string;
  readonly wakeReconcile: string;
  readonly streams: { dispatch: string; reports: string; events: string; logs: string };
  readonly consumers: { executor(backend: string): string; worker(workerId: string): string; scheduler: string; logArchiver: string; notifier: string };
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

export function subjects(prefix = 'blixard'): Subjects {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix)) {
    throw new Error(`invalid subject prefix ${JSON.stringify(prefix)}`);
  }
  const token = (kind: string, value: string): string => {
    // A dot, space or wildcard in a token would let one name address another's subjects.
    if (!TOKEN.test(value)) throw new Error(`invalid ${kind} ${JSON.stringify(value)} for a subject token`);
    return value;
  };
  // Stream and consumer names may not contain dots.
  const upper = prefix.replace(/[.-]/g, '_').toUpperCase();
  return {
    prefix,
    dispatch: (backend) => `${prefix}.dispatch.${token('backend', backend)}`,
    dispatchTo: (backend, workerId) => `${prefix}.dispatch.${token('backend', backend)}.worker.${token('worker id', workerId)}`,
    dispatchAll: `${prefix}.dispatch.>`,
    validate: (backend) => `${prefix}.validate.${token('backend', backend)}`,
    report: (jobId) => `${prefix}.report.${token('job id', jobId)}`,
    reportAll: `${prefix}.report.>`,
    event: (entity, type) => `${prefix}.events.${entity}.${token('event type', type)}`,
    eventsOf: (entity) => `${prefix}.events.${entity}.*`,
    eventAll: `${prefix}.events.>`,
    progress: (jobId) => `${prefix}.progress.${token('job id', jobId)}`,
    progressAll: `${prefix}.progress.>`,
    logs: (jobId) => `${prefix}.logs.${token('job id', jobId)}`,
    logsAll: `${prefix}.logs.>`,
    rpc: (service, method) => `${prefix}.rpc.${service}.${token('method', method)}`,
    control: (workerId) => `${prefix}.control.${token('worker id', workerId)}`,
    heartbeat: `${prefix}.registry.heartbeat`,
    wakeDispatch: `${prefix}.wake.dispatch`,
    wakeReconcile: `${prefix}.wake.reconcile`,
    streams: { dispatch: `${upper}_DISPATCH`, reports: `${upper}_REPORTS`, events: `${upper}_EVENTS`, logs: `${upper}_LOGS` },
    consumers: {
      executor: (backend) => `executor-${token('backend', backend)}`,
      worker: (workerId) => `worker-${token('worker id', workerId)}`,
      scheduler: 'scheduler',
      logArchiver: 'log-archiver',
      notifier: 'notifier',
    },
  };
}

/** `<jobId>:<attempt>`: the JetStream message id of a dispatch, and the idempotency key of an attempt. */
export function attemptKey(jobId: string, attempt: number): string {
  return `${jobId}:${attempt}`;
}
