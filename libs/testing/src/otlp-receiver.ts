import { createServer, IncomingMessage, Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** One span as an OTLP/HTTP JSON export carried it, flattened. */
export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  startNs: bigint;
  endNs: bigint;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string; attributes: Record<string, unknown> }[];
  status: { code?: number; message?: string };
  scope: string;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3, producer: 4, consumer: 5 } as const;

/**
 * A tiny OTLP/HTTP receiver for tests and benchmarks: services started with
 * `OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url` post their spans (JSON) to `POST /v1/traces`; the
 * receiver keeps them in memory.
 */
export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  /** Export requests received (one per batch). */
  requests = 0;
  /** Spans received (also those not kept). */
  received = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly keep: boolean,
  ) {}

  /** `keep: false` only counts the spans (a benchmark's sink). */
  static async start({ keep = true } = {}): Promise<OtlpReceiver> {
    let receiver: OtlpReceiver | undefined;
    const server = createServer((req, res) => {
      void readBody(req).then(
        (body) => {
          if (req.method !== 'POST' || !req.url?.startsWith('/v1/traces')) {
            res.writeHead(404).end();
            return;
          }
          try {
            receiver!.requests++;
            const text = body.toString('utf8');
            if (receiver!.keep) {
              const spans = flatten(JSON.parse(text) as ExportRequest);
              receiver!.received += spans.length;
              receiver!.spans.push(...spans);
            } else {
              // A counting sink stays cheap: one `startTimeUnixNano` per span.
              receiver!.received += text.split('"startTimeUnixNano"').length - 1;
            }
            res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
          } catch (err) {
            res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: String(err) }));
          }
        },
        () => res.writeHead(400).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    receiver = new OtlpReceiver(server, `http://127.0.0.1:${port}`, keep);
    return receiver;
  }

  /** Every span of the traces that contain a span with attribute `key` = `value`. */
  tracesWith(key: string, value: unknown): ReceivedSpan[] {
    const traceIds = new Set(this.spans.filter((s) => s.attributes[key] === value).map((s) => s.traceId));
    return this.spans.filter((s) => traceIds.has(s.traceId));
  }

  clear(): void {
    this.spans.length = 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The span tree of one trace as indented text: `service: name [attributes]`, children by start time. */
export function formatSpanTree(spans: ReceivedSpan[], attributeKeys: string[] = ['job.id', 'job.attempt', 'job.outcome', 'worker.id', 'report.type']): string {
  const byParent = new Map<string | undefined, ReceivedSpan[]>();
  const ids = new Set(spans.map((s) => s.spanId));
  for (const s of spans) {
    const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : undefined;
    (byParent.get(parent) ?? byParent.set(parent, []).get(parent)!).push(s);
  }
  const t0 = spans.reduce((min, s) => (s.startNs < min ? s.startNs : min), spans[0]?.startNs ?? 0n);
  const kinds = ['', '', 'server', 'client', 'producer', 'consumer'];
  const lines: string[] = [];
  const walk = (parent: string | undefined, depth: number) => {
    for (const s of (byParent.get(parent) ?? []).sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0))) {
      const attrs = attributeKeys.filter((k) => s.attributes[k] !== undefined).map((k) => `${k}=${String(s.attributes[k])}`);
      const ms = (ns: bigint) => (Number(ns) / 1e6).toFixed(1);
      lines.push(
        `${'  '.repeat(depth)}${s.service}: ${s.name}${kinds[s.kind] ? ` (${kinds[s.kind]})` : ''}  +${ms(s.startNs - t0)} ms, ${ms(s.endNs - s.startNs)} ms${attrs.length ? `  [${attrs.join(' ')}]` : ''}${s.links.length ? `  links: ${s.links.length}` : ''}`,
      );
      walk(s.spanId, depth + 1);
    }
  };
  walk(undefined, 0);
  return lines.join('\n');
}

interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: AnyValue[] };
}
interface KeyValue {
  key: string;
  value: AnyValue;
}
interface ExportRequest {
  resourceSpans?: {
    resource?: { attributes?: KeyValue[] };
    scopeSpans?: {
      scope?: { name?: string };
      spans?: {
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        startTimeUnixNano: string | number;
        endTimeUnixNano: string | number;
        attributes?: KeyValue[];
        links?: { traceId: string; spanId: string; attributes?: KeyValue[] }[];
        status?: { code?: number; message?: string };
      }[];
    }[];
  }[];
}

function value(v: AnyValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(value);
  return undefined;
}

function attributes(kvs: KeyValue[] | undefined): Record<string, unknown> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, value(kv.value)]));
}

/** OTLP JSON encodes ids as hex (the JS exporter) — or base64 (the spec's protobuf-JSON mapping). */
function hexId(id: string | undefined): string | undefined {
  if (!id) return undefined;
  return /^[\da-f]+$/i.test(id) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function flatten(req: ExportRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const service = String(attributes(rs.resource?.attributes)['service.name'] ?? 'unknown');
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          service,
          traceId: hexId(s.traceId)!,
          spanId: hexId(s.spanId)!,
          parentSpanId: hexId(s.parentSpanId),
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano),
          endNs: BigInt(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          links: (s.links ?? []).map((l) => ({ traceId: hexId(l.traceId)!, spanId: hexId(l.spanId)!, attributes: attributes(l.attributes) })),
          status: s.status ?? {},
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      try {
        resolve(req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body);
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });
}
