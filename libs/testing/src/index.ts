export * from './harness';
export * from './processes';
export * from './nats-server';
export * from './otlp-receiver';
export * from './commands';
