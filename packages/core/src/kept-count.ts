import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * How a sparsity v over n entries becomes the number of entries kept. The papers' reference code
 * rounds differently from fineprune's default, and a one-weight difference changes a mask, so a
 * run ported from that code picks its rule here:
 *
 * - `round` (default): n − round(v·n), halves rounded up, so every sparsity keeps its nearest count.
 * - `floor`: ⌊(1 − v)·n⌋, the count the movement-pruning reference keeps (its Top-k binarizer takes
 *   `int(threshold · numel)` with `threshold` the remaining fraction). 1 − v is first taken to 15
 *   significant digits, so v = 0.9 gives the reference's 0.1 rather than 0.09999999999999998.
 * - `half-even`: n − round-half-to-even(v·n), Python's `round` as in the loss-modelling reference
 *   (N = 1000, κ = 0.0125: 12 pruned where `round` prunes 13).
 *
 * @example
 * ```ts
 * const rule: KeptCountRule = 'floor';
 * ```
 */
export type KeptCountRule = 'round' | 'floor' | 'half-even';

/**
 * Every {@link KeptCountRule}, for option checks and error messages.
 *
 * @example
 * ```ts
 * KEPT_COUNT_RULES.includes('floor'); // true
 * ```
 */
export const KEPT_COUNT_RULES: readonly KeptCountRule[] = ['round', 'floor', 'half-even'];

/**
 * Rounds to the nearest integer, halves to the even neighbour (banker's rounding, Python's `round`).
 *
 * @example
 * ```ts
 * roundHalfEven(12.5); // 12
 * roundHalfEven(13.5); // 14
 * ```
 */
export function roundHalfEven(value: number): number {
  const below = Math.floor(value);
  const fraction = value - below;
  if (fraction !== 0.5) return Math.round(value);
  return below % 2 === 0 ? below : below + 1;
}

/**
 * Throws `INVALID_ARGUMENT` naming `owner` unless `rule` is a {@link KeptCountRule}.
 *
 * @example
 * ```ts
 * checkKeptCountRule('topV', options.keptCount ?? 'round');
 * ```
 */
export function checkKeptCountRule(owner: string, rule: unknown): asserts rule is KeptCountRule {
  if (!KEPT_COUNT_RULES.includes(rule as KeptCountRule)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${owner}: keptCount must be one of ${KEPT_COUNT_RULES.map((name) => `"${name}"`).join(', ')}, got ${JSON.stringify(rule)}.`,
      fix: 'Use "round" (the default), "floor" (the movement-pruning reference) or "half-even" (the loss-modelling reference).',
    });
  }
}

/**
 * The number of entries kept out of `total` at `sparsity` under `rule` (see {@link KeptCountRule}).
 *
 * @example
 * ```ts
 * keptCountFor(784 * 64, 0.7); // 15053 = 50176 − round(35123.2)
 * keptCountFor(784 * 64, 0.7, 'floor'); // 15052 = ⌊0.3 · 50176⌋
 * keptCountFor(1000, 0.0125, 'half-even'); // 988
 * ```
 */
export function keptCountFor(total: number, sparsity: number, rule: KeptCountRule = 'round'): number {
  if (rule === 'floor') {
    const remaining = Number((1 - sparsity).toPrecision(15));
    return Math.min(total, Math.floor(remaining * total)); // int(threshold · numel), threshold = 1 − v
  }
  if (rule === 'half-even') return total - roundHalfEven(sparsity * total);
  return total - Math.round(sparsity * total);
}
