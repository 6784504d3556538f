import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { ProblemDetails } from '@blixard/contracts';
import { BlixardError, TooManyRequestsError } from '@blixard/domain';
import type { Logger } from '@blixard/telemetry';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function problem(status: number, code: string, detail: string, instance?: string, errors?: ProblemDetails['errors']): ProblemDetails {
  return {
    type: `https://blixard.dev/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    ...(instance ? { instance } : {}),
    ...(errors && errors.length > 0 ? { errors } : {}),
  };
}

export function sendProblem(res: Response, p: ProblemDetails): void {
  res.status(p.status).type('application/problem+json').send(JSON.stringify(p));
}

/** Maps any error to RFC 9457 problem details. Only a bug yields a 500, and it leaks no stack. */
export function toProblem(err: unknown, instance: string, logger: Logger): ProblemDetails {
  if (err instanceof BlixardError) return problem(err.status, err.code, err.message, instance, err.errors);
  if (err instanceof HttpException) {
    const status = err.getStatus();
    if (status === 404) return problem(404, 'not_found', `no route for ${instance}`, instance);
    const body = err.getResponse();
    const detail = typeof body === 'string' ? body : ((body as { message?: unknown }).message?.toString() ?? err.message);
    return problem(status, status === 503 ? 'unavailable' : 'http_error', detail, instance);
  }
  // Errors raised by Express' body parser before routing.
  const e = err as { type?: string; status?: number; statusCode?: number; message?: string; limit?: number };
  const status = e.status ?? e.statusCode;
  if (e.type === 'entity.too.large') return problem(413, 'payload_too_large', `the request body exceeds ${e.limit} bytes`, instance);
  if (e.type === 'entity.parse.failed') return problem(400, 'malformed_json', 'the request body is not valid JSON', instance);
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') return problem(415, 'unsupported_encoding', e.message ?? 'unsupported encoding', instance);
  if (typeof status === 'number' && status >= 400 && status < 500) return problem(status, 'bad_request', e.message ?? 'bad request', instance);
  logger.error({ err, instance }, 'unhandled error');
  return problem(500, 'internal', 'an unexpected error occurred; it has been logged', instance);
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    if (res.headersSent) return;
    // Readiness answers with its own body.
    if (err instanceof HttpException && err.getStatus() === 503 && req.path === '/readyz') {
      res.status(503).json(err.getResponse());
      return;
    }
    if (err instanceof TooManyRequestsError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
    sendProblem(res, toProblem(err, req.originalUrl ?? req.url, this.logger));
  }
}

/** Express error middleware for errors raised before Nest routes (body parsing). */
export function problemMiddleware(logger: Logger) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    sendProblem(res, toProblem(err, req.originalUrl ?? req.url, logger));
  };
}
