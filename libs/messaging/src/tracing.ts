import {
  Attributes,
  context,
  Context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  TextMapGetter,
  TextMapSetter,
  trace,
} from '@opentelemetry/api';
import { headers as natsHeaders, MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { markSpanFailed, tracer, type Metrics } from '@blixard/telemetry';

/**
 * W3C trace context through NATS (there is no NATS instrumentation for OpenTelemetry): every
 * publish and request made inside a span injects `traceparent`/`tracestate` into the message
 * headers under a PRODUCER span, and every consumer that receives such a message continues the
 * trace under a CONSUMER span (messaging semantic-convention attributes). The context survives a
 * JetStream round trip: it is stored with the message.
 *
 * Nothing is traced outside a trace: a heartbeat or a wake-up sent from a timer starts no trace of
 * its own, and a message without context is handled without a span.
 */
const setter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

const getter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  get(carrier, key) {
    if (!carrier || !carrier.has(key)) return undefined;
    return carrier.get(key);
  },
};

const UUID = /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/i;
/** Subjects that may hold an id: most do not, and skip the token-by-token pass. */
const HIGH_CARDINALITY = /[\da-f]{8}-[\da-f]{4}-|\.control\.|\.worker\./i;

/**
 * The subject with its high-cardinality tokens replaced (`<prefix>.report.{jobId}`,
 * `<prefix>.control.{workerId}`, `<prefix>.dispatch.<backend>.worker.{workerId}`): span names must
 * stay few for trace backends to group them.
 */
export function subjectTemplate(subject: string): string {
  if (!HIGH_CARDINALITY.test(subject)) return subject;
  const tokens = subject.split('.');
  return tokens
    .map((t, i) => (UUID.test(t) ? '{jobId}' : i > 0 && (tokens[i - 1] === 'control' || tokens[i - 1] === 'worker') ? '{workerId}' : t))
    .join('.');
}

function messagingAttributes(subject: string, template: string, operation: 'publish' | 'request' | 'process', size: number | undefined, extra: Attributes = {}): Attributes {
  return {
    'messaging.system': 'nats',
    'messaging.operation.name': operation,
    'messaging.operation.type': operation === 'process' ? 'process' : 'send',
    'messaging.destination.name': subject,
    ...(template !== subject ? { 'messaging.destination.template': template } : {}),
    ...(size !== undefined ? { 'messaging.message.body.size': size } : {}),
    ...extra,
  };
}

function activeTraceContext(): Context | undefined {
  const ctx = context.active();
  const sc = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? ctx : undefined;
}

function sizeOf(payload: unknown): number | undefined {
  if (payload instanceof Uint8Array) return payload.byteLength;
  if (typeof payload === 'string') return Buffer.byteLength(payload);
  return undefined;
}

/**
 * Runs `send(headers)` under a PRODUCER span with the trace context injected into `headers`
 * (created when the caller passed none). Without an active trace, sends as is.
 */
async function produce<T>(
  operation: 'publish' | 'request',
  subject: string,
  payload: unknown,
  given: MsgHdrs | undefined,
  extra: Attributes,
  send: (headers: MsgHdrs | undefined) => Promise<T>,
  onError: (err: unknown) => void,
): Promise<T> {
  const parent = activeTraceContext();
  if (!parent) {
    try {
      return await send(given);
    } catch (err) {
      onError(err);
      throw err;
    }
  }
  const template = subjectTemplate(subject);
  const span = tracer.startSpan(`${operation} ${template}`, { kind: SpanKind.PRODUCER, attributes: messagingAttributes(subject, template, operation, sizeOf(payload), extra) }, parent);
  const h = given ?? natsHeaders();
  propagation.inject(trace.setSpan(parent, span), h, setter);
  try {
    return await send(h);
  } catch (err) {
    markSpanFailed(span, err);
    onError(err);
    throw err;
  } finally {
    span.end();
  }
}

/** The same for a synchronous send (core NATS publish). */
function produceSync(subject: string, payload: unknown, given: MsgHdrs | undefined, send: (headers: MsgHdrs | undefined) => void, onError: (err: unknown) => void): void {
  const parent = activeTraceContext();
  if (!parent) {
    try {
      send(given);
    } catch (err) {
      onError(err);
      throw err;
    }
    return;
  }
  const template = subjectTemplate(subject);
  const span = tracer.startSpan(`publish ${template}`, { kind: SpanKind.PRODUCER, attributes: messagingAttributes(subject, template, 'publish', sizeOf(payload)) }, parent);
  const h = given ?? natsHeaders();
  propagation.inject(trace.setSpan(parent, span), h, setter);
  try {
    send(h);
  } catch (err) {
    markSpanFailed(span, err);
    onError(err);
    throw err;
  } finally {
    span.end();
  }
}

