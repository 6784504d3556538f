import 'reflect-metadata';
import { runService } from '@blixard/service';
import { startScheduler } from './app';

void runService('scheduler', startScheduler);
