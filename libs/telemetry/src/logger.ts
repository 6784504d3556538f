import pino, { DestinationStream, Logger, LoggerOptions as PinoOptions } from 'pino';
import { logCorrelation } from './tracing';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: string;
  level?: string;
  format?: 'json' | 'pretty';
  /** Where JSON lines go (default stdout); for tests. */
  destination?: DestinationStream;
}

/**
 * Fields that may hold a job's payload, its output or credentials: never written, even when a
 * call site passes a whole object by mistake.
 */
const REDACT = ['payload', '*.payload', 'output', '*.output', 'env', '*.env', 'stdin', '*.stdin', 'headers.authorization', '*.headers.authorization', 'password', '*.password'];

/**
 * pino JSON lines (one per meaningful event) in production; pretty in a terminal. Payloads and
 * secrets are never logged by default: log ids and outcomes, not bodies. Every line written
 * inside a span carries its `trace_id` and `span_id` (and `job_id` inside a job's span), so a
 * log line leads to its trace in Jaeger and back; a call site's `jobId` is written as `job_id`.
 */
export function createLogger({ service, level = 'info', format = 'json', destination }: LoggerOptions): Logger {
  const base = { service, pid: process.pid };
  const common: PinoOptions = {
    level,
    base,
    mixin: logCorrelation,
    redact: { paths: REDACT, censor: '[redacted]' },
    formatters: {
      log(object) {
        if ('jobId' in object) {
          const { jobId, ...rest } = object;
          return { ...rest, job_id: jobId };
        }
        return object;
      },
    },
  };
  if (format === 'pretty') {
    return pino({
      ...common,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  const options = { ...common, timestamp: pino.stdTimeFunctions.isoTime };
  // Asynchronous writes to stdout (lines written meanwhile go out together): a synchronous write
  // per line cost a busy scheduler a fifth of its CPU. pino flushes what is left when it exits.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
