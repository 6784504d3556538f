/**
 * A one-line description of any thrown value. pg reports a refused connection to `localhost`
 * as an AggregateError with an empty message (one error per resolved address), so the inner
 * errors and the code are used when the message says nothing.
 */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && !err.message) {
    return [...new Set(err.errors.map(describeError))].join('; ');
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return err.message || (typeof code === 'string' ? code : err.name);
  }
  return String(err);
}

/** A failure the user can fix; `main` prints its message without a stack trace. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}
