// First: tracing must patch http, pg and Nest before they load.
import '@blixard/telemetry/register';
import 'reflect-metadata';
import { runService } from '@blixard/service';
import { startRegistry } from './app';

void runService('worker-registry', startRegistry);
