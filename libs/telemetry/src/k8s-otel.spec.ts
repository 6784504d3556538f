import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { ConfigMap } from 'kubernetes-models/v1';
import { tracingConfigProblems, tracingEnabled } from './sdk';

describe('k8s/base/otel.yaml', () => {
  const doc = parse(readFileSync(path.resolve(__dirname, '../../../k8s/base/otel.yaml'), 'utf8'));

  it('is a valid ConfigMap', () => {
    expect(doc.kind).toBe('ConfigMap');
    new ConfigMap(doc).validate();
  });

  it('turns tracing on with values the services accept', () => {
    const env = doc.data as Record<string, string>;
    expect(tracingConfigProblems(env)).toEqual([]);
    expect(tracingEnabled(env)).toBe(true);
    expect(env.OTEL_SERVICE_NAME).toBeUndefined(); // each service names itself
  });
});
