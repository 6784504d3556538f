// Integration and e2e tests need the real Postgres and NATS (with JetStream). Fail loudly and
// early when they are not there, rather than skipping or timing out test by test.
const net = require('node:net');

function reachable(host, port, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

module.exports = async () => {
  const pg = new URL(process.env.TEST_DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres');
  const nats = new URL((process.env.NATS_URL || 'nats://127.0.0.1:4222').split(',')[0]);
  const missing = [];
  if (!(await reachable(pg.hostname, Number(pg.port || 5432)))) missing.push(`Postgres at ${pg.host}`);
  if (!(await reachable(nats.hostname, Number(nats.port || 4222)))) missing.push(`NATS at ${nats.host}`);
  if (missing.length > 0) {
    throw new Error(`integration tests need ${missing.join(' and ')}: start them (see README "Running the tests")`);
  }
};
