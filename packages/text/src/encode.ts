/**
 * Seeded, resumable mini-batches of encoded text examples, in the `Batch` format of
 * `@fineprune/core`.
 */

import type { Batch } from '@fineprune/core';
import { check, ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import * as tf from '@tensorflow/tfjs-core';
import { StreamDomain, streamRandom } from './streams';
import type { MlmBatch, TextBatch } from './batch-types';
import { type EncodedExamples, EncodedExamplesBuilder, encodeTruncated } from './encode-example';
import type { TextExample } from './tasks';
import type { BertTokenizer } from './tokenizer';

/**
 * Options of {@link encodeExamples}.
 *
 * @example
 * ```ts
 * const options: EncodeExamplesOptions = { maxLength: 128, batchSize: 32, seed: 0, shuffle: true };
 * ```
 */
export interface EncodeExamplesOptions {
  /** Sequence length L, `[CLS]`/`[SEP]` included; longer texts are truncated. Default 128. */
  maxLength?: number;
  /** Examples per batch; an integer in `1 … examples.length`. */
  batchSize: number;
  /** Seed of the per-epoch shuffles; any safe integer. Default 0. */
  seed?: number;
  /** Shuffle every epoch (default `true`); with `false`, `batch(i)` walks the examples in order. */
  shuffle?: boolean;
  /** Drop the last, smaller batch of each epoch in `batch(i)`. Default `true`. */
  dropRemainder?: boolean;
  /** Number of classes, for label validation. Default: the largest label + 1. */
  classes?: number;
}

/**
 * Disposes every tensor of a batch: a {@link TextBatch}, an {@link MlmBatch} or any `Batch` of
 * `@fineprune/core`.
 *
 * @example
 * ```ts
 * const batch = source.batch(0);
 * // … use it …
 * disposeBatch(batch);
 * ```
 */
export function disposeBatch(batch: Batch): void {
  const { x, y } = batch;
  const inputs = x instanceof tf.Tensor ? [x] : Array.isArray(x) ? x : Object.values(x);
  tf.dispose([...inputs, ...(Array.isArray(y) ? y : [y])]);
}

/**
 * Encoded examples with seeded, resumable batches. Create with {@link encodeExamples}.
 *
 * Epoch `e` visits the examples in a seeded permutation that depends only on `(seed, e)`; batch
 * `i` belongs to epoch `floor(i / batchesPerEpoch)`. So `batch(i)` is a pure function of
 * `(seed, i)` and training resumes from a step number alone.
 *
 * @example
 * ```ts
 * const source = encodeExamples(tokenizer, task.train, { maxLength: 128, batchSize: 32, seed: 0 });
 * for (let step = 0; step < 3 * source.batchesPerEpoch; step++) {
 *   const batch = source.batch(step);
 *   // … train …
 *   disposeBatch(batch);
 * }
 * ```
 */
export class TextBatchSource {
  /** Number of examples. */
  readonly size: number;
  /** Examples per full batch. */
  readonly batchSize: number;
  /** Sequence length L. */
  readonly maxLength: number;
  /** Seed of the shuffles. */
  readonly seed: number;
  /** Whether epochs are shuffled. */
  readonly shuffle: boolean;
  /** Whether `batch(i)` drops each epoch's last, smaller batch. */
  readonly dropRemainder: boolean;
  /** Batches per epoch: `floor(size / batchSize)`, or `ceil` without `dropRemainder`. */
  readonly batchesPerEpoch: number;
  /** Number of classes. */
  readonly classes: number;
  /** Labels in example order. */
  readonly labels: Int32Array;
  /** Examples truncated to `maxLength`. */
  readonly truncated: number;
  private readonly ids: Int32Array;
  private readonly types: Int32Array;
  private readonly mask: Int32Array;
  private readonly cache = new Map<number, Int32Array>();

  /** @internal Use {@link encodeExamples} or {@link batchesFromEncoded}. */
  constructor(encoded: EncodedExamples, options: EncodeExamplesOptions) {
    const opts: Partial<EncodeExamplesOptions> = options ?? {};
    const { batchSize = Number.NaN, seed = 0, shuffle = true, dropRemainder = true } = opts;
    const { maxLength, labels } = encoded;
    const n = labels.length;
    check(
      Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= n,
      `batchSize must be an integer in 1..${n} (the number of examples), got ${batchSize}.`,
      'Pass a positive batchSize no larger than the number of examples, e.g. 32.',
    );
    check(
      Number.isSafeInteger(seed),
      `seed must be a safe integer, got ${seed}.`,
      'Pass an integer seed such as 0.',
    );
    let maxLabel = -1;
    for (const label of labels) maxLabel = Math.max(maxLabel, label);
    const classes = opts.classes ?? maxLabel + 1;
    check(
      Number.isInteger(classes) && classes >= 1,
      `classes must be a positive integer, got ${classes}.`,
      'Pass task.labels.length.',
    );
    if (maxLabel >= classes) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_DATA,
        message: `A label (${maxLabel}) is not below classes (${classes}).`,
        fix: 'Pass classes: task.labels.length, or check the labels.',
        details: { maxLabel, classes },
      });
    }
    this.ids = encoded.inputIds;
    this.types = encoded.tokenTypeIds;
    this.mask = encoded.attentionMask;
    this.labels = labels;
    this.size = n;
    this.batchSize = batchSize;
    this.maxLength = maxLength;
    this.seed = seed;
    this.shuffle = shuffle;
    this.dropRemainder = dropRemainder;
    this.classes = classes;
    this.truncated = encoded.truncated ?? 0;
    this.batchesPerEpoch = dropRemainder ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  }

  /**
   * The encoded examples (copies), e.g. to save them and serve them later without the tokenizer
   * and the corpora ({@link batchesFromEncoded}).
   *
   * @example
   * ```ts
   * const encoded = source.encoded(); // { maxLength, inputIds, tokenTypeIds, attentionMask, labels, truncated }
   * const again = batchesFromEncoded(encoded, { batchSize: 32, seed: 0 }); // same batches as source
   * ```
   */
  encoded(): EncodedExamples {
    return {
      maxLength: this.maxLength,
      inputIds: this.ids.slice(),
      tokenTypeIds: this.types.slice(),
      attentionMask: this.mask.slice(),
      labels: this.labels.slice(),
      truncated: this.truncated,
    };
  }

  /**
   * The order in which epoch `epoch` visits the examples (cached; do not modify).
   *
   * @example
   * ```ts
   * source.permutation(0); // Int32Array of source.size example indices
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
   * @example
   * ```ts
   * source.indices(0); // Int32Array of batchSize indices
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

  /**
   * Batch `step`, a pure function of `(seed, step)`. The caller disposes its tensors
   * ({@link disposeBatch}).
   *
   * @throws FinepruneError `INVALID_ARGUMENT` for a negative or non-integer step.
   *
   * @example
   * ```ts
   * const { x, y } = source.batch(1234);
   * x.inputIds.shape; // [32, 128]
   * ```
   */
  batch(step: number): TextBatch {
    return this.gather(this.indices(step));
  }

  /**
   * All examples in order, in batches of `batchSize` (default: this source's) — the last one may
   * be smaller. Tensors are made when the iterator reaches them; the caller disposes them.
   *
   * @example
   * ```ts
   * for (const batch of devSource.evaluationBatches()) {
   *   // … accumulate accuracy …
   *   disposeBatch(batch);
   * }
   * ```
   */
  *evaluationBatches(batchSize: number = this.batchSize): IterableIterator<TextBatch> {
    check(
      Number.isInteger(batchSize) && batchSize >= 1,
      `batchSize must be a positive integer, got ${batchSize}.`,
      'Pass a chunk size such as 64.',
    );
    for (let start = 0; start < this.size; start += batchSize) {
      const end = Math.min(start + batchSize, this.size);
      yield this.gather(Int32Array.from({ length: end - start }, (_, i) => start + i));
    }
  }

  private gather(indices: Int32Array): TextBatch {
    const b = indices.length;
    const length = this.maxLength;
    const ids = new Int32Array(b * length);
    const types = new Int32Array(b * length);
    const mask = new Int32Array(b * length);
    const labels = new Int32Array(b);
    indices.forEach((source, row) => {
      const from = source * length;
      ids.set(this.ids.subarray(from, from + length), row * length);
      types.set(this.types.subarray(from, from + length), row * length);
      mask.set(this.mask.subarray(from, from + length), row * length);
      labels[row] = this.labels[source]!;
    });
    return {
      x: {
        inputIds: tf.tensor2d(ids, [b, length], 'int32'),
        tokenTypeIds: tf.tensor2d(types, [b, length], 'int32'),
        attentionMask: tf.tensor2d(mask, [b, length], 'int32'),
      },
      y: tf.tensor1d(labels, 'int32'),
    };
  }
}

