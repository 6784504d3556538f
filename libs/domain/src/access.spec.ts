import { hasScope, jsonDepth, parseDuration, parseScopes, SCOPES } from './access';
import { payloadLimits } from './submission';

describe('scopes', () => {
  it('grants a scope to its holder, to admin, and a read or write scope to the matching admin scope', () => {
    expect(hasScope(['jobs:read'], 'jobs:read')).toBe(true);
    expect(hasScope(['jobs:read'], 'jobs:write')).toBe(false);
    expect(hasScope(['jobs:write'], 'jobs:read')).toBe(false);
    expect(hasScope(['jobs:admin'], 'jobs:write')).toBe(true);
    expect(hasScope(['workers:admin'], 'workers:read')).toBe(true);
    expect(hasScope(['workers:admin'], 'jobs:read')).toBe(false);
    expect(hasScope(['webhooks:admin'], 'jobs:read')).toBe(false);
    for (const s of SCOPES) expect(hasScope(['admin'], s)).toBe(true);
    expect(hasScope(['jobs:fly', 'toString'], 'jobs:read')).toBe(false);
  });

  it('parses a comma-separated or listed set of scopes and names each unknown one', () => {
    expect(parseScopes('jobs:read, jobs:write,jobs:read')).toEqual({ scopes: ['jobs:read', 'jobs:write'], errors: [] });
    expect(parseScopes(['admin'])).toEqual({ scopes: ['admin'], errors: [] });
    expect(parseScopes('jobs:read,jobs:fly').errors).toEqual([{ field: 'scopes[1]', message: expect.stringContaining('jobs:fly') }]);
    expect(parseScopes('').errors).toHaveLength(1);
    expect(parseScopes(42).errors).toHaveLength(1);
  });

  it('parses key lifetimes', () => {
    expect(parseDuration('30d')).toBe(30 * 86_400_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration('0d')).toBeNull();
    expect(parseDuration('soon')).toBeNull();
    expect(parseDuration('99999999d')).toBeNull();
  });
});

describe('JSON depth and payload limits', () => {
  it('measures depth without recursion, even a hundred thousand levels deep', () => {
    expect(jsonDepth(1)).toBe(0);
    expect(jsonDepth({ a: [1, { b: 2 }] })).toBe(3);
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));
    expect(jsonDepth(deep, 64)).toBe(65);
  });

  it('refuses a payload over its byte size or depth, naming payload', () => {
    const check = payloadLimits(10, 3);
    expect(check({ payload: 'abc' })).toEqual([]);
    expect(check({ payload: 'x'.repeat(20) })).toEqual([{ field: 'payload', message: expect.stringContaining('MAX_PAYLOAD_BYTES') }]);
    expect(check({ payload: [[[[1]]]] })).toEqual([{ field: 'payload', message: 'nests deeper than 3 levels' }]);
    // Multi-byte characters count in bytes.
    expect(check({ payload: 'ééééé' })).toHaveLength(1);
  });
});
