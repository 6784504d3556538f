import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_TABLE, ConfigError, configTableMarkdown, loadConfig, parseLabels, parseResources } from './config';

describe('configuration from the environment', () => {
  it('applies every default when nothing is set', () => {
    expect(loadConfig(['gatewayPort', 'natsUrl', 'logLevel', 'subjectPrefix'], {})).toEqual({
      gatewayPort: 8080,
      natsUrl: ['nats://127.0.0.1:4222'],
      logLevel: 'info',
      subjectPrefix: 'blixard',
    });
  });

  it('parses integers, lists and enums from their variables', () => {
    const env = { GATEWAY_PORT: '9000', NATS_URL: 'nats://a:4222, nats://b:4222', LOG_FORMAT: 'pretty' };
    expect(loadConfig(['gatewayPort', 'natsUrl', 'logFormat'], env)).toEqual({
      gatewayPort: 9000,
      natsUrl: ['nats://a:4222', 'nats://b:4222'],
      logFormat: 'pretty',
    });
  });

  it('names every bad variable at once instead of stopping at the first', () => {
    const env = { GATEWAY_PORT: 'eighty', EXECUTOR_CONCURRENCY: '0', LOG_LEVEL: 'loud', DATABASE_URL: 'not a url' };
    let error: unknown;
    try {
      loadConfig(['gatewayPort', 'executorConcurrency', 'logLevel', 'databaseUrl'], env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems[0]).toBe('GATEWAY_PORT="eighty" is not an integer');
    expect(problems[1]).toBe('EXECUTOR_CONCURRENCY=0 is out of range 1..10000');
    expect(problems[2]).toMatch(/^LOG_LEVEL="loud" must be one of trace, debug, info/);
    expect(problems[3]).toBe('DATABASE_URL="not a url" is not a URL');
    expect((error as Error).message).toContain('invalid configuration:\n  - GATEWAY_PORT');
  });

  it('reads executor labels as key=value pairs and refuses a pair without a key', () => {
    expect(parseLabels('zone=a, gpu=true,tier=')).toEqual({ zone: 'a', gpu: 'true', tier: '' });
    expect(parseLabels('')).toEqual({});
    expect(() => parseLabels('zone=a,oops')).toThrow(ConfigError);
    expect(() => parseLabels('=b')).toThrow('EXECUTOR_LABELS: "=b" is not key=value');
  });

  it('parses executor resources as numbers', () => {
    expect(parseResources('cpuMillis=4000, memoryMb=8192,gpu=1')).toEqual({ cpuMillis: 4000, memoryMb: 8192, gpu: 1 });
    expect(() => parseResources('memoryMb=lots')).toThrow('EXECUTOR_RESOURCES: memoryMb=lots is not a non-negative number');
    expect(() => parseResources('slots=3')).toThrow(ConfigError);
  });

  it('documents every variable in one table, each with one name', () => {
    const names = Object.values(CONFIG_TABLE).map((e) => e.env);
    expect(new Set(names).size).toBe(names.length);
    const table = configTableMarkdown();
    for (const name of names) expect(table).toContain(`\`${name}\``);
  });

  it('is the table the README shows (regenerate it with `node apps/cli/dist/main.js config`)', () => {
    const readme = readFileSync(path.join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const start = readme.indexOf('| variable | default | meaning |', readme.indexOf('## Configuration'));
    const shown = readme.slice(start, readme.indexOf('\n\n', start)).trim();
    expect(shown).toBe(configTableMarkdown().trim());
  });
});
