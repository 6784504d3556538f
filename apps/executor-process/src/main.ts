import 'reflect-metadata';
import { runExecutor } from '@blixard/executor-sdk';
import { ProcessBackend } from './process-backend';

void runExecutor(new ProcessBackend());
