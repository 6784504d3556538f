import { randomBytes } from 'node:crypto';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { createLogger, Metrics, withSpan } from '@blixard/telemetry';
import { Bus, connectBus, deleteStreams, encodeJson, ensurePullConsumer, ensureStreams, JsMsg, PullLoop } from '../src';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

/**
 * The trace context survives a real JetStream round trip: published inside a span, stored by the
 * server, delivered by a durable pull consumer, continued by PullLoop under a CONSUMER span.
 */
describe('trace context over a real NATS JetStream round trip', () => {
  const logger = createLogger({ service: 'test', level: 'silent' });
  let bus: Bus;

  beforeAll(async () => {
    bus = await connectBus({ servers: [process.env.NATS_URL ?? 'nats://127.0.0.1:4222'], prefix: `t_trace_${randomBytes(4).toString('hex')}`, name: 'tracing-test', logger, metrics: new Metrics('test', false) });
    await ensureStreams(bus);
  });

  afterAll(async () => {
    await deleteStreams(bus);
    await bus.close();
    await provider.shutdown();
  });

  it('continues the publisher’s trace in the consumer’s handler', async () => {
    const s = bus.subjects;
    await ensurePullConsumer(bus, s.streams.dispatch, s.consumers.executor('mock'), s.dispatch('mock'), 5_000);
    const published = await withSpan('dispatch mock', {}, async (span) => {
      await bus.js.publish(s.dispatch('mock'), encodeJson({ hello: 1 }), { msgID: 'job-1:1' });
      return span.spanContext();
    });

    const handled: { traceId?: string; msg: JsMsg }[] = [];
    const loop = new PullLoop({
      consumer: await bus.js.consumers.get(s.streams.dispatch, s.consumers.executor('mock')),
      concurrency: 1,
      logger,
      expiresMs: 1000,
      handle: async (msg) => {
        handled.push({ traceId: trace.getActiveSpan()?.spanContext().traceId, msg });
        msg.ack();
      },
    });
    loop.start();
    const deadline = Date.now() + 10_000;
    while (handled.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await loop.stop();

    expect(handled).toHaveLength(1);
    expect(handled[0].traceId).toBe(published.traceId);
    expect(handled[0].msg.headers?.get('traceparent')).toMatch(new RegExp(`^00-${published.traceId}-`));
    const producer = exporter.getFinishedSpans().find((sp) => sp.kind === SpanKind.PRODUCER)!;
    const consumer = exporter.getFinishedSpans().find((sp) => sp.kind === SpanKind.CONSUMER)!;
    expect(producer.parentSpanContext?.spanId).toBe(published.spanId);
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.destination.name': s.dispatch('mock'),
      'messaging.consumer.group.name': s.consumers.executor('mock'),
      'messaging.message.id': 'job-1:1',
      'messaging.nats.delivery_count': 1,
    });
  });
});
