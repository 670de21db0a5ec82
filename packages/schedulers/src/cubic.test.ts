import { FinepruneError } from '@fineprune/core';
import { describe, expect, it } from 'vitest';
import { cubic } from './cubic';
import { scheduleFromConfig } from './from-config';

// Hand-derived values of Eq. (5) (continuous form, nΔt = T − t_i − t_f); tolerance 1e-12 (double precision).
describe('cubic schedule, Eq. (5) of Movement Pruning', () => {
  // T = 1000, t_i = 100, t_f = 100, so nΔt = 800; v_i = 0, v_f = 0.9, Δt = 1.
  const schedule = cubic({
    initialSparsity: 0,
    finalSparsity: 0.9,
    totalSteps: 1000,
    warmupSteps: 100,
    cooldownSteps: 100,
  });

  it('holds v_i through the warm-up, up to the last warm-up step', () => {
    expect(schedule.valueAt(0)).toBe(0);
    expect(schedule.valueAt(99)).toBe(0);
  });

  it('starts pruning continuously at t = t_i', () => {
    // (1 − 0/800)³ = 1 → v = 0.9 + (0 − 0.9)·1 = 0
    expect(schedule.valueAt(100)).toBeCloseTo(0, 12);
    // t = 101: 0.9 − 0.9·(1 − 1/800)³ = 0.9·(1 − 0.996254685546875) = 0.0033707830078125
    expect(schedule.valueAt(101)).toBeCloseTo(0.9 - 0.9 * (799 / 800) ** 3, 12);
    expect(schedule.valueAt(101)).toBeCloseTo(0.0033707830078125, 12);
  });

  it('matches hand-computed midpoints', () => {
    // t = 500: (1 − 400/800)³ = 1/8 → 0.9 − 0.9/8 = 0.7875
    expect(schedule.valueAt(500)).toBeCloseTo(0.7875, 12);
    // t = 300: (1 − 200/800)³ = 27/64 → 0.9 − 0.9·27/64 = 0.5203125
    expect(schedule.valueAt(300)).toBeCloseTo(0.5203125, 12);
    // t = 700: (1 − 600/800)³ = 1/64 → 0.9 − 0.9/64 = 0.8859375
    expect(schedule.valueAt(700)).toBeCloseTo(0.8859375, 12);
  });

  it('approaches v_f continuously and holds it through the cool-down', () => {
    // t = 899 (last pruning step): 0.9 − 0.9·(1/800)³ = 0.9 − 1.7578125e-9
    expect(schedule.valueAt(899)).toBeCloseTo(0.9 - 0.9 / 800 ** 3, 15);
    expect(schedule.valueAt(900)).toBe(0.9);
    expect(schedule.valueAt(999)).toBe(0.9);
    expect(schedule.valueAt(5000)).toBe(0.9);
  });

  it('is non-decreasing over the whole run', () => {
    let previous = -1;
    for (let step = 0; step < 1000; step += 1) {
      const value = schedule.valueAt(step);
      expect(value).toBeGreaterThanOrEqual(previous);
      previous = value;
    }
  });

  it('changes only every Δt steps after the warm-up (pruning interval)', () => {
    // T = 1000, t_i = 100, t_f = 100, Δt = 50: value at t is the value at 100 + 50·⌊(t − 100)/50⌋.
    const stepped = cubic({
      finalSparsity: 0.9,
      totalSteps: 1000,
      warmupSteps: 100,
      cooldownSteps: 100,
      interval: 50,
    });
    expect(stepped.updateInterval).toBe(50);
    expect(stepped.valueAt(100)).toBeCloseTo(0, 12);
    expect(stepped.valueAt(149)).toBeCloseTo(0, 12);
    // t = 150: 0.9 − 0.9·(1 − 50/800)³ = 0.9 − 0.9·0.823974609375 = 0.1584228515625
    expect(stepped.valueAt(150)).toBeCloseTo(0.1584228515625, 12);
    expect(stepped.valueAt(199)).toBeCloseTo(0.1584228515625, 12);
    // t = 899 rounds down to 850: 0.9 − 0.9·(50/800)³ = 0.9 − 0.9/4096
    expect(stepped.valueAt(899)).toBeCloseTo(0.9 - 0.9 / 4096, 12);
    expect(stepped.valueAt(900)).toBe(0.9);
  });

  it('uses a non-zero initial sparsity', () => {
    // v_i = 0.5, v_f = 0.9, T = 100, t_i = 0, t_f = 0: t = 50 → 0.9 − 0.4·(1/2)³ = 0.85
    const fromHalf = cubic({ initialSparsity: 0.5, finalSparsity: 0.9, totalSteps: 100 });
    expect(fromHalf.valueAt(0)).toBeCloseTo(0.5, 12);
    expect(fromHalf.valueAt(50)).toBeCloseTo(0.85, 12);
    expect(fromHalf.valueAt(100)).toBe(0.9);
  });

  it('round-trips through toConfig and scheduleFromConfig', () => {
    const copy = scheduleFromConfig(schedule.toConfig());
    for (const step of [0, 99, 100, 101, 500, 899, 900, 999])
      expect(copy.valueAt(step)).toBe(schedule.valueAt(step));
  });

  it.each([
    [{ finalSparsity: 1, totalSteps: 10 }, 'INVALID_SPARSITY'],
    [{ finalSparsity: -0.1, totalSteps: 10 }, 'INVALID_SPARSITY'],
    [{ finalSparsity: Number.NaN, totalSteps: 10 }, 'INVALID_SPARSITY'],
    [{ initialSparsity: 0.95, finalSparsity: 0.9, totalSteps: 10 }, 'INVALID_SCHEDULE'],
    [{ finalSparsity: 0.9, totalSteps: 100, warmupSteps: 60, cooldownSteps: 40 }, 'INVALID_SCHEDULE'],
    [{ finalSparsity: 0.9, totalSteps: 100, warmupSteps: 80, cooldownSteps: 40 }, 'INVALID_SCHEDULE'],
    [{ finalSparsity: 0.9, totalSteps: 100, interval: 0 }, 'INVALID_SCHEDULE'],
    [{ finalSparsity: 0.9, totalSteps: 100, interval: 101 }, 'INVALID_SCHEDULE'],
    [{ finalSparsity: 0.9, totalSteps: 10.5 }, 'INVALID_SCHEDULE'],
  ])('rejects %j with %s', (options, code) => {
    let caught: unknown;
    try {
      cubic(options as never);
    } catch (error) {
      caught = error;
    }
    expect(FinepruneError.is(caught)).toBe(true);
    expect((caught as FinepruneError).code).toBe(code);
    expect((caught as FinepruneError).fix.length).toBeGreaterThan(0);
  });

  it('rejects negative or fractional steps', () => {
    expect(() => schedule.valueAt(-1)).toThrow(/non-negative integers/);
    expect(() => schedule.valueAt(1.5)).toThrow(FinepruneError);
  });
});
