// Preloaded (`node -r`) into an app's real entrypoint by the deploy test to learn which environment
// variables it reads: every name looked up in process.env is appended to RECORD_ENV_TO, one per
// line. Blixard reads and validates its whole configuration before it opens its first connection
// (Postgres, NATS, the engine socket), so the process is stopped there: the line `<connect>` then
// says the app got that far, i.e. its configuration was complete and valid.
'use strict';

const fs = require('node:fs');
const net = require('node:net');

const out = process.env.RECORD_ENV_TO;
if (!out) throw new Error('record-env: RECORD_ENV_TO is not set');
fs.writeFileSync(out, '');

const seen = new Set();
function record(name) {
  if (typeof name !== 'string' || seen.has(name)) return;
  seen.add(name);
  fs.appendFileSync(out, `${name}\n`);
}

// Code that walks the whole environment (Object.entries(process.env), to copy or filter it) reads
// every variable that happens to be set, in the order the walk listed them: those reads are not
// recorded. The first read out of that order ends the walk.
let walk = [];
const real = process.env;
function onRead(name) {
  if (walk.length > 0 && walk[0] === name) {
    walk.shift();
    return;
  }
  walk = [];
  record(name);
}
process.env = new Proxy(real, {
  get(target, name) {
    onRead(name);
    return target[name];
  },
  has(target, name) {
    onRead(name);
    return name in target;
  },
  ownKeys(target) {
    const keys = Reflect.ownKeys(target);
    walk = keys.filter((k) => typeof k === 'string');
    return keys;
  },
});

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function recordConnect(...args) {
  fs.appendFileSync(out, '<connect>\n');
  process.exit(0);
  return connect.apply(this, args);
};
