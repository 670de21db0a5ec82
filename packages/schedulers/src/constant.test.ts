import { FinepruneError } from '@fineprune/core';
import { describe, expect, it } from 'vitest';
import { constant } from './constant';
import { scheduleFromConfig } from './from-config';

describe('constant schedule', () => {
  it('returns its sparsity at every step and round-trips its config', () => {
    const schedule = constant({ sparsity: 0.75 });
    expect([0, 1, 10_000].map((step) => schedule.valueAt(step))).toEqual([0.75, 0.75, 0.75]);
    expect(scheduleFromConfig(schedule.toConfig()).valueAt(3)).toBe(0.75);
  });

  it('rejects a sparsity outside [0, 1)', () => {
    for (const sparsity of [1, 1.5, -0.01]) {
      expect(() => constant({ sparsity })).toThrow(FinepruneError);
    }
    expect(() => scheduleFromConfig({ type: 'linear' })).toThrow(/Unknown schedule type/);
  });
});
