import { describe, expect, it } from 'vitest';
import { checkKeptCountRule, keptCountFor, roundHalfEven } from './kept-count';
import { errorOf } from './testing';

describe('kept counts under each rule', () => {
  it('rounds halves to even, everything else to the nearest integer', () => {
    expect([0.5, 1.5, 2.5, 12.5, 13.5, 12.4, 12.6, 0, 7].map(roundHalfEven)).toEqual([
      0, 2, 2, 12, 14, 12, 13, 0, 7,
    ]);
  });

  // The movement-pruning reference keeps int(r · n) of n scores at remaining fraction r = 1 − v
  // (Python: int(0.3 * 50176) = 15052, int(0.03 * 2359296) = 70778, int(0.1 * 10) = 1,
  // int(0.29 * 100) = int(28.999999999999996) = 28); the loss-modelling reference prunes
  // round(κ · N) with Python's half-to-even round (round(12.5) = 12).
  it.each([
    // [n, v, round, floor, half-even]
    [784 * 64, 0.7, 15053, 15052, 15053],
    [768 * 3072, 0.97, 70779, 70778, 70779],
    [1000, 0.0125, 987, 987, 988],
    [10, 0.9, 1, 1, 1],
    [100, 0.71, 29, 28, 29],
    [5, 0, 5, 5, 5],
  ])('n = %i at v = %d: round %i, floor %i, half-even %i', (total, sparsity, round, floor, halfEven) => {
    expect(keptCountFor(total, sparsity)).toBe(round);
    expect(keptCountFor(total, sparsity, 'round')).toBe(round);
    expect(keptCountFor(total, sparsity, 'floor')).toBe(floor);
    expect(keptCountFor(total, sparsity, 'half-even')).toBe(halfEven);
  });

  it('rejects an unknown rule with INVALID_ARGUMENT naming the owner', () => {
    const error = errorOf(() => checkKeptCountRule('topV', 'ceil'));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('topV: keptCount must be one of "round", "floor", "half-even"');
    expect(() => checkKeptCountRule('topV', 'floor')).not.toThrow();
  });
});
