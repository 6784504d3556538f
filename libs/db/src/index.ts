export * from './prisma';
export * from './migrate';
export * from './views';
export * from './job-store';
export * from './job-queries';
export * from './outbox';
export * from './worker-store';
