import pino, { Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  service: string;
  level?: string;
  format?: 'json' | 'pretty';
}

/**
 * pino JSON lines (one per meaningful event) in production; pretty in a terminal. Payloads and
 * secrets are never logged by default: log ids and outcomes, not bodies.
 */
export function createLogger({ service, level = 'info', format = 'json' }: LoggerOptions): Logger {
  const base = { service, pid: process.pid };
  if (format === 'pretty') {
    return pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base, timestamp: pino.stdTimeFunctions.isoTime });
}
