import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { headers, Msg, MsgHdrs, NatsConnection, SubscriptionOptions } from '@nats-io/transport-node';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { Metrics, withSpan } from '@blixard/telemetry';
import { consumeJsMessage, consumeMessage, instrumentNats, subjectTemplate } from './tracing';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
afterEach(() => exporter.reset());
afterAll(() => provider.shutdown());

const JOB = '01a21ac2-503d-7000-b794-ed5e7ea29b80';

/** A connection and JetStream client that record what would go over the wire. */
function fakeNats(fail = false) {
  const sent: { subject: string; headers?: MsgHdrs; options?: Record<string, unknown> }[] = [];
  const subs: { subject: string; opts?: SubscriptionOptions }[] = [];
  const nc = {
    publish(subject: string, _data?: Uint8Array, options?: { headers?: MsgHdrs }) {
      if (fail) throw new Error('closed connection');
      sent.push({ subject, headers: options?.headers, options });
    },
    async request(subject: string, _data?: Uint8Array, options?: { headers?: MsgHdrs; timeout: number }) {
      sent.push({ subject, headers: options?.headers, options });
      return { data: new Uint8Array() } as Msg;
    },
    subscribe(subject: string, opts?: SubscriptionOptions) {
      subs.push({ subject, opts });
      return { unsubscribe() {} };
    },
    isClosed: () => false,
  } as unknown as NatsConnection;
  const js = {
    async publish(subject: string, _data?: Uint8Array, options?: { headers?: MsgHdrs; msgID?: string }) {
      if (fail) throw Object.assign(new Error('no response from stream'), { name: 'JetStreamError' });
      sent.push({ subject, headers: options?.headers, options });
      return { stream: 'S', seq: 1, duplicate: false };
    },
  } as unknown as JetStreamClient;
  return { nc, js, sent, subs };
}

const spans = (kind: SpanKind): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.kind === kind);

