/**
 * Deterministic mini-batches: batch `step` is a pure function of `(seed, step)`, so training can
 * resume from a step number alone, and two runs with one seed see the same examples in the same
 * order.
 */

import { check, ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import * as tf from '@tensorflow/tfjs-core';
import type { Split } from './mnist';
import { BatchOrder } from './batch-order';

/**
 * Options of {@link batches}.
 *
 * @example
 * ```ts
 * const options: BatchOptions = { batchSize: 100, seed: 0, oneHot: true, classes: 10 };
 * ```
 */
export interface BatchOptions {
  /** Examples per batch; an integer in `1 … split.count`. */
  batchSize: number;
  /** Seed of the per-epoch shuffles; any safe integer. */
  seed: number;
  /** Drop the last, smaller batch of each epoch. Default `true`. */
  dropRemainder?: boolean;
  /** Deliver `y` as one-hot float32 `[b, classes]` instead of int32 labels `[b]`. Default `false`. */
  oneHot?: boolean;
  /**
   * Number of classes, for one-hot labels and label validation. Default: the largest label + 1;
   * pass `dataset.classes` so a split that lacks the last class still gets full-width one-hot rows.
   */
  classes?: number;
}

/**
 * One mini-batch. The caller owns both tensors and must dispose them.
 *
 * @example
 * ```ts
 * const { x, y }: Batch = source.batch(0);
 * x.dispose();
 * y.dispose();
 * ```
 */
export interface Batch {
  /** Inputs `[b, featureSize]`, float32. */
  x: tf.Tensor2D;
  /** Labels: int32 `[b]`, or float32 one-hot `[b, classes]`. */
  y: tf.Tensor;
}

function invalidArgument(message: string, fix: string): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix });
}

function checkSplit(split: Split): void {
  if (
    split === null ||
    typeof split !== 'object' ||
    !(split.images instanceof Float32Array) ||
    !Number.isInteger(split.count) ||
    !Number.isInteger(split.featureSize) ||
    split.count < 1 ||
    split.featureSize < 1 ||
    split.images.length !== split.count * split.featureSize ||
    split.labels.length !== split.count
  ) {
    invalidArgument(
      'The split is inconsistent: images must hold count × featureSize values and labels count values, count ≥ 1.',
      'Pass a split from loadMnist, loadIdxPair or splitValidation, or build one with matching lengths.',
    );
  }
}

function labelCount(labels: Uint8Array): number {
  let max = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > max) max = labels[i]!;
  return max + 1;
}

/** Builds the `{x, y}` tensors of the examples at `indices` (or `start … start + size - 1`). */
function makeBatch(
  split: Split,
  indices: Int32Array | null,
  start: number,
  size: number,
  oneHotClasses: number | null,
): Batch {
  const { featureSize } = split;
  const pixels = new Float32Array(size * featureSize);
  const labels = new Int32Array(size);
  if (indices === null) {
    pixels.set(split.images.subarray(start * featureSize, (start + size) * featureSize));
    for (let i = 0; i < size; i++) labels[i] = split.labels[start + i]!;
  } else {
    for (let i = 0; i < size; i++) {
      const source = indices[start + i]!;
      pixels.set(split.images.subarray(source * featureSize, (source + 1) * featureSize), i * featureSize);
      labels[i] = split.labels[source]!;
    }
  }
  const x = tf.tensor2d(pixels, [size, featureSize], 'float32');
  if (oneHotClasses === null) return { x, y: tf.tensor1d(labels, 'int32') };
  const hot = new Float32Array(size * oneHotClasses);
  for (let i = 0; i < size; i++) hot[i * oneHotClasses + labels[i]!] = 1;
  return { x, y: tf.tensor2d(hot, [size, oneHotClasses], 'float32') };
}

/**
 * Seeded, resumable mini-batches over a {@link Split}. Create with {@link batches}.
 *
 * The order is that of {@link BatchOrder}: epoch `e` visits the examples in the order
 * `seededPermutation(count, seed, e)`; step `s` belongs to epoch `floor(s / stepsPerEpoch)` and
 * takes the `s mod stepsPerEpoch`-th slice of that order.
 *
 * @example
 * ```ts
 * const source = new BatchSource(mnist.train, { batchSize: 100, seed: 1 });
 * for (let step = 0; step < 3 * source.stepsPerEpoch; step++) {
 *   const { x, y } = source.batch(step);
 *   // … train on x, y …
 *   x.dispose();
 *   y.dispose();
 * }
 * ```
 */
export class BatchSource {
  /** The split batches are drawn from. */
  readonly split: Split;
  /** Examples per full batch. */
  readonly batchSize: number;
  /** Seed of the per-epoch shuffles. */
  readonly seed: number;
  /** Whether the last, smaller batch of each epoch is dropped. */
  readonly dropRemainder: boolean;
  /** Whether `y` is one-hot. */
  readonly oneHot: boolean;
  /** Number of classes (width of one-hot rows). */
  readonly classes: number;
  /** Batches per epoch: `floor(count / batchSize)`, or `ceil` without `dropRemainder`. */
  readonly stepsPerEpoch: number;

  private readonly order: BatchOrder;

