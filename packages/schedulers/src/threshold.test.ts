import { FinepruneError } from '@fineprune/core';
import { describe, expect, it } from 'vitest';
import { scheduleFromConfig } from './from-config';
import { cubicThreshold, noTarget } from './threshold';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).fix.length).toBeGreaterThan(0);
    return (error as FinepruneError).code;
  }
  throw new Error('expected a FinepruneError');
}

// Hand-computed values of the cubic ramp (Eq. 5 with τ for v); tolerance 1e-12 (double precision).
describe('cubicThreshold schedule', () => {
  // T = 1000, t_i = 100, t_f = 200 → nΔt = 700; τ_i = 0, τ_f = 0.1.
  const schedule = cubicThreshold({
    initialThreshold: 0,
    finalThreshold: 0.1,
    totalSteps: 1000,
    warmupSteps: 100,
    cooldownSteps: 200,
  });

  it('is of kind threshold, holds τ_i in the warm-up and τ_f in the cool-down', () => {
    expect(schedule.kind).toBe('threshold');
    expect(schedule.valueAt(0)).toBe(0);
    expect(schedule.valueAt(99)).toBe(0);
    expect(schedule.valueAt(800)).toBe(0.1);
    expect(schedule.valueAt(10_000)).toBe(0.1);
  });

  it('follows τ_f + (τ_i − τ_f)(1 − (t − t_i)/(nΔt))³ in between', () => {
    // t = 450: (1 − 350/700)³ = 1/8 → 0.1 − 0.1/8 = 0.0875
    expect(schedule.valueAt(450)).toBeCloseTo(0.0875, 12);
    // t = 275: (1 − 175/700)³ = 27/64 → 0.1 − 0.1·27/64 = 0.05781250
    expect(schedule.valueAt(275)).toBeCloseTo(0.0578125, 12);
  });

  it('may fall as well as rise, steps by Δt, and round-trips its config', () => {
    const falling = cubicThreshold({
      initialThreshold: 0.9,
      finalThreshold: 0.5,
      totalSteps: 100,
      interval: 10,
      on: 'sigmoid',
    });
    // t = 55 rounds down to 50: 0.5 + 0.4·(1 − 50/100)³ = 0.55
    expect(falling.valueAt(55)).toBeCloseTo(0.55, 12);
    expect(falling.updateInterval).toBe(10);
    const copy = scheduleFromConfig(falling.toConfig());
    for (const step of [0, 9, 10, 55, 99, 100]) expect(copy.valueAt(step)).toBe(falling.valueAt(step));
    expect(scheduleFromConfig(noTarget().toConfig()).kind).toBe('none');
    expect(noTarget().valueAt(5)).toBe(0);
  });

  it('refuses a schedule that would keep nothing, and inconsistent steps', () => {
    expect(
      codeOf(() =>
        cubicThreshold({ initialThreshold: 0, finalThreshold: Number.POSITIVE_INFINITY, totalSteps: 10 }),
      ),
    ).toBe('INVALID_SCHEDULE');
    expect(
      codeOf(() => cubicThreshold({ initialThreshold: 0, finalThreshold: Number.NaN, totalSteps: 10 })),
    ).toBe('INVALID_SCHEDULE');
    expect(
      codeOf(() => cubicThreshold({ initialThreshold: 0, finalThreshold: 1, totalSteps: 10, on: 'sigmoid' })),
    ).toBe('INVALID_SCHEDULE');
    expect(
      codeOf(() =>
        cubicThreshold({
          initialThreshold: 0,
          finalThreshold: 0.1,
          totalSteps: 10,
          warmupSteps: 5,
          cooldownSteps: 5,
        }),
      ),
    ).toBe('INVALID_SCHEDULE');
    expect(
      codeOf(() =>
        cubicThreshold({ initialThreshold: 0, finalThreshold: 0.1, totalSteps: 10, interval: 11 }),
      ),
    ).toBe('INVALID_SCHEDULE');
    expect(codeOf(() => noTarget().valueAt(-1))).toBe('INVALID_ARGUMENT');
  });
});
