import { connect, NatsConnection, headers as natsHeaders, MsgHdrs } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  JetStreamApiError,
  jetstreamManager,
  JetStreamClient,
  JetStreamManager,
  RetentionPolicy,
  StorageType,
  StreamConfig,
} from '@nats-io/jetstream';
import { subjects as makeSubjects, Subjects } from '@blixard/contracts';
import type { Logger, Metrics } from '@blixard/telemetry';
import { instrumentNats } from './tracing';

/**
 * The NATS connection of one service: core NATS for requests, wake-ups and fan-out; JetStream
 * for the durable dispatch and report queues. NATS carries work and news, never the only copy:
 * every consumer of this bus is idempotent and Postgres decides.
 */
export interface Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly subjects: Subjects;
  close(): Promise<void>;
}

export interface BusOptions {
  servers: string[];
  prefix: string;
  name: string;
  logger: Logger;
  /** Counts NATS errors (`blixard_nats_errors_total`) when given. */
  metrics?: Metrics;
}

/**
 * Connects to NATS. The connection and JetStream client it returns are traced: every publish and
 * request inside a span carries the W3C trace context in its headers, every subscription callback
 * continues it (see tracing.ts).
 */
export async function connectBus({ servers, prefix, name, logger, metrics }: BusOptions): Promise<Bus> {
  const nc = await connect({
    servers,
    name,
    // Reconnect forever: a NATS restart must delay work, not stop a service.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    // Otherwise every request and JetStream publish builds an Error up front for its stack trace:
    // 8.5 % of a busy scheduler's CPU (measured by profile under the noisy-neighbour benchmark).
    noAsyncTraces: true,
  });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'error') metrics?.natsErrors.inc({ operation: 'connection' });
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error') {
        logger.warn({ nats: s.type, server: 'server' in s ? s.server : undefined }, `nats ${s.type}`);
      }
    }
  })().catch(() => undefined);
  const jsm = await jetstreamManager(nc);
  const traced = instrumentNats(nc, jetstream(nc), metrics);
  return {
    nc: traced.nc,
    js: traced.js,
    jsm,
    subjects: makeSubjects(prefix),
    async close() {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}

const EVENTS_MAX_AGE_NS = 7 * 24 * 3600 * 1e9;
/**
 * Output lines stay in the logs stream this long: long enough for a follower to catch up with
 * what the archiver has not stored in Postgres yet, no longer (Postgres keeps them).
 */
export const LOGS_MAX_AGE_MS = 3_600_000;
const DUPLICATE_WINDOW_NS = 2 * 60 * 1e9;

/** The streams of ARCHITECTURE.md "Messaging", and the logs stream. Safe to call from every service at start. */
export async function ensureStreams(bus: Bus): Promise<void> {
  const s = bus.subjects;
  await ensureStream(bus.jsm, {
    name: s.streams.dispatch,
    subjects: [s.dispatchAll],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: DUPLICATE_WINDOW_NS,
  });
  await ensureStream(bus.jsm, {
    name: s.streams.reports,
    subjects: [s.reportAll],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: DUPLICATE_WINDOW_NS,
  });
  await ensureStream(bus.jsm, {
    name: s.streams.events,
    subjects: [s.eventAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: EVENTS_MAX_AGE_NS,
    duplicate_window: DUPLICATE_WINDOW_NS,
  });
  await ensureStream(bus.jsm, {
    name: s.streams.logs,
    subjects: [s.logsAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: LOGS_MAX_AGE_MS * 1e6,
    duplicate_window: DUPLICATE_WINDOW_NS,
  });
}

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    await jsm.streams.add(config);
  } catch (err) {
    // Another service created it between our look-up and our add.
    if (!(err instanceof JetStreamApiError && /already in use/i.test(err.message))) throw err;
  }
}

/** A durable, explicitly acknowledged pull consumer, shared by every replica that names it. */
export async function ensurePullConsumer(
  bus: Bus,
  stream: string,
  durable: string,
  filterSubject: string,
  ackWaitMs: number,
  /** Remove the consumer once nobody pulled from it for this long (a worker's own consumer). */
  inactiveThresholdMs?: number,
  /** Where a new consumer starts: the whole stream (work queues), or only what comes next (news). */
  startWith: 'all' | 'new' = 'all',
): Promise<void> {
  const config = {
    durable_name: durable,
    filter_subject: filterSubject,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: startWith === 'new' ? DeliverPolicy.New : DeliverPolicy.All,
    ack_wait: ackWaitMs * 1e6,
    max_deliver: -1,
    max_ack_pending: 10_000,
    ...(inactiveThresholdMs === undefined ? {} : { inactive_threshold: inactiveThresholdMs * 1e6 }),
  };
  try {
    const info = await bus.jsm.consumers.info(stream, durable);
    if (info.config.ack_wait !== config.ack_wait) await bus.jsm.consumers.update(stream, durable, { ack_wait: config.ack_wait });
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    await bus.jsm.consumers.add(stream, config);
  } catch (err) {
    if (!(err instanceof JetStreamApiError && /already (exists|in use)/i.test(err.message))) throw err;
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && /not found/i.test(err.message);
}

/** Deletes the streams of a prefix (tests, `blixard reset`). */
export async function deleteStreams(bus: Bus): Promise<void> {
  for (const name of Object.values(bus.subjects.streams)) {
    await bus.jsm.streams.delete(name).catch(() => undefined);
  }
}

export function headers(values: Record<string, string> = {}): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(values)) h.set(k, v);
  return h;
}
