export * from './backend';
export * from './runtime';
export * from './run-executor';
