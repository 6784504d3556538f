// First: tracing must patch http, pg and Nest before they load.
import '@blixard/executor-sdk/register';
import 'reflect-metadata';
import { runExecutor } from '@blixard/executor-sdk';
import { loadConfig } from '@blixard/config';
import { ProcessBackend } from './process-backend';

void runExecutor(new ProcessBackend({ allowInheritEnv: loadConfig(['processAllowInheritEnv']).processAllowInheritEnv }));
