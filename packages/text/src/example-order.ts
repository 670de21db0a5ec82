/**
 * The order in which seeded, resumable batches visit examples, apart from where the examples are
 * kept: {@link TextBatchSource} serves it from encoded arrays, a caller that streams its examples
 * from a file serves the same order by reading only the rows of each batch.
 */

import * as tf from '@tensorflow/tfjs-core';
import { check } from '@fineprune/tensor/errors';
import type { TextBatch } from './batch-types';
import { type EncodedExamples, EncodedExamplesBuilder, encodeTruncated } from './encode-example';
import { StreamDomain, streamRandom } from './streams';
import type { BertTokenizer } from './tokenizer';

/**
 * Options of {@link ExampleOrder}.
 *
 * @example
 * ```ts
 * const options: ExampleOrderOptions = { batchSize: 32, seed: 0, shuffle: true, dropRemainder: true };
 * ```
 */
export interface ExampleOrderOptions {
  /** Examples per batch; an integer in `1 … size`. */
  batchSize: number;
  /** Seed of the per-epoch shuffles; any safe integer. Default 0. */
  seed?: number;
  /** Shuffle every epoch (default `true`); with `false`, batch `i` walks the examples in order. */
  shuffle?: boolean;
  /** Drop the last, smaller batch of each epoch. Default `true`. */
  dropRemainder?: boolean;
}

/**
 * Seeded, resumable batch order over `size` examples: epoch `e` visits them in a permutation that
 * depends only on `(seed, e)`, batch `i` belongs to epoch `floor(i / batchesPerEpoch)`. So the
 * examples of batch `i` are a pure function of `(seed, i)`, and a source that reads them lazily
 * serves exactly the batches of {@link TextBatchSource} with the same options. Only the two most
 * recent epochs' permutations are kept (4 bytes per example each).
 *
 * @example
 * ```ts
 * const order = new ExampleOrder(1000, { batchSize: 32, seed: 0 });
 * order.indices(0); // Int32Array of the 32 example indices of batch 0
 * ```
 */
export class ExampleOrder {
  /** Number of examples. */
  readonly size: number;
  /** Examples per full batch. */
  readonly batchSize: number;
  /** Seed of the shuffles. */
  readonly seed: number;
  /** Whether epochs are shuffled. */
  readonly shuffle: boolean;
  /** Whether each epoch's last, smaller batch is dropped. */
  readonly dropRemainder: boolean;
  /** Batches per epoch: `floor(size / batchSize)`, or `ceil` without `dropRemainder`. */
  readonly batchesPerEpoch: number;
  private readonly cache = new Map<number, Int32Array>();

  /**
   * @throws FinepruneError `INVALID_ARGUMENT` for a batch size outside `1 … size` or a seed that is
   *   not a safe integer
   */
  constructor(size: number, options: ExampleOrderOptions) {
    const opts: Partial<ExampleOrderOptions> = options ?? {};
    const { batchSize = Number.NaN, seed = 0, shuffle = true, dropRemainder = true } = opts;
    check(
      Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= size,
      `batchSize must be an integer in 1..${size} (the number of examples), got ${batchSize}.`,
      'Pass a positive batchSize no larger than the number of examples, e.g. 32.',
    );
    check(
      Number.isSafeInteger(seed),
      `seed must be a safe integer, got ${seed}.`,
      'Pass an integer seed such as 0.',
    );
    this.size = size;
    this.batchSize = batchSize;
    this.seed = seed;
    this.shuffle = shuffle;
    this.dropRemainder = dropRemainder;
    this.batchesPerEpoch = dropRemainder ? Math.floor(size / batchSize) : Math.ceil(size / batchSize);
  }

  /**
   * The order in which epoch `epoch` visits the examples (cached; do not modify).
   *
   * @example
   * ```ts
   * order.permutation(0); // Int32Array of order.size example indices
   * ```
   */
  permutation(epoch: number): Int32Array {
    check(
      Number.isSafeInteger(epoch) && epoch >= 0,
      `epoch must be a non-negative integer, got ${epoch}.`,
      'Pass 0, 1, 2, …',
    );
    let order = this.cache.get(epoch);
    if (order === undefined) {
      order = this.shuffle
        ? streamRandom(this.seed, StreamDomain.exampleOrder, epoch).permutation(this.size)
        : Int32Array.from({ length: this.size }, (_, i) => i);
      if (this.cache.size >= 2) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(epoch, order);
    }
    return order;
  }

  /**
   * The example indices of batch `step` (a fresh array).
   *
   * @throws FinepruneError `INVALID_ARGUMENT` for a negative or non-integer step
   *
   * @example
   * ```ts
   * order.indices(0); // Int32Array of batchSize indices
   * ```
   */
  indices(step: number): Int32Array {
    check(
      Number.isSafeInteger(step) && step >= 0,
      `step must be a non-negative integer, got ${step}.`,
      'Pass the training step counter (0, 1, 2, …).',
    );
    const epoch = Math.floor(step / this.batchesPerEpoch);
    const start = (step - epoch * this.batchesPerEpoch) * this.batchSize;
    const end = Math.min(start + this.batchSize, this.size);
    return this.permutation(epoch).slice(start, end);
  }
}

/**
 * The tensors of encoded examples, all rows as one batch: `x` the three int32 `[n, L]` inputs, `y`
 * int32 labels `[n]`. The caller disposes them.
 *
 * @example
 * ```ts
 * const batch = textBatchOf(builder.build()); // x.inputIds [n, L]
 * ```
 */
export function textBatchOf(encoded: EncodedExamples): TextBatch {
  const count = encoded.labels.length;
  const shape: [number, number] = [count, encoded.maxLength];
  return {
    x: {
      inputIds: tf.tensor2d(encoded.inputIds, shape, 'int32'),
      tokenTypeIds: tf.tensor2d(encoded.tokenTypeIds, shape, 'int32'),
      attentionMask: tf.tensor2d(encoded.attentionMask, shape, 'int32'),
    },
    y: tf.tensor1d(encoded.labels, 'int32'),
  };
}

/**
 * One labelled text to encode now: a text (and optionally the second text of a pair) and its label
 * index.
 *
 * @example
 * ```ts
 * const row: LabelledText = { text: 'Win a prize!', label: 1 };
 * ```
 */
export interface LabelledText {
  text: string;
  pair?: string;
  label: number;
}

/**
 * Encodes a few examples (one batch's worth) with {@link encodeTruncated} at `maxLength` and returns
 * their tensors, as {@link TextBatchSource} would serve the same examples. For sources that keep
 * only where their examples are and encode each batch when it is asked for; the caller disposes the
 * tensors.
 *
 * @throws FinepruneError `INVALID_ARGUMENT` for a `maxLength` too small for the special tokens
 *
 * @example
 * ```ts
 * const batch = encodeBatch(createBertTokenizer(), [{ text: 'hello', label: 0 }], 8); // x.inputIds [1, 8]
 * ```
 */
export function encodeBatch(
  tokenizer: BertTokenizer,
  examples: readonly LabelledText[],
  maxLength: number,
): TextBatch {
  const builder = new EncodedExamplesBuilder(maxLength, examples.length);
  for (const example of examples) {
    const encoded = encodeTruncated(tokenizer, example.text, {
      maxLength,
      ...(example.pair !== undefined ? { pair: example.pair } : {}),
    });
    builder.add(encoded, example.label);
  }
  return textBatchOf(builder.build());
}
