/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32) whose state can be saved in a
 * checkpoint and restored exactly. Integer-only arithmetic, so the sequence is the same on every
 * platform and JavaScript engine.
 */

import { ErrorCodes, FinepruneError } from './errors';

/**
 * A seeded random source with serialisable state.
 *
 * @example
 * ```ts
 * const random = createRandom(42);
 * const order = random.permutation(60000);
 * const saved = random.state();
 * random.next();
 * random.setState(saved); // the next draw repeats
 * ```
 */
export interface RandomSource {
  /** A uniform float in [0, 1) (32 bits of randomness). */
  next(): number;
  /** A uniform integer in [0, 2³²). */
  nextUint32(): number;
  /** The four 32-bit state words, for a checkpoint. */
  state(): number[];
  /** Restores state words returned by {@link RandomSource.state}. */
  setState(state: number[]): void;
  /** Shuffles `array` in place (Fisher–Yates, unbiased) and returns it. */
  shuffle<T>(array: T[]): T[];
  /** A uniformly random permutation of 0, 1, …, n − 1. */
  permutation(n: number): Int32Array;
}

const TWO_TO_32 = 4294967296;

function invalid(message: string, fix: string): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix });
}

/** splitmix32: one step of a Weyl sequence, then a murmur3-style finaliser. */
function splitmix32(state: { value: number }): number {
  state.value = (state.value + 0x9e3779b9) | 0;
  let z = state.value;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * The brand of the built-in generator (a registered symbol, so it survives a bundle that carries
 * two copies of this module): fused kernels that replay xoshiro128** in WebAssembly check it.
 */
const XOSHIRO_BRAND = Symbol.for('fineprune.random.xoshiro128**');

/**
 * Whether `random` is this module's xoshiro128** generator, whose stream a WebAssembly kernel can
 * continue from `state()` and hand back through `setState()` (the fused hard-concrete noise does).
 *
 * @example
 * ```ts
 * isXoshiro128(createRandom(1)); // true
 * isXoshiro128({ next: Math.random }); // false
 * ```
 */
export function isXoshiro128(random: unknown): random is RandomSource {
  return (
    typeof random === 'object' &&
    random !== null &&
    (random as Record<symbol, unknown>)[XOSHIRO_BRAND] === true
  );
}

class Xoshiro128StarStar implements RandomSource {
  readonly [XOSHIRO_BRAND] = true;
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    // s0, s1 come from the low 32 bits, s2, s3 also from the high ones: distinct seeds, distinct states.
    const mixer = { value: seed >>> 0 };
    this.s0 = splitmix32(mixer);
    this.s1 = splitmix32(mixer);
    mixer.value ^= Math.floor(seed / TWO_TO_32) | 0;
    this.s2 = splitmix32(mixer);
    this.s3 = splitmix32(mixer);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  nextUint32(): number {
    // xoshiro128** (Blackman & Vigna, 2018): result = rotl(s1·5, 7)·9, then the xor-shift update.
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  next(): number {
    return this.nextUint32() / TWO_TO_32;
  }

  state(): number[] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: number[]): void {
    if (
      !Array.isArray(state) ||
      state.length !== 4 ||
      !state.every((word) => Number.isInteger(word) && word >= 0 && word < TWO_TO_32) ||
      state.every((word) => word === 0)
    ) {
      throw invalid(
        `A random state is four integers in [0, 2^32), not all zero; got ${JSON.stringify(state)}.`,
        'Pass an array returned by state() unchanged.',
      );
    }
    this.s0 = state[0]! | 0;
    this.s1 = state[1]! | 0;
    this.s2 = state[2]! | 0;
    this.s3 = state[3]! | 0;
  }

  /** An unbiased integer in [0, bound) for 1 <= bound <= 2^32, by rejection of the uneven tail. */
  private below(bound: number): number {
    const limit = TWO_TO_32 - (TWO_TO_32 % bound);
    let draw = this.nextUint32();
    while (draw >= limit) draw = this.nextUint32();
    return draw % bound;
  }

  shuffle<T>(array: T[]): T[] {
    for (let index = array.length - 1; index > 0; index -= 1) {
      const other = this.below(index + 1);
      const value = array[index]!;
      array[index] = array[other]!;
      array[other] = value;
    }
    return array;
  }

  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) {
      throw invalid(
        `permutation() needs an integer n in [0, 2^31), got ${n}.`,
        'Pass the number of items to order.',
      );
    }
    const order = new Int32Array(n);
    for (let index = 0; index < n; index += 1) order[index] = index;
    for (let index = n - 1; index > 0; index -= 1) {
      const other = this.below(index + 1);
      const value = order[index]!;
      order[index] = order[other]!;
      order[other] = value;
    }
    return order;
  }
}

/**
 * A seeded random source: the same seed gives the same sequence on every platform.
 *
 * @param seed - any safe integer (negative and large seeds are fine)
 * @returns a new {@link RandomSource}
 * @throws FinepruneError `INVALID_ARGUMENT` when the seed is not a safe integer
 *
 * @example
 * ```ts
 * const random = createRandom(7);
 * random.next(); // a float in [0, 1)
 * random.shuffle([1, 2, 3]);
 * ```
 */
export function createRandom(seed: number): RandomSource {
  if (!Number.isSafeInteger(seed)) {
    throw invalid(`A random seed must be a safe integer, got ${seed}.`, 'Pass an integer seed such as 42.');
  }
  return new Xoshiro128StarStar(seed);
}
