import 'reflect-metadata';
import { runExecutor } from '@blixard/executor-sdk';
import { MockBackend } from './mock-backend';

void runExecutor(new MockBackend());