/**
 * Encodes examples once (`[CLS] text [SEP]`, truncated to `maxLength`, padded with `[PAD]`) and
 * serves them as seeded, resumable batches: `batch(i)` (shuffled per epoch, deterministic in
 * `(seed, i)`) and `evaluationBatches()` (in order, the last batch may be short). Batches are
 * `Batch`es of `@fineprune/core`: `x = { inputIds, tokenTypeIds, attentionMask }` int32 `[B, L]`,
 * `y` int32 labels `[B]`.
 *
 * @param tokenizer - Encodes the texts.
 * @param examples - Labelled texts (a task's `train` or `dev`).
 * @param options - `maxLength` (128), `batchSize`, `seed` (0), `shuffle` (true), `dropRemainder`
 *   (true), `classes`.
 * @returns A {@link TextBatchSource}.
 * @throws FinepruneError `INVALID_ARGUMENT` for bad options or examples; `INVALID_DATA` for a label
 *   that is not an integer in `0 … classes − 1`.
 *
 * @example
 * ```ts
 * import { spamTask } from '@fineprune/corpora';
 * import { createBertTokenizer, disposeBatch, encodeExamples } from '@fineprune/text';
 *
 * const tokenizer = createBertTokenizer();
 * const task = spamTask({ seed: 0 });
 * const train = encodeExamples(tokenizer, task.train, { maxLength: 128, batchSize: 32, seed: 0, shuffle: true });
 * const batch = train.batch(0); // x.inputIds int32 [32, 128], y int32 [32]
 * disposeBatch(batch);
 * ```
 */
