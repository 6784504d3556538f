import 'reflect-metadata';
import { runService } from '@blixard/service';
import { startRegistry } from './app';

void runService('worker-registry', startRegistry);
