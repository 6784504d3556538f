// First: tracing must patch http, pg and Nest before they load.
import '@blixard/executor-sdk/register';
import 'reflect-metadata';
import { runExecutor } from '@blixard/executor-sdk';
import { WasmBackend } from './wasm-backend';

function main(): void {
  let backend: WasmBackend;
  try {
    backend = WasmBackend.fromEnv(process.env);
  } catch (err) {
    process.stderr.write(`executor-wasm failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  void runExecutor(backend);
}

main();
