/**
 * Seeded random streams: one independent {@link RandomSource} per `(seed, domain, stream)`, so a
 * batch or a split is a pure function of its seed and index and can be recomputed in any order.
 * Exported for `@fineprune/corpora`, whose task splits draw from the same streams.
 */

import { check } from '@fineprune/tensor/errors';
import { createRandom, type RandomSource } from '@fineprune/tensor/random';

/**
 * Keeps unrelated uses of one seed apart: each use draws from its own domain. The split domains
 * belong to the tasks of `@fineprune/corpora`; they are listed here so that no two uses share one.
 *
 * @example
 * ```ts
 * const order = streamRandom(42, StreamDomain.exampleOrder, 0).permutation(10); // epoch 0's order
 * ```
 */
export const StreamDomain = {
  brownSplit: 11,
  spamSplit: 12,
  exampleOrder: 13,
  mlmValidation: 14,
  mlmOrder: 15,
  mlmMasking: 16,
  mlmEvaluationMasking: 17,
} as const;

/** Murmur3's 32-bit finaliser: a bijective avalanche mix. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds a safe integer (both 32-bit halves) into a running 32-bit hash. */
function absorb(hash: number, value: number): number {
  const low = value >>> 0;
  const high = Math.floor(value / 4294967296) >>> 0;
  return fmix32(fmix32((hash ^ low) + 0x9e3779b9) ^ (high + 0x7f4a7c15));
}

/**
 * A random source that depends only on `(seed, domain, stream)`.
 *
 * @throws FinepruneError `INVALID_ARGUMENT` when the seed is not a safe integer.
 *
 * @example
 * ```ts
 * const a = streamRandom(7, StreamDomain.brownSplit, 3).nextUint32();
 * const b = streamRandom(7, StreamDomain.brownSplit, 3).nextUint32(); // a === b
 * ```
 */
export function streamRandom(seed: number, domain: number, stream: number): RandomSource {
  check(
    Number.isSafeInteger(seed),
    `seed must be a safe integer, got ${seed}.`,
    'Pass an integer seed such as 0 or 42.',
  );
  const a = absorb(absorb(absorb(0x243f6a88, seed), domain), stream);
  const b = absorb(a, 0x13198a2e);
  // 21 + 32 bits: a safe integer that createRandom expands into its 128-bit state.
  return createRandom((a & 0x1fffff) * 4294967296 + b);
}

/**
 * An unbiased integer in `[0, bound)` for `1 ≤ bound ≤ 2^32` (rejection of the uneven tail).
 *
 * @example
 * ```ts
 * const die = randomBelow(streamRandom(0, StreamDomain.exampleOrder, 0), 6) + 1; // 1 … 6
 * ```
 */
export function randomBelow(random: RandomSource, bound: number): number {
  const limit = 4294967296 - (4294967296 % bound);
  let draw = random.nextUint32();
  while (draw >= limit) draw = random.nextUint32();
  return draw % bound;
}
