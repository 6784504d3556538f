import 'reflect-metadata';
import { runService } from '@blixard/service';
import { startGateway } from './app';

void runService('gateway', startGateway);
