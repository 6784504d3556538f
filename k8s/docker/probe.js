// Health probe run inside a Blixard container: `node k8s/docker/probe.js /healthz` (the image's
// HEALTHCHECK) or `/readyz` (docker compose's readiness). Exits 0 when the app answers 2xx.
// The port is the app's own port variable, named by BLIXARD_PORT_ENV (e.g. GATEWAY_PORT), so a
// port changed through the environment is probed where the app really listens.
'use strict';

const path = process.argv[2] || '/healthz';
const portVar = process.env.BLIXARD_PORT_ENV;
const port = portVar ? process.env[portVar] : undefined;
if (!port || !/^\d+$/.test(port)) {
  process.stderr.write(`probe: no port: BLIXARD_PORT_ENV=${portVar ?? '(unset)'} names no numeric variable\n`);
  process.exit(2);
}
fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(4000) }).then(
  (res) => process.exit(res.ok ? 0 : 1),
  (err) => {
    process.stderr.write(`probe: ${path}: ${err.message}\n`);
    process.exit(1);
  },
);