  /**
   * @param split - The examples.
   * @param options - Batch size, seed and label format.
   * @throws FinepruneError `INVALID_ARGUMENT` for a bad batch size, seed, classes or split;
   *   `INVALID_DATA` when a label is not below `classes`.
   */
  constructor(split: Split, options: BatchOptions) {
    checkSplit(split);
    const opts: Partial<BatchOptions> = options ?? {};
    const order = new BatchOrder(split.count, opts as BatchOptions);
    const classes = opts.classes ?? labelCount(split.labels);
    check(
      Number.isInteger(classes) && classes >= 1,
      `classes must be a positive integer, got ${classes}.`,
      'Pass dataset.classes, e.g. 10 for MNIST.',
    );
    for (let i = 0; i < split.count; i++) {
      if (split.labels[i]! >= classes) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_DATA,
          message: `Label ${split.labels[i]} at index ${i} is not below classes (${classes}).`,
          fix: 'Pass the right number of classes, or check the labels.',
          details: { index: i, label: split.labels[i], classes },
        });
      }
    }
    this.order = order;
    this.split = split;
    this.batchSize = order.batchSize;
    this.seed = order.seed;
    this.dropRemainder = order.dropRemainder;
    this.oneHot = opts.oneHot ?? false;
    this.classes = classes;
    this.stepsPerEpoch = order.stepsPerEpoch;
  }

  /**
   * The epoch a step belongs to.
   *
   * @example
   * ```ts
   * source.epochOf(source.stepsPerEpoch); // 1
   * ```
   */
  epochOf(step: number): number {
    return this.order.epochOf(step);
  }

  /**
   * The order in which epoch `epoch` visits the examples (a permutation of `0 … count - 1`).
   * The returned array is cached: do not modify it.
   *
   * @example
   * ```ts
   * const order = source.permutation(0); // Int32Array of length split.count
   * ```
   */
  permutation(epoch: number): Int32Array {
    return this.order.permutation(epoch);
  }

  /**
   * The example indices of batch `step`, in batch order (a fresh array).
   *
   * @example
   * ```ts
   * const first = source.indices(0); // Int32Array of batchSize example indices
   * ```
   */
  indices(step: number): Int32Array {
    return this.order.indices(step);
  }

  /**
   * Batch `step`: a pure function of `(seed, step)`. The caller disposes `x` and `y`.
   *
   * @param step - A non-negative integer; steps past the first epoch continue with new shuffles.
   * @returns `x` float32 `[b, featureSize]`, `y` int32 `[b]` (or float32 one-hot `[b, classes]`).
   * @throws FinepruneError `INVALID_ARGUMENT` for a negative or non-integer step.
   *
   * @example
   * ```ts
   * const { x, y } = source.batch(1234);
   * console.log(x.shape, y.dtype); // [100, 784] 'int32'
   * tf.dispose([x, y]);
   * ```
   */
  batch(step: number): Batch {
    const { order, start, size } = this.order.locate(step);
    return makeBatch(this.split, order, start, size, this.oneHot ? this.classes : null);
  }
}

/**
 * Seeded, resumable mini-batches over a split: `batches(split, opts).batch(step)` is a pure
 * function of `(seed, step)`. Every example appears exactly once per epoch (once at most with
 * `dropRemainder`, the default), in an order that changes from epoch to epoch.
 *
 * @param split - The examples.
 * @param options - `batchSize`, `seed`, `dropRemainder` (default `true`), `oneHot` (default `false`), `classes`.
 * @returns A {@link BatchSource}.
 * @throws FinepruneError `INVALID_ARGUMENT` for a batch size ≤ 0 or above the split's count, or a bad seed.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { batches, loadMnist } from '@fineprune/datasets';
 *
 * const mnist = await loadMnist();
 * const source = batches(mnist.train, { batchSize: 100, seed: 0, oneHot: true, classes: mnist.classes });
 * const { x, y } = source.batch(0); // x [100, 784], y [100, 10]
 * tf.dispose([x, y]);
 * ```
 */
export function batches(split: Split, options: BatchOptions): BatchSource {
  return new BatchSource(split, options);
}

/**
 * The whole split as two tensors, in order: `x` float32 `[count, featureSize]`, `y` int32 `[count]`.
 * The caller disposes them. For large splits prefer {@link evaluationBatches}.
 *
 * @example
 * ```ts
 * const { x, y } = toTensors(mnist.test); // [10000, 784], [10000]
 * tf.dispose([x, y]);
 * ```
 */
export function toTensors(split: Split): Batch {
  checkSplit(split);
  return makeBatch(split, null, 0, split.count, null);
}

/**
 * The split in order, in chunks of `batchSize` (the last chunk may be smaller), for evaluation.
 * Each chunk's tensors are allocated when the iterator reaches it; the caller disposes them.
 *
 * @param split - The examples.
 * @param batchSize - Examples per chunk; a positive integer.
 * @throws FinepruneError `INVALID_ARGUMENT` for a bad batch size.
 *
 * @example
 * ```ts
 * let correct = 0;
 * for (const { x, y } of evaluationBatches(mnist.test, 1000)) {
 *   const logits = model.predict(x) as tf.Tensor2D;
 *   correct += tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), y), 'int32')).dataSync()[0]!);
 *   tf.dispose([x, y, logits]);
 * }
 * ```
 */
export function evaluationBatches(split: Split, batchSize: number): IterableIterator<Batch> {
  checkSplit(split);
  check(
    Number.isInteger(batchSize) && batchSize >= 1,
    `batchSize must be a positive integer, got ${batchSize}.`,
    'Pass a chunk size such as 1000.',
  );
  return (function* () {
    for (let start = 0; start < split.count; start += batchSize) {
      yield makeBatch(split, null, start, Math.min(batchSize, split.count - start), null);
    }
  })();
}
