import { BlixardError, ConflictError, NotFoundError, ValidationError } from './errors';

describe('ValidationError', () => {
  const error = new ValidationError([
    { field: 'backend', message: 'is required' },
    { field: 'labels.zone', message: 'must be a string' },
  ]);

  it('is a BlixardError and an Error', () => {
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toBeInstanceOf(BlixardError);
    expect(error).toBeInstanceOf(Error);
  });

  it('carries the code validation_failed and HTTP status 400', () => {
    expect(error.code).toBe('validation_failed');
    expect(error.status).toBe(400);
    expect(error.name).toBe('ValidationError');
  });

  it('keeps every field error', () => {
    expect(error.errors).toEqual([
      { field: 'backend', message: 'is required' },
      { field: 'labels.zone', message: 'must be a string' },
    ]);
  });

  it('lists every field error in its message', () => {
    expect(error.message).toBe('backend: is required; labels.zone: must be a string');
  });

  it('falls back to a generic message when given no field errors', () => {
    const empty = new ValidationError([]);
    expect(empty.message).toBe('invalid request');
    expect(empty.errors).toEqual([]);
  });
});

describe('NotFoundError', () => {
  const error = new NotFoundError('job', '01890a5d-ac96-774b-bcce-b302099a8057');

  it('is a BlixardError with the code not_found and HTTP status 404', () => {
    expect(error).toBeInstanceOf(BlixardError);
    expect(error.code).toBe('not_found');
    expect(error.status).toBe(404);
    expect(error.name).toBe('NotFoundError');
  });

  it('names the missing entity and its id', () => {
    expect(error.entity).toBe('job');
    expect(error.id).toBe('01890a5d-ac96-774b-bcce-b302099a8057');
    expect(error.message).toBe('job 01890a5d-ac96-774b-bcce-b302099a8057 does not exist');
  });

  it('has no field errors', () => {
    expect(error.errors).toEqual([]);
  });
});

describe('ConflictError', () => {
  const error = new ConflictError('idempotency_conflict', 'the key was used for a different job');

  it('is a BlixardError with HTTP status 409 and the code it was given', () => {
    expect(error).toBeInstanceOf(BlixardError);
    expect(error.status).toBe(409);
    expect(error.code).toBe('idempotency_conflict');
    expect(error.name).toBe('ConflictError');
  });

  it('keeps its message and has no field errors', () => {
    expect(error.message).toBe('the key was used for a different job');
    expect(error.errors).toEqual([]);
  });
});
