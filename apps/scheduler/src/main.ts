// First: tracing must patch http, pg and Nest before they load.
import '@blixard/telemetry/register';
import 'reflect-metadata';
import { runService } from '@blixard/service';
import { startScheduler } from './app';

void runService('scheduler', startScheduler);