export function encodeExamples(
  tokenizer: BertTokenizer,
  examples: readonly TextExample[],
  options: EncodeExamplesOptions,
): TextBatchSource {
  return new TextBatchSource(encodeTexts(tokenizer, examples, options?.maxLength ?? 128), options);
}

/** Tokenizes labelled texts into `[n, maxLength]` arrays, checking texts and labels. */
function encodeTexts(
  tokenizer: BertTokenizer,
  examples: readonly TextExample[],
  maxLength: number,
): EncodedExamples {
  check(
    Array.isArray(examples) && examples.length > 0,
    'examples must be a non-empty array of { text, label, source }.',
    'Pass task.train or task.dev.',
  );
  check(
    Number.isInteger(maxLength) && maxLength >= 2,
    `maxLength must be an integer of at least 2, got ${maxLength}.`,
    'Pass the encoder length, e.g. 128.',
  );
  for (const example of examples) {
    check(
      example !== null && typeof example === 'object' && typeof example.text === 'string',
      'Each example needs a string text.',
      'Pass TextExample objects { text, label, source }.',
    );
    if (!(Number.isInteger(example.label) && example.label >= 0)) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_DATA,
        message: `Example from ${example.source} has label ${example.label}, not a non-negative integer.`,
        fix: 'Labels are indices into the task labels: 0, 1, 2, …',
      });
    }
  }
  const builder = new EncodedExamplesBuilder(maxLength, examples.length);
  for (const example of examples)
    builder.add(encodeTruncated(tokenizer, example.text, { maxLength }), example.label);
  return builder.build();
}

