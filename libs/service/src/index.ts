export * from './health';
export * from './bootstrap';
export * from './trigger';
export * from './context';
export * from './ssrf';
