import { connectBus, type Bus } from '@blixard/messaging';
import { createLogger } from '@blixard/telemetry';
import { createTestInfra, TestInfra, waitFor } from '../src';
import { InProcessStack, MockBackend, startStack } from './stack';

/**
 * Whoever can publish on NATS can send anything: every service rejects a malformed or unknown
 * message on every subject family it listens to, counts it, and keeps working.
 */
describe('garbage on every NATS subject', () => {
  let infra: TestInfra;
  let stack: InProcessStack;
  let bus: Bus;

  beforeAll(async () => {
    infra = await createTestInfra('nats_garbage');
    stack = await startStack(infra.env(), { executors: [new MockBackend()] });
    bus = await connectBus({ servers: [infra.natsUrl], prefix: infra.prefix, name: 'garbage', logger: createLogger({ service: 'test', level: 'silent' }) });
  }, 60_000);

  afterAll(async () => {
    await bus?.close();
    await stack?.stop();
    await infra?.cleanup();
  });

  const metric = async (port: number, name: string) => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(name))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  };

  it('rejects and counts them, and still runs a job end to end', async () => {
    const s = bus.subjects;
    const executor = stack.executors[0]!;
    const workerId = executor.runtime.workerId;
    const scheduler = stack.schedulers[0]!;
    const registry = stack.registry!;
    const before = {
      scheduler: await metric(scheduler.port, 'blixard_messages_rejected_total'),
      registry: await metric(registry.port, 'blixard_messages_rejected_total'),
      executor: await metric(executor.port, 'blixard_executor_rejected_messages_total'),
    };
    const bodies = ['', 'not json', '{"type":"started"}', '[1,2,3]', 'null', '{"jobId":"00000000-0000-7000-8000-000000000000","attempt":-1}', '\u0000\u0001', '{'.repeat(10_000)];
    const enc = (b: string) => new TextEncoder().encode(b);
    for (const b of bodies) {
      await bus.js.publish(s.report('00000000-0000-7000-8000-000000000000'), enc(b));
      await bus.js.publish(s.dispatch('mock'), enc(b));
      await bus.js.publish(s.event('job', 'completed'), enc(b));
      await bus.js.publish(s.logs('00000000-0000-7000-8000-000000000000'), enc(b));
      bus.nc.publish(s.heartbeat, enc(b));
      bus.nc.publish(s.progress('00000000-0000-7000-8000-000000000000'), enc(b));
      bus.nc.publish(s.control(workerId), enc(b));
      bus.nc.publish(s.wakeDispatch, enc(b));
      await bus.nc.request(s.rpc('scheduler', 'worker-lost'), enc(b), { timeout: 5_000 }).catch(() => undefined);
      // The executor answers a garbage payload check with an answer, not a crash.
      const reply = await bus.nc.request(s.validate('mock'), enc(b), { timeout: 5_000 });
      expect(JSON.parse(new TextDecoder().decode(reply.data))).toHaveProperty('ok');
    }
    await waitFor('the rejections counted', async () =>
      (await metric(scheduler.port, 'blixard_messages_rejected_total')) >= before.scheduler + bodies.length &&
      (await metric(registry.port, 'blixard_messages_rejected_total')) >= before.registry + bodies.length &&
      (await metric(executor.port, 'blixard_executor_rejected_messages_total')) >= before.executor + bodies.length,
    );

    // Everyone is still up and the system still works.
    for (const port of [scheduler.port, registry.port, executor.port, stack.gateway.port]) expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const job = await stack.client.submit({ backend: 'mock', payload: { sleepMs: 1, output: { ok: true } } });
    expect((await stack.client.waitForTerminal(job.id)).status).toBe('COMPLETED');
    // The events page skips what is not a CloudEvent.
    const page = (await (await fetch(`${stack.gateway.url}/v1/events?limit=1000`)).json()) as { items: unknown[] };
    expect(Array.isArray(page.items)).toBe(true);
  }, 90_000);
});
