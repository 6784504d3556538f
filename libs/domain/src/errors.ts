/**
 * Typed errors with a stable machine code. The gateway maps them to application/problem+json;
 * anything else reaching a client as a 500 is a bug.
 */
export interface FieldError {
  /** JSON path of the offending field, e.g. `payload`, `labels.zone`. */
  field: string;
  message: string;
}

export abstract class BlixardError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly errors: FieldError[] = [];
}

export class ValidationError extends BlixardError {
  readonly code = 'validation_failed';
  readonly status = 400;
  override readonly errors: FieldError[];
  constructor(errors: FieldError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; ') || 'invalid request');
    this.name = 'ValidationError';
    this.errors = errors;
  }
}

export class NotFoundError extends BlixardError {
  readonly code = 'not_found';
  readonly status = 404;
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} does not exist`);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends BlixardError {
  readonly status = 409;
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConflictError';
  }
}
