// First: tracing must patch http, pg and Nest before they load.
import '@blixard/executor-sdk/register';
import 'reflect-metadata';
import { runExecutor } from '@blixard/executor-sdk';
import { MockBackend } from './mock-backend';

void runExecutor(new MockBackend());
