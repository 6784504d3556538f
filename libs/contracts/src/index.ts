export * from './subjects';
export * from './messages';
export * from './events';
export * from './http';
export * from './live';
export * from './webhook-signature';
