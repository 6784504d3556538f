import { heartbeatMessageSchema } from '@blixard/contracts';
import { Db, WorkerStore } from '@blixard/db';
import { Bus, decodeJson, encodeJson, Msg, Subscription } from '@blixard/messaging';
import { Trigger } from '@blixard/service';
import type { Logger, Metrics } from '@blixard/telemetry';

export interface RegistryOptions {
  db: Db;
  bus: Bus;
  logger: Logger;
  metrics: Metrics;
  heartbeatIntervalMs: number;
  workerLostAfterMissed: number;
  runLeaseMs: number;
}

/**
 * The fleet's registry: executors register with their first heartbeat and stay registered by
 * heartbeating; every heartbeat renews the run leases of the attempts the worker holds. A worker
 * silent for WORKER_LOST_AFTER_MISSED heartbeats is declared lost, and the scheduler is told at
 * once so its attempts are retried without waiting for their leases to expire.
 */
export class Registry {
  readonly store: WorkerStore;
  private sub: Subscription | undefined;
  private readonly sweeper: Trigger;
  private readonly counters;

  constructor(private readonly o: RegistryOptions) {
    this.store = new WorkerStore(o.db, { subjects: o.bus.subjects, source: '/blixard/worker-registry', runLeaseMs: o.runLeaseMs });
    this.counters = {
      heartbeats: o.metrics.counter('blixard_heartbeats_total', 'Heartbeats received'),
      rejected: o.metrics.counter('blixard_messages_rejected_total', 'Messages that did not parse, rejected', ['kind'] as const),
      lost: o.metrics.counter('blixard_workers_lost_total', 'Workers declared lost'),
      errors: o.metrics.counter('blixard_registry_errors_total', 'Database or NATS errors'),
    };
    // The fleet as Postgres knows it, read at each scrape: running attempts and free slots per worker.
    const running = o.metrics.gauge('blixard_worker_running_attempts', 'Attempts in flight on each online or draining worker', ['worker', 'backend', 'status'] as const);
    o.metrics.gauge('blixard_worker_free_slots', 'Free slots of each online worker', ['worker', 'backend'] as const, async (free) => {
      try {
        const workers = await this.store.list({ status: ['ONLINE', 'DRAINING'] });
        free.reset();
        running.reset();
        for (const w of workers) {
          running.set({ worker: w.id, backend: w.backend, status: w.status }, w.runningJobs.length);
          if (w.status === 'ONLINE') free.set({ worker: w.id, backend: w.backend }, Math.max(0, w.concurrency - (w.used.slots ?? w.runningJobs.length)));
        }
      } catch (err) {
        o.metrics.countError(err, 'worker_gauges');
      }
    });
    this.sweeper = new Trigger(() => this.sweep(), o.heartbeatIntervalMs, (err) => {
      this.counters.errors.inc();
      o.metrics.countError(err, 'sweep');
      o.logger.warn({ err: String(err) }, 'lost-worker sweep failed; will retry');
    });
  }

  start(): void {
    const s = this.o.bus.subjects;
    // A queue group: with several registries, each heartbeat is handled once.
    this.sub = this.o.bus.nc.subscribe(s.heartbeat, { queue: 'registry', callback: (_err, msg) => void this.onHeartbeat(msg) });
    this.sweeper.start();
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    await this.sweeper.stop();
  }

  private async onHeartbeat(msg: Msg): Promise<void> {
    const decoded = decodeJson(msg.data, heartbeatMessageSchema);
    if (!decoded.ok) {
      this.counters.rejected.inc({ kind: 'heartbeat' });
      this.o.logger.warn({ error: decoded.error }, 'rejected a malformed heartbeat');
      if (msg.reply) msg.respond(encodeJson({ error: decoded.error }));
      return;
    }
    const hb = decoded.value;
    this.counters.heartbeats.inc();
    try {
      const outcome = await this.store.heartbeat(hb);
      if (outcome.registered) {
        this.o.logger.info({ workerId: hb.workerId, backend: hb.backend, labels: hb.labels }, 'worker registered');
        // New capacity: jobs waiting for a worker like this one are placed at once, not next poll.
        this.o.bus.nc.publish(this.o.bus.subjects.wakeDispatch);
      }
      if (outcome.orphans.length > 0) this.o.logger.info({ workerId: hb.workerId, orphans: outcome.orphans }, 'worker runs attempts it no longer holds');
      if (msg.reply) msg.respond(encodeJson({ ok: true, orphans: outcome.orphans }));
    } catch (err) {
      this.counters.errors.inc();
      this.o.metrics.countError(err, 'heartbeat');
      this.o.logger.warn({ workerId: hb.workerId, err: String(err) }, 'heartbeat not recorded');
    }
  }

  private async sweep(): Promise<void> {
    const silentMs = this.o.heartbeatIntervalMs * this.o.workerLostAfterMissed;
    const lost = await this.store.markLost(silentMs);
    const s = this.o.bus.subjects;
    for (const w of lost) {
      this.counters.lost.inc();
      this.o.logger.warn({ workerId: w.id, backend: w.backend, lastHeartbeatAt: w.lastHeartbeatAt }, 'worker lost');
      // If this request is lost too, the attempts' leases expire and the reconciler retries them.
      await this.o.bus.nc
        .request(s.rpc('scheduler', 'worker-lost'), encodeJson({ workerId: w.id }), { timeout: 5_000 })
        .catch((err) => this.o.logger.warn({ workerId: w.id, err: String(err) }, 'scheduler not told of a lost worker'));
    }
    if (lost.length > 0) this.o.bus.nc.publish(s.wakeDispatch);
  }
}
