// NOT Jaeger. A stand-in for jaegertracing/all-in-one in CI's compose run (.ci/compose.ci.yml),
// where no registry is reachable and Jaeger has no Debian package: it accepts what the Blixard
// services send to the `jaeger` service (OTLP over HTTP on 4318: POST /v1/traces, /v1/metrics,
// /v1/logs; JSON bodies are read, protobuf ones only accepted) and answers Jaeger's UI port 16686
// with the one query-API call CI uses: GET /api/services, the services whose spans arrived (as
// Jaeger lists them). No storage, no UI, no OTLP/gRPC (4317): the services export OTLP/HTTP.
'use strict';

const http = require('node:http');
const zlib = require('node:zlib');

const services = new Map(); // service.name -> spans received
let exportRequests = 0;

function serviceNames(body) {
  const names = [];
  for (const rs of body.resourceSpans ?? []) {
    const attr = (rs.resource?.attributes ?? []).find((a) => a.key === 'service.name');
    const name = attr?.value?.stringValue;
    if (!name) continue;
    let spans = 0;
    for (const ss of rs.scopeSpans ?? []) spans += (ss.spans ?? []).length;
    names.push([name, spans]);
  }
  return names;
}

const otlp = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || !/^\/v1\/(traces|metrics|logs)$/.test((req.url ?? '').split('?')[0])) {
      res.writeHead(404).end();
      return;
    }
    exportRequests++;
    const json = (req.headers['content-type'] ?? '').includes('json');
    if (json && req.url.startsWith('/v1/traces')) {
      try {
        let raw = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') raw = zlib.gunzipSync(raw);
        for (const [name, spans] of serviceNames(JSON.parse(raw.toString('utf8')))) {
          services.set(name, (services.get(name) ?? 0) + spans);
        }
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ message: String(err) }));
        return;
      }
    }
    // An empty Export*ServiceResponse: everything accepted.
    if (json) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    else res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});

const ui = http.createServer((req, res) => {
  const url = (req.url ?? '/').split('?')[0];
  if (url === '/api/services') {
    const data = [...services.keys()].sort();
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data, total: data.length, spans: Object.fromEntries(services), exportRequests }));
    return;
  }
  if (url === '/') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('Jaeger stand-in (CI): no UI. GET /api/services lists the services whose spans arrived.\n');
    return;
  }
  res.writeHead(404).end();
});

otlp.listen(4318, '0.0.0.0');
ui.listen(16686, '0.0.0.0');
const stop = () => {
  otlp.close();
  ui.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
