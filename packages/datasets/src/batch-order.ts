/**
 * The seeded, resumable order of mini-batches, apart from where the examples are kept: the order of
 * {@link BatchSource}, which serves it from a split in memory, and of any source that reads its
 * examples lazily (an image folder read file by file) and must serve the same batches.
 */

import { check, ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { PermutationDomain, seededPermutation } from './seeded-permutation';

/**
 * Options of {@link BatchOrder}.
 *
 * @example
 * ```ts
 * const options: BatchOrderOptions = { batchSize: 100, seed: 0 };
 * ```
 */
export interface BatchOrderOptions {
  /** Examples per batch; an integer in `1 … count`. */
  batchSize: number;
  /** Seed of the per-epoch shuffles; any safe integer. */
  seed: number;
  /** Drop the last, smaller batch of each epoch. Default `true`. */
  dropRemainder?: boolean;
}

function invalidArgument(message: string, fix: string): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix });
}

/**
 * Which examples each step takes: epoch `e` visits the `count` examples in the order
 * `seededPermutation(count, seed, e)`; step `s` belongs to epoch `floor(s / stepsPerEpoch)` and
 * takes the `s mod stepsPerEpoch`-th slice of that order. The permutations of the two most recent
 * epochs are cached (4 bytes per example each).
 *
 * @example
 * ```ts
 * const order = new BatchOrder(60000, { batchSize: 100, seed: 1 });
 * order.indices(0); // the 100 example indices of step 0
 * ```
 */
export class BatchOrder {
  /** Number of examples. */
  readonly count: number;
  /** Examples per full batch. */
  readonly batchSize: number;
  /** Seed of the per-epoch shuffles. */
  readonly seed: number;
  /** Whether the last, smaller batch of each epoch is dropped. */
  readonly dropRemainder: boolean;
  /** Batches per epoch: `floor(count / batchSize)`, or `ceil` without `dropRemainder`. */
  readonly stepsPerEpoch: number;

  private readonly cache = new Map<number, Int32Array>();

  /**
   * @param count - Number of examples.
   * @param options - Batch size, seed and `dropRemainder`.
   * @throws FinepruneError `INVALID_ARGUMENT` for a bad batch size or seed.
   */
  constructor(count: number, options: BatchOrderOptions) {
    const opts: Partial<BatchOrderOptions> = options ?? {};
    const { batchSize = Number.NaN, seed = Number.NaN, dropRemainder = true } = opts;
    check(
      Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= count,
      `batchSize must be an integer in 1..${count} (the split's example count), got ${batchSize}.`,
      'Pass a positive batchSize no larger than the split, e.g. 100.',
    );
    check(
      Number.isSafeInteger(seed),
      `seed must be a safe integer, got ${seed}.`,
      'Pass an integer seed such as 0 or 42.',
    );
    this.count = count;
    this.batchSize = batchSize;
    this.seed = seed;
    this.dropRemainder = dropRemainder;
    this.stepsPerEpoch = dropRemainder ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
  }

  /**
   * The epoch a step belongs to.
   *
   * @example
   * ```ts
   * order.epochOf(order.stepsPerEpoch); // 1
   * ```
   */
  epochOf(step: number): number {
    this.checkStep(step);
    return Math.floor(step / this.stepsPerEpoch);
  }

  /**
   * The order in which epoch `epoch` visits the examples (a permutation of `0 … count - 1`).
   * The returned array is cached: do not modify it.
   *
   * @example
   * ```ts
   * const permutation = order.permutation(0); // Int32Array of length count
   * ```
   */
  permutation(epoch: number): Int32Array {
    if (!(Number.isSafeInteger(epoch) && epoch >= 0)) {
      invalidArgument(`epoch must be a non-negative integer, got ${epoch}.`, 'Pass 0, 1, 2, …');
    }
    let order = this.cache.get(epoch);
    if (order === undefined) {
      order = seededPermutation(this.count, this.seed, epoch, PermutationDomain.batches);
      if (this.cache.size >= 2) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(epoch, order);
    }
    return order;
  }

  /**
   * The example indices of batch `step`, in batch order (a fresh array).
   *
   * @throws FinepruneError `INVALID_ARGUMENT` for a negative or non-integer step.
   *
   * @example
   * ```ts
   * const first = order.indices(0); // Int32Array of batchSize example indices
   * ```
   */
  indices(step: number): Int32Array {
    const { order, start, size } = this.locate(step);
    return order.slice(start, start + size);
  }

  /**
   * Where batch `step` lies: its epoch's permutation, its first position in it, and its size.
   *
   * @throws FinepruneError `INVALID_ARGUMENT` for a negative or non-integer step.
   *
   * @example
   * ```ts
   * const { order: permutation, start, size } = order.locate(7);
   * ```
   */
  locate(step: number): { order: Int32Array; start: number; size: number } {
    this.checkStep(step);
    const epoch = Math.floor(step / this.stepsPerEpoch);
    const start = (step - epoch * this.stepsPerEpoch) * this.batchSize;
    const size = Math.min(this.batchSize, this.count - start);
    return { order: this.permutation(epoch), start, size };
  }

  private checkStep(step: number): void {
    if (!(Number.isSafeInteger(step) && step >= 0)) {
      invalidArgument(
        `step must be a non-negative integer, got ${step}.`,
        'Pass the training step counter (0, 1, 2, …).',
      );
    }
  }
}