/**
 * Serves examples that were encoded before (by {@link TextBatchSource.encoded}, perhaps saved to a
 * file and read back) as the same seeded, resumable batches as {@link encodeExamples}, without the
 * tokenizer or the corpora. With the same options the batches are identical.
 *
 * @param encoded - The arrays (kept, not copied: do not modify them afterwards).
 * @param options - As {@link encodeExamples}; `maxLength`, if given, must equal `encoded.maxLength`.
 * @returns A {@link TextBatchSource}.
 * @throws FinepruneError `INVALID_DATA` when the arrays' lengths disagree with `maxLength` and the
 *   number of labels, or hold values out of range; `INVALID_ARGUMENT` for bad options.
 *
 * @example
 * ```ts
 * import { spamTask } from '@fineprune/corpora';
 * import { batchesFromEncoded, createBertTokenizer, encodeExamples } from '@fineprune/text';
 *
 * const train = encodeExamples(createBertTokenizer(), spamTask({ seed: 0 }).train, { batchSize: 32 });
 * const saved = train.encoded(); // typed arrays: write them anywhere
 * const again = batchesFromEncoded(saved, { batchSize: 32 }); // again.batch(i) equals train.batch(i)
 * ```
 */
export function batchesFromEncoded(
  encoded: EncodedExamples,
  options: EncodeExamplesOptions,
): TextBatchSource {
  const invalid = (message: string, details?: Record<string, unknown>): never => {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_DATA,
      message: `Encoded examples: ${message}`,
      fix: 'Pass the object that TextBatchSource.encoded() returned, read back unchanged.',
      details,
    });
  };
  if (encoded === null || typeof encoded !== 'object') invalid('expected an object of typed arrays.');
  const { maxLength, inputIds, tokenTypeIds, attentionMask, labels } = encoded;
  if (!(Number.isInteger(maxLength) && maxLength >= 2))
    invalid(`maxLength must be an integer ≥ 2, got ${maxLength}.`);
  for (const [name, array] of Object.entries({ inputIds, tokenTypeIds, attentionMask, labels })) {
    if (!(array instanceof Int32Array)) invalid(`${name} must be an Int32Array.`);
  }
  const n = labels.length;
  if (n === 0) invalid('there are no examples.');
  for (const [name, array] of Object.entries({ inputIds, tokenTypeIds, attentionMask })) {
    if (array.length !== n * maxLength) {
      invalid(
        `${name} has ${array.length} values, expected ${n} examples × ${maxLength} = ${n * maxLength}.`,
        {
          name,
          length: array.length,
          expected: n * maxLength,
        },
      );
    }
  }
  if (options?.maxLength !== undefined && options.maxLength !== maxLength) {
    invalid(`they were encoded with maxLength ${maxLength}, but options ask for ${options.maxLength}.`);
  }
  for (let i = 0; i < inputIds.length; i++) {
    if (inputIds[i]! < 0) invalid(`inputIds[${i}] is ${inputIds[i]}, not a token id.`);
    if (tokenTypeIds[i]! >>> 1 !== 0) invalid(`tokenTypeIds[${i}] is ${tokenTypeIds[i]}, not 0 or 1.`);
    if (attentionMask[i]! >>> 1 !== 0) invalid(`attentionMask[${i}] is ${attentionMask[i]}, not 0 or 1.`);
  }
  for (let i = 0; i < n; i++) if (labels[i]! < 0) invalid(`labels[${i}] is ${labels[i]}, not a label index.`);
  return new TextBatchSource(encoded, options);
}
