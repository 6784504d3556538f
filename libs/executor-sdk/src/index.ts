export * from './backend';
export * from './runtime';
export * from './run-executor';
export { AttemptLog, AttemptProgress, lineSplitter } from './attempt-output';