/** The trace context a message carries, if any. */
export function extractTraceContext(headers: MsgHdrs | undefined): Context | undefined {
  if (!headers) return undefined;
  const ctx = propagation.extract(ROOT_CONTEXT, headers, getter);
  const sc = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? ctx : undefined;
}

/**
 * Runs a consumer's handler for one message under a CONSUMER span that continues the message's
 * trace; without trace context in the message, runs it as is. The span ends when the handler's
 * promise settles (or when it returns, for a synchronous one).
 */
export function consumeMessage<T>(
  msg: { subject: string; headers?: MsgHdrs; data?: Uint8Array },
  extra: Attributes,
  handle: () => T,
): T {
  const parent = extractTraceContext(msg.headers);
  if (!parent) return handle();
  const template = subjectTemplate(msg.subject);
  const span = tracer.startSpan(`process ${template}`, { kind: SpanKind.CONSUMER, attributes: messagingAttributes(msg.subject, template, 'process', msg.data?.byteLength, extra) }, parent);
  let result: T;
  try {
    result = context.with(trace.setSpan(parent, span), handle);
  } catch (err) {
    markSpanFailed(span, err);
    span.end();
    throw err;
  }
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    (result as unknown as Promise<unknown>).then(
      () => span.end(),
      (err) => {
        markSpanFailed(span, err);
        span.end();
      },
    );
  } else {
    span.end();
  }
  return result;
}

/** A JetStream message's handler under a CONSUMER span (PullLoop uses it for every message). */
export function consumeJsMessage<T>(msg: JsMsg, handle: () => Promise<T>): Promise<T> {
  let extra: Attributes = {};
  try {
    const info = msg.info;
    extra = {
      'messaging.consumer.group.name': info.consumer,
      'messaging.destination.subscription.name': info.consumer,
      'messaging.nats.stream': info.stream,
      'messaging.nats.delivery_count': info.deliveryCount,
      'messaging.message.id': msg.headers?.get('Nats-Msg-Id') || String(info.streamSequence),
    };
  } catch {
    // A message without JetStream delivery info (a test double): the attributes are optional.
  }
  return consumeMessage(msg, extra, handle);
}

type Publish = NatsConnection['publish'];
type Request = NatsConnection['request'];
type Subscribe = NatsConnection['subscribe'];
type JsPublish = JetStreamClient['publish'];

/**
 * Wraps a connection and its JetStream client so that every publish, request and subscription
 * callback is traced as above, and every failed NATS operation is counted
 * (`blixard_nats_errors_total`). Everything else passes through to the real objects, which keep
 * using the raw connection internally (a JetStream publish is not traced twice).
 */
export function instrumentNats(nc: NatsConnection, js: JetStreamClient, metrics?: Metrics): { nc: NatsConnection; js: JetStreamClient } {
  const count = (operation: string) => (err: unknown) => {
    // Nobody subscribed (no executor of a backend online, say) is an answer, not a NATS failure.
    if (/no ?responders/i.test(`${(err as Error)?.name} ${(err as Error)?.constructor?.name} ${(err as Error)?.message}`)) return;
    metrics?.natsErrors.inc({ operation });
  };
  const publish: Publish = (subject, payload, options) =>
    produceSync(subject, payload, options?.headers, (headers) => nc.publish(subject, payload, headers ? { ...options, headers } : options), count('publish'));
  const request: Request = (subject, payload, opts) =>
    produce('request', subject, payload, opts?.headers, {}, (headers) => nc.request(subject, payload, headers ? { ...opts, timeout: opts?.timeout ?? 1000, headers } : opts), count('request'));
  const subscribe: Subscribe = (subject, opts) => {
    const callback = opts?.callback;
    if (!callback) return nc.subscribe(subject, opts);
    const extra: Attributes = opts.queue ? { 'messaging.consumer.group.name': opts.queue } : {};
    return nc.subscribe(subject, {
      ...opts,
      callback: (err, msg) => (err || !msg ? callback(err, msg) : consumeMessage(msg, extra, () => callback(err, msg))),
    });
  };
  const jsPublish: JsPublish = (subject, payload, options) =>
    produce(
      'publish',
      subject,
      payload,
      options?.headers,
      options?.msgID ? { 'messaging.message.id': options.msgID } : {},
      (headers) => js.publish(subject, payload, headers ? { ...options, headers } : options),
      count('js_publish'),
    );
  const wrappedNc = new Proxy(nc, {
    get(target, prop) {
      if (prop === 'publish') return publish;
      if (prop === 'request') return request;
      if (prop === 'subscribe') return subscribe;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const wrappedJs = new Proxy(js, {
    get(target, prop) {
      if (prop === 'publish') return jsPublish;
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { nc: wrappedNc, js: wrappedJs };
}
