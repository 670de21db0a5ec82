import { describe, expect, it } from 'vitest';
import { DEFAULT_MINIMUM_LEARNING_RATE, learningRateSchedule } from './learning-rate-schedules';
import { errorOf } from './testing';

describe('learningRateSchedule', () => {
  it('constant: the peak at every step', () => {
    const rate = learningRateSchedule(0.01, { type: 'constant' });
    expect([0, 1, 1e6].map(rate)).toEqual([0.01, 0.01, 0.01]);
  });

  it('linear: warm-up to the peak at step W−1, then decay to the floor at T (hand values, peak 1e-3, W 2, T 6)', () => {
    const rate = learningRateSchedule(1e-3, { type: 'linear', warmupSteps: 2, totalSteps: 6 });
    const expected = [5e-4, 1e-3, 1e-3, 7.5e-4, 5e-4, 2.5e-4, DEFAULT_MINIMUM_LEARNING_RATE, 1e-8];
    expected.forEach((value, step) => {
      expect(rate(step)).toBeCloseTo(value, 15);
    });
  });

  it('linear: bit for bit the rate of the encoder-transfer benchmark (150 steps, 15 warm-up, peak 3e-4)', () => {
    const steps = 150;
    const warmupSteps = Math.round(0.1 * steps);
    const peak = 3e-4;
    // bench/src/encoder-transfer.ts, weightRate: the reference a recipe must reproduce exactly.
    const reference = (step: number) =>
      Math.max(
        peak * (step < warmupSteps ? (step + 1) / warmupSteps : (steps - step) / (steps - warmupSteps)),
        1e-8,
      );
    const rate = learningRateSchedule(peak, { type: 'linear', warmupSteps, totalSteps: steps });
    for (let step = 0; step <= steps; step++) expect(rate(step)).toBe(reference(step));
  });

  it('cosine: warm-up, the peak, the midpoint at half the way, the minimum at T', () => {
    const rate = learningRateSchedule(1, { type: 'cosine', warmupSteps: 2, totalSteps: 12, minimum: 0.1 });
    expect(rate(0)).toBeCloseTo(0.5, 12);
    expect(rate(2)).toBeCloseTo(1, 12);
    // Half-way through the decay, (1 + cos(π/2)) / 2 = 1/2 of the range above the minimum.
    expect(rate(7)).toBeCloseTo(0.1 + 0.9 * 0.5, 12);
    expect(rate(12)).toBeCloseTo(0.1, 12);
    expect(rate(100)).toBeCloseTo(0.1, 12);
  });

  it('refuses a warm-up that does not end before the run, a bad peak or minimum', () => {
    expect(
      errorOf(() => learningRateSchedule(1e-3, { type: 'linear', warmupSteps: 6, totalSteps: 6 })).message,
    ).toMatch(/warmupSteps must be an integer in 0 … 5/);
    expect(errorOf(() => learningRateSchedule(0, { type: 'constant' })).code).toBe('INVALID_ARGUMENT');
    expect(
      errorOf(() => learningRateSchedule(1e-3, { type: 'cosine', totalSteps: 5, minimum: 1 })).message,
    ).toMatch(/minimum must be in/);
  });
});
