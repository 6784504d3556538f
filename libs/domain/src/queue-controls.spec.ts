import { ValidationError } from './errors';
import { applyQueueControls, NO_QUEUE_CONTROLS } from './queue-controls';

describe('queue controls', () => {
  it('applies each given field and keeps the others', () => {
    const paused = applyQueueControls(NO_QUEUE_CONTROLS, { paused: true, maxConcurrency: 5 });
    expect(paused).toEqual({ ...NO_QUEUE_CONTROLS, paused: true, maxConcurrency: 5 });
    const limited = applyQueueControls(paused, { rateLimit: { n: 10, intervalMs: 1000 }, keyConcurrency: 2, keyRateLimit: { n: 1, intervalMs: 60000 } });
    expect(limited).toEqual({ paused: true, maxConcurrency: 5, rateLimit: { n: 10, intervalMs: 1000 }, keyConcurrency: 2, keyRateLimit: { n: 1, intervalMs: 60000 }, placementPolicy: 'binpack' });
    expect(applyQueueControls(limited, { placementPolicy: 'spread' }).placementPolicy).toBe('spread');
  });

  it('removes a limit given null', () => {
    const limited = applyQueueControls(NO_QUEUE_CONTROLS, { maxConcurrency: 5, rateLimit: { n: 1, intervalMs: 10 } });
    expect(applyQueueControls(limited, { maxConcurrency: null, rateLimit: null })).toEqual(NO_QUEUE_CONTROLS);
  });

  it('reports every bad field at once', () => {
    try {
      applyQueueControls(NO_QUEUE_CONTROLS, { paused: 'yes', maxConcurrency: 0, rateLimit: { n: 5 }, keyRateLimit: 3, colour: 1, placementPolicy: 'random' });
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).errors.map((e) => e.field).sort()).toEqual(['colour', 'keyRateLimit', 'maxConcurrency', 'paused', 'placementPolicy', 'rateLimit.intervalMs']);
    }
  });
});
