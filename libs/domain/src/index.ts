export * from './lifecycle';
export * from './retry';
export * from './errors';
export * from './validation';
export * from './submission';
export * from './ids';
export * from './output';
