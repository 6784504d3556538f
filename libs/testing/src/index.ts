export * from './harness';
export * from './processes';
