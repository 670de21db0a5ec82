/**
 * A tiny deterministic shuffle for the data pipeline. Its output is a pure function of
 * `(seed, stream, domain)`, so a batch can be recomputed from its step alone, on any machine and
 * in any order.
 */

import { check } from '@fineprune/tensor/errors';

const TWO_POW_32 = 4294967296;

/** Murmur3's 32-bit finaliser: a bijective avalanche mix of one 32-bit word. */
function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Folds one safe integer (both 32-bit halves) into a running hash. */
function absorb(hash: number, value: number): number {
  const low = value >>> 0;
  const high = Math.floor(value / TWO_POW_32) >>> 0;
  hash = fmix32((hash ^ low) + 0x9e3779b9);
  return fmix32((hash ^ high) + 0x7f4a7c15);
}

/** The mulberry32 generator: 32-bit state, period 2^32, returns uint32 values. */
function mulberry32(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * Domains keep independent uses of one seed apart: the validation hold-out and the epoch-0 batch
 * order of the same seed must not be the same permutation.
 */
export const PermutationDomain = {
  /** Per-epoch orders of {@link BatchSource}. */
  batches: 1,
  /** The shuffled hold-out of {@link splitValidation}. */
  validation: 2,
  /** Free for user code. */
  user: 3,
} as const;

/**
 * A permutation of `0 … count - 1` (Fisher–Yates driven by mulberry32) that depends only on
 * `(count, seed, stream, domain)`.
 *
 * @param count - Number of elements; a non-negative integer.
 * @param seed - Any safe integer.
 * @param stream - Sub-stream index, for example the epoch; a non-negative safe integer.
 * @param domain - Keeps unrelated uses of one seed apart; defaults to {@link PermutationDomain.user}.
 * @returns A fresh `Int32Array` holding every index exactly once.
 * @throws FinepruneError `INVALID_ARGUMENT` for a non-integer count, seed or stream.
 *
 * @example
 * ```ts
 * const order = seededPermutation(5, 42, 0);
 * // the same call anywhere returns the same order, e.g. Int32Array [3, 0, 4, 1, 2]
 * ```
 */
export function seededPermutation(
  count: number,
  seed: number,
  stream = 0,
  domain: number = PermutationDomain.user,
): Int32Array {
  check(
    Number.isInteger(count) && count >= 0 && count < 2 ** 31,
    `count must be a non-negative integer below 2^31, got ${count}.`,
    'Pass the number of examples to permute.',
  );
  check(
    Number.isSafeInteger(seed),
    `seed must be a safe integer, got ${seed}.`,
    'Pass an integer seed such as 0 or 42.',
  );
  check(
    Number.isSafeInteger(stream) && stream >= 0,
    `stream must be a non-negative safe integer, got ${stream}.`,
    'Pass the epoch (0, 1, 2, …) as the stream.',
  );
  let state = absorb(0x2545f491, domain);
  state = absorb(state, seed);
  state = absorb(state, stream);
  const next = mulberry32(state);
  const order = new Int32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor((next() / TWO_POW_32) * (i + 1));
    const tmp = order[i]!;
    order[i] = order[j]!;
    order[j] = tmp;
  }
  return order;
}