describe('trace context through NATS message headers', () => {
  it('injects the W3C context into a JetStream publish under a PRODUCER span, and a consumer continues it', async () => {
    const { nc, js, sent } = fakeNats();
    const traced = instrumentNats(nc, js);
    const parent = await withSpan('dispatch mock', {}, async (span) => {
      await traced.js.publish(`blixard.report.${JOB}`, new Uint8Array(3), { msgID: `${JOB}:1:started` });
      return span.spanContext();
    });

    const [producer] = spans(SpanKind.PRODUCER);
    expect(producer.name).toBe('publish blixard.report.{jobId}');
    expect(producer.parentSpanContext?.spanId).toBe(parent.spanId);
    expect(producer.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.operation.type': 'send',
      'messaging.destination.name': `blixard.report.${JOB}`,
      'messaging.destination.template': 'blixard.report.{jobId}',
      'messaging.message.id': `${JOB}:1:started`,
      'messaging.message.body.size': 3,
    });
    const h = sent[0].headers!;
    expect(h.get('traceparent')).toBe(`00-${parent.traceId}-${producer.spanContext().spanId}-01`);

    // The other side: a message with those headers, handled under a CONSUMER span.
    let active: string | undefined;
    await consumeMessage({ subject: sent[0].subject, headers: h, data: new Uint8Array(3) }, { 'messaging.consumer.group.name': 'scheduler' }, async () => {
      active = trace.getActiveSpan()?.spanContext().spanId;
    });
    const [consumer] = spans(SpanKind.CONSUMER);
    expect(consumer.name).toBe('process blixard.report.{jobId}');
    expect(consumer.spanContext().traceId).toBe(parent.traceId);
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(consumer.attributes).toMatchObject({ 'messaging.operation.type': 'process', 'messaging.consumer.group.name': 'scheduler' });
    expect(active).toBe(consumer.spanContext().spanId);
  });

  it('keeps the headers a caller set and adds the trace context to them', async () => {
    const { nc, js, sent } = fakeNats();
    const traced = instrumentNats(nc, js);
    const h = headers();
    h.set('x-mine', 'yes');
    await withSpan('outer', {}, async () => traced.js.publish('blixard.dispatch.mock', new Uint8Array(), { headers: h, msgID: 'm' }));
    expect(sent[0].headers!.get('x-mine')).toBe('yes');
    expect(sent[0].headers!.get('traceparent')).toMatch(/^00-[\da-f]{32}-[\da-f]{16}-01$/);
    expect(sent[0].options!.msgID).toBe('m');
  });

  it('traces core publish and request too', async () => {
    const { nc, js, sent } = fakeNats();
    const traced = instrumentNats(nc, js);
    await withSpan('outer', {}, async () => {
      traced.nc.publish('blixard.control.worker-7', new Uint8Array());
      await traced.nc.request('blixard.validate.mock', new Uint8Array(), { timeout: 100 });
    });
    expect(spans(SpanKind.PRODUCER).map((s) => s.name)).toEqual(['publish blixard.control.{workerId}', 'request blixard.validate.mock']);
    expect(sent.every((m) => m.headers?.get('traceparent'))).toBe(true);
    expect(sent[1].options!.timeout).toBe(100);
  });

  it('continues the trace in a subscription callback under a CONSUMER span', async () => {
    const { nc, js, sent, subs } = fakeNats();
    const traced = instrumentNats(nc, js);
    let seen: string | undefined;
    traced.nc.subscribe('blixard.wake.dispatch', { queue: 'scheduler', callback: () => (seen = trace.getActiveSpan()?.spanContext().traceId) });
    const traceId = await withSpan('POST /v1/jobs', {}, async (span) => {
      traced.nc.publish('blixard.wake.dispatch');
      return span.spanContext().traceId;
    });
    subs[0].opts!.callback!(null, { subject: 'blixard.wake.dispatch', headers: sent[0].headers, data: new Uint8Array() } as unknown as Msg);
    expect(seen).toBe(traceId);
    const [consumer] = spans(SpanKind.CONSUMER);
    expect(consumer.attributes['messaging.consumer.group.name']).toBe('scheduler');
  });

  it('sends as is and starts no trace outside one (heartbeats, timers)', async () => {
    const { nc, js, sent, subs } = fakeNats();
    const traced = instrumentNats(nc, js);
    traced.nc.publish('blixard.registry.heartbeat', new Uint8Array());
    await traced.js.publish('blixard.dispatch.mock', new Uint8Array(), { msgID: 'x' });
    expect(sent.map((m) => m.headers)).toEqual([undefined, undefined]);
    let ran = false;
    traced.nc.subscribe('blixard.registry.heartbeat', { callback: () => (ran = trace.getActiveSpan() === undefined) });
    subs[0].opts!.callback!(null, { subject: 'blixard.registry.heartbeat', data: new Uint8Array() } as unknown as Msg);
    expect(ran).toBe(true);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it('marks a failed publish on its span and counts it as a NATS error', async () => {
    const { nc, js } = fakeNats(true);
    const metrics = new Metrics('t', false);
    const traced = instrumentNats(nc, js, metrics);
    await withSpan('outer', {}, async () => {
      await expect(traced.js.publish('blixard.dispatch.mock', new Uint8Array(), { msgID: 'x' })).rejects.toThrow('no response');
      expect(() => traced.nc.publish('blixard.wake.dispatch')).toThrow('closed');
    });
    expect(spans(SpanKind.PRODUCER).map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.ERROR]);
    expect(await metrics.value('blixard_nats_errors_total', { operation: 'js_publish' })).toBe(1);
    expect(await metrics.value('blixard_nats_errors_total', { operation: 'publish' })).toBe(1);
  });

  it('continues a JetStream message’s trace with its delivery attributes, ending the span when the handler settles', async () => {
    const { nc, js, sent } = fakeNats();
    const traced = instrumentNats(nc, js);
    await withSpan('dispatch', {}, async () => traced.js.publish('blixard.dispatch.mock', new Uint8Array(), { msgID: `${JOB}:1` }));
    const msg = {
      subject: 'blixard.dispatch.mock',
      headers: sent[0].headers,
      data: new Uint8Array(),
      info: { consumer: 'executor-mock', stream: 'BLIXARD_DISPATCH', deliveryCount: 2, streamSequence: 9 },
    } as unknown as JsMsg;
    sent[0].headers!.set('Nats-Msg-Id', `${JOB}:1`);
    let release!: () => void;
    const handled = consumeJsMessage(msg, () => new Promise<void>((r) => (release = r)));
    expect(spans(SpanKind.CONSUMER)).toEqual([]); // still running
    release();
    await handled;
    const [consumer] = spans(SpanKind.CONSUMER);
    expect(consumer.attributes).toMatchObject({
      'messaging.consumer.group.name': 'executor-mock',
      'messaging.nats.stream': 'BLIXARD_DISPATCH',
      'messaging.nats.delivery_count': 2,
      'messaging.message.id': `${JOB}:1`,
    });
  });
});

describe('subject templates', () => {
  it('replace job and worker ids so span names stay few', () => {
    expect(subjectTemplate(`t_x.report.${JOB}`)).toBe('t_x.report.{jobId}');
    expect(subjectTemplate('blixard.control.mock-host-1-abc')).toBe('blixard.control.{workerId}');
    expect(subjectTemplate('blixard.dispatch.docker.worker.docker-1')).toBe('blixard.dispatch.docker.worker.{workerId}');
    expect(subjectTemplate('blixard.dispatch.mock')).toBe('blixard.dispatch.mock');
  });
});
