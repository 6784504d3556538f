export * from './harness';
export * from './processes';
export * from './nats-server';
