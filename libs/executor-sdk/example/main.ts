import 'reflect-metadata';
import { runExecutor } from '@blixard/executor-sdk';
import { HttpBackend } from './http-backend';

// Configuration comes from the environment (NATS_URL, BLIXARD_PREFIX, EXECUTOR_CONCURRENCY, ...).
void runExecutor(new HttpBackend());
