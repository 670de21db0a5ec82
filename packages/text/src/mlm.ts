/**
 * Masked-language-model pretraining data: a corpus cut into fixed-length sequences, and seeded
 * batches masked with BERT's recipe (Devlin et al. 2019, Sec. 3.1 "Task #1: Masked LM").
 */

import { check } from '@fineprune/tensor/errors';
import * as tf from '@tensorflow/tfjs-core';
import type { MlmBatch } from './batch-types';
import { randomBelow, StreamDomain, streamRandom } from './streams';
import type { BertTokenizer, SpecialIds } from './tokenizer';

/**
 * Sequences of one side of an {@link MlmCorpus}: row `i` is `ids[i·L … (i+1)·L − 1]`,
 * `[CLS] … [SEP]` then `[PAD]`s, of `lengths[i]` real tokens.
 *
 * @example
 * ```ts
 * const first = corpus.train.ids.subarray(0, corpus.sequenceLength);
 * ```
 */
export interface MlmSplit {
  /** Number of sequences. */
  readonly count: number;
  /** Token ids, `count × sequenceLength`. */
  readonly ids: Int32Array;
  /** Real tokens per sequence (`[CLS]` and `[SEP]` included). */
  readonly lengths: Int32Array;
}

/**
 * A tokenized corpus cut into sequences, with a held-out validation share. Create with
 * {@link mlmCorpus}.
 *
 * @example
 * ```ts
 * console.log(corpus.wordpieces, corpus.train.count, corpus.validation.count);
 * ```
 */
export interface MlmCorpus {
  /** Sequence length L, `[CLS]` and `[SEP]` included. */
  readonly sequenceLength: number;
  /** Wordpieces in the whole stream. */
  readonly wordpieces: number;
  /** Number of documents tokenized. */
  readonly documents: number;
  /** Training sequences. */
  readonly train: MlmSplit;
  /** Held-out sequences (a seeded share). */
  readonly validation: MlmSplit;
  /** Indices (in stream order) of the held-out sequences, ascending. */
  readonly validationIndices: Int32Array;
  /** The tokenizer's special ids. */
  readonly specialIds: SpecialIds;
  /** Vocabulary size. */
  readonly vocabSize: number;
  /** 1 for reserved ids (specials and `[unusedN]`), which are never chosen for prediction or as random replacements. */
  readonly reserved: Uint8Array;
  /** The ids a random replacement is drawn from: every id that is not reserved. */
  readonly replacementIds: Int32Array;
}

/**
 * Options of {@link mlmCorpus}.
 *
 * @example
 * ```ts
 * const options: MlmCorpusOptions = { sequenceLength: 128, validationFraction: 0.02, seed: 0 };
 * ```
 */
export interface MlmCorpusOptions {
  /** L, `[CLS]`/`[SEP]` included (each sequence carries L − 2 wordpieces). Default 128. */
  sequenceLength?: number;
  /** Share of sequences held out for validation, in [0, 1). Default 0.02. */
  validationFraction?: number;
  /** Seed of the hold-out choice. Default 0. */
  seed?: number;
}

/**
 * Tokenizes documents into one stream of wordpieces (in the given order, **crossing document
 * boundaries**: a sequence may end one document and start the next, with no separator) and cuts it
 * into consecutive sequences of `sequenceLength − 2` wordpieces wrapped in `[CLS] … [SEP]`; the last,
 * shorter sequence is padded with `[PAD]`. A seeded `round(validationFraction · count)` of the
 * sequences (at least 1 when there are 2 or more and the fraction is positive) is held out.
 *
 * @param tokenizer - Tokenizes the documents.
 * @param documents - Texts, or objects with a `text` (e.g. from {@link loadSotu}).
 * @param options - `sequenceLength` (128), `validationFraction` (0.02), `seed` (0).
 * @returns An {@link MlmCorpus}.
 * @throws FinepruneError `INVALID_ARGUMENT` for bad options, a document without text, or a corpus
 *   without a single wordpiece.
 *
 * @example
 * ```ts
 * import { loadMobyDick } from '@fineprune/corpora';
 * import { createBertTokenizer, mlmCorpus } from '@fineprune/text';
 *
 * const corpus = mlmCorpus(createBertTokenizer(), loadMobyDick(), { sequenceLength: 128 });
 * console.log(corpus.train.count, corpus.validation.count); // ≈2,700 and ≈55 sequences
 * ```
 */
export function mlmCorpus(
  tokenizer: BertTokenizer,
  documents: readonly (string | { readonly text: string })[],
  options: MlmCorpusOptions = {},
): MlmCorpus {
  const { sequenceLength = 128, validationFraction = 0.02, seed = 0 } = options ?? {};
  check(
    Number.isInteger(sequenceLength) && sequenceLength >= 3,
    `sequenceLength must be an integer of at least 3, got ${sequenceLength}.`,
    'Pass the encoder length, e.g. 128.',
  );
  check(
    typeof validationFraction === 'number' && validationFraction >= 0 && validationFraction < 1,
    `validationFraction must be in [0, 1), got ${validationFraction}.`,
    'Pass a share such as 0.02.',
  );
  check(
    Number.isSafeInteger(seed),
    `seed must be a safe integer, got ${seed}.`,
    'Pass an integer seed such as 0.',
  );
  check(
    Array.isArray(documents),
    'documents must be an array.',
    'Pass an array of texts or { text } objects.',
  );
  const pieces: Int32Array[] = [];
  let total = 0;
  for (const doc of documents) {
    const text = typeof doc === 'string' ? doc : doc?.text;
    check(
      typeof text === 'string',
      'Every document must be a string or have a string text.',
      'Pass { text } objects.',
    );
    const ids = tokenizer.tokenIds(text);
    pieces.push(ids);
    total += ids.length;
  }
  check(total > 0, 'The documents hold no wordpiece at all.', 'Pass documents with text.');
  const { pad, cls, sep } = tokenizer.specialIds;
  const L = sequenceLength;
  const budget = L - 2;
  const count = Math.ceil(total / budget);
  const ids = new Int32Array(count * L).fill(pad);
  const lengths = new Int32Array(count);
  // Walk the stream once, writing wordpieces into rows of `budget`.
  let row = 0;
  let used = 0;
  for (const doc of pieces) {
    let at = 0;
    while (at < doc.length) {
      const take = Math.min(budget - used, doc.length - at);
      ids.set(doc.subarray(at, at + take), row * L + 1 + used);
      used += take;
      at += take;
      if (used === budget) {
        row++;
        used = 0;
      }
    }
  }
  for (let r = 0; r < count; r++) {
    const real = r < count - 1 || total % budget === 0 ? budget : total % budget;
    ids[r * L] = cls;
    ids[r * L + 1 + real] = sep;
    lengths[r] = real + 2;
  }
  const held =
    validationFraction > 0 && count >= 2
      ? Math.min(count - 1, Math.max(1, Math.round(validationFraction * count)))
      : 0;
  const order = streamRandom(seed, StreamDomain.mlmValidation, 0).permutation(count);
  const validationIndices = order.slice(0, held).sort();
  const isHeld = new Uint8Array(count);
  for (const index of validationIndices) isHeld[index] = 1;
  const take = (keep: 0 | 1): MlmSplit => {
    const rows: number[] = [];
    for (let r = 0; r < count; r++) if (isHeld[r] === keep) rows.push(r);
    const out = new Int32Array(rows.length * L);
    const outLengths = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      out.set(ids.subarray(r * L, (r + 1) * L), i * L);
      outLengths[i] = lengths[r]!;
    });
    return { count: rows.length, ids: out, lengths: outLengths };
  };
  const reserved = new Uint8Array(tokenizer.vocabSize);
  const replacement: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    if (tokenizer.isSpecialId(id)) reserved[id] = 1;
    else replacement.push(id);
  }
  return {
    sequenceLength: L,
    wordpieces: total,
    documents: documents.length,
    train: take(0),
    validation: take(1),
    validationIndices,
    specialIds: tokenizer.specialIds,
    vocabSize: tokenizer.vocabSize,
    reserved,
    replacementIds: Int32Array.from(replacement),
  };
}

/**
 * Options of {@link mlmBatches}.
 *
 * @example
 * ```ts
 * const options: MlmBatchOptions = { batchSize: 32, maskProbability: 0.15, maxPredictions: 20, seed: 0 };
 * ```
 */
export interface MlmBatchOptions {
  /** Sequences per batch; an integer in `1 … split count`. */
  batchSize: number;
  /** Share of candidate positions to predict. Default 0.15. */
  maskProbability?: number;
  /** P, the most predictions per sequence (the width of `y`). Default 20. */
  maxPredictions?: number;
  /** Seed of the epoch orders and of the masking. Default 0. */
  seed?: number;
  /** Which side of the corpus. Default `'train'`. */
  split?: 'train' | 'validation';
  /** Drop the last, smaller batch of each epoch in `batch(i)`. Default `true`. */
  dropRemainder?: boolean;
}

/**
 * The masking of one batch as plain arrays (what {@link MlmBatchSource.maskedArrays} returns).
 *
 * @example
 * ```ts
 * const { inputIds, maskedPositions, maskedWeights }: MlmArrays = source.maskedArrays(0);
 * ```
 */
export interface MlmArrays {
  /** Corrupted input ids, `B × L`. */
  readonly inputIds: Int32Array;
  /** 1 on real tokens, `B × L`. */
  readonly attentionMask: Int32Array;
  /** Positions to predict, `B × P` (0 on padding entries). */
  readonly maskedPositions: Int32Array;
  /** Original ids at those positions, `B × P` (0 on padding). */
  readonly maskedIds: Int32Array;
  /** 1 for real predictions, 0 for padding, `B × P`. */
  readonly maskedWeights: Float32Array;
  /** Rows (sequence indices of the split) in the batch. */
  readonly rows: Int32Array;
}

/**
 * Seeded masked-LM batches over one side of an {@link MlmCorpus}. Create with {@link mlmBatches}.
 *
 * @example
 * ```ts
 * const source = mlmBatches(corpus, { batchSize: 32, seed: 0 });
 * const batch = source.batch(0);
 * disposeBatch(batch);
 * ```
 */
export class MlmBatchSource {
  /** Sequences in the split. */
  readonly size: number;
  /** Sequences per full batch. */
  readonly batchSize: number;
  /** Batches per epoch: `floor(size / batchSize)`, or `ceil` without `dropRemainder`. */
  readonly batchesPerEpoch: number;
  /** Sequence length L. */
  readonly sequenceLength: number;
  /** P. */
  readonly maxPredictions: number;
  /** Share of candidate positions predicted. */
  readonly maskProbability: number;
  /** Seed. */
  readonly seed: number;
  private readonly corpus: MlmCorpus;
  private readonly data: MlmSplit;
  private readonly cache = new Map<number, Int32Array>();

  /** @internal Use {@link mlmBatches}. */
  constructor(corpus: MlmCorpus, options: MlmBatchOptions) {
    const opts: Partial<MlmBatchOptions> = options ?? {};
    const {
      batchSize = Number.NaN,
      maskProbability = 0.15,
      maxPredictions = 20,
      seed = 0,
      split = 'train',
      dropRemainder = true,
    } = opts;
    check(
      corpus !== null &&
        typeof corpus === 'object' &&
        corpus.train !== undefined &&
        corpus.validation !== undefined,
      'corpus must be an MlmCorpus.',
      'Pass the result of mlmCorpus().',
    );
    check(
      split === 'train' || split === 'validation',
      `split must be 'train' or 'validation', got ${split}.`,
      "Pass 'train' or 'validation'.",
    );
    const data = corpus[split];
    check(
      data.count > 0,
      `The ${split} split holds no sequence.`,
      'Use a larger corpus or a positive validationFraction.',
    );
    check(
      Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= data.count,
      `batchSize must be an integer in 1..${data.count} (the ${split} sequences), got ${batchSize}.`,
      'Pass a positive batchSize no larger than the split, e.g. 32.',
    );
    check(
      typeof maskProbability === 'number' && maskProbability > 0 && maskProbability <= 1,
      `maskProbability must be in (0, 1], got ${maskProbability}.`,
      'Pass 0.15 (BERT).',
    );
    check(
      Number.isInteger(maxPredictions) && maxPredictions >= 1,
      `maxPredictions must be a positive integer, got ${maxPredictions}.`,
      'Pass 20 (BERT at length 128).',
    );
    check(
      Number.isSafeInteger(seed),
      `seed must be a safe integer, got ${seed}.`,
      'Pass an integer seed such as 0.',
    );
    this.corpus = corpus;
    this.data = data;
    this.size = data.count;
    this.batchSize = batchSize;
    this.sequenceLength = corpus.sequenceLength;
    this.maxPredictions = maxPredictions;
    this.maskProbability = maskProbability;
    this.seed = seed;
    this.batchesPerEpoch = dropRemainder
      ? Math.floor(data.count / batchSize)
      : Math.ceil(data.count / batchSize);
  }

  /**
   * The rows of batch `step` (sequence indices of the split): epoch `floor(step / batchesPerEpoch)`
   * walks a permutation seeded by `(seed, epoch)`.
   *
   * @example
   * ```ts
   * source.rows(0); // Int32Array of batchSize row indices
   * ```
   */
  rows(step: number): Int32Array {
    check(
      Number.isSafeInteger(step) && step >= 0,
      `step must be a non-negative integer, got ${step}.`,
      'Pass the training step counter (0, 1, 2, …).',
    );
    const epoch = Math.floor(step / this.batchesPerEpoch);
    let order = this.cache.get(epoch);
    if (order === undefined) {
      order = streamRandom(this.seed, StreamDomain.mlmOrder, epoch).permutation(this.size);
      if (this.cache.size >= 2) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(epoch, order);
    }
    const start = (step - epoch * this.batchesPerEpoch) * this.batchSize;
    return order.slice(start, Math.min(start + this.batchSize, this.size));
  }

  /**
   * Batch `step` as plain arrays: a pure function of `(seed, step)`.
   *
   * @example
   * ```ts
   * const { maskedWeights } = source.maskedArrays(0);
   * ```
   */
  maskedArrays(step: number): MlmArrays {
    return this.mask(this.rows(step), streamRandom(this.seed, StreamDomain.mlmMasking, step));
  }

  /**
   * Batch `step`: sequences chosen by {@link rows}, masked by BERT's recipe with randomness drawn
   * from `(seed, step)` alone, so the same seed and step give the same batch. The caller disposes
   * the tensors.
   *
   * @example
   * ```ts
   * const { x, y } = source.batch(7);
   * x.inputIds.shape; // [32, 128]
   * y[0].shape; // [32, 20]
   * ```
   */
  batch(step: number): MlmBatch {
    return this.toTensors(this.maskedArrays(step));
  }

  /**
   * Every sequence of the split once, in order, in batches of `batchSize` (the last may be
   * smaller), each masked with randomness from `(seed, batch index)` — the same masks at every
   * evaluation, so validation losses are comparable.
   *
   * @example
   * ```ts
   * for (const batch of validation.evaluationBatches()) {
   *   // … masked-LM loss …
   *   disposeBatch(batch);
   * }
   * ```
   */
  *evaluationBatches(batchSize: number = this.batchSize): IterableIterator<MlmBatch> {
    check(
      Number.isInteger(batchSize) && batchSize >= 1,
      `batchSize must be a positive integer, got ${batchSize}.`,
      'Pass a chunk size such as 64.',
    );
    for (let start = 0, index = 0; start < this.size; start += batchSize, index++) {
      const rows = Int32Array.from({ length: Math.min(batchSize, this.size - start) }, (_, i) => start + i);
      yield this.toTensors(
        this.mask(rows, streamRandom(this.seed, StreamDomain.mlmEvaluationMasking, index)),
      );
    }
  }

  /**
   * BERT's masking (create_pretraining_data.py of google-research/bert): candidates are the real,
   * non-reserved positions; `k = min(P, max(1, round(n·p)))` of the `n` candidates are chosen
   * uniformly; each chosen token becomes `[MASK]` with probability 0.8, a random non-reserved
   * token with 0.1, and stays with 0.1. Positions are listed in ascending order.
   */
  private mask(rows: Int32Array, random: ReturnType<typeof streamRandom>): MlmArrays {
    const L = this.sequenceLength;
    const P = this.maxPredictions;
    const b = rows.length;
    const { reserved, replacementIds, specialIds } = this.corpus;
    const inputIds = new Int32Array(b * L);
    const attentionMask = new Int32Array(b * L);
    const maskedPositions = new Int32Array(b * P);
    const maskedIds = new Int32Array(b * P);
    const maskedWeights = new Float32Array(b * P);
    const candidates = new Int32Array(L);
    for (let r = 0; r < b; r++) {
      const row = rows[r]!;
      const source = this.data.ids.subarray(row * L, (row + 1) * L);
      const length = this.data.lengths[row]!;
      inputIds.set(source, r * L);
      attentionMask.fill(1, r * L, r * L + length);
      let n = 0;
      for (let t = 0; t < length; t++) if (reserved[source[t]!] === 0) candidates[n++] = t;
      if (n === 0) continue;
      const k = Math.min(P, Math.max(1, Math.round(n * this.maskProbability)));
      // Partial Fisher–Yates: the first k candidates become a uniform random k-subset.
      for (let i = 0; i < k; i++) {
        const j = i + randomBelow(random, n - i);
        const swap = candidates[i]!;
        candidates[i] = candidates[j]!;
        candidates[j] = swap;
      }
      const chosen = candidates.subarray(0, k).sort();
      for (let i = 0; i < k; i++) {
        const position = chosen[i]!;
        const original = source[position]!;
        const u = random.next();
        // 80% [MASK], 10% random token, 10% unchanged (Devlin et al. 2019, Sec. 3.1).
        let replaced = original;
        if (u < 0.8) replaced = specialIds.mask;
        else if (u < 0.9) replaced = replacementIds[randomBelow(random, replacementIds.length)]!;
        inputIds[r * L + position] = replaced;
        maskedPositions[r * P + i] = position;
        maskedIds[r * P + i] = original;
        maskedWeights[r * P + i] = 1;
      }
    }
    return { inputIds, attentionMask, maskedPositions, maskedIds, maskedWeights, rows };
  }

  private toTensors(arrays: MlmArrays): MlmBatch {
    const b = arrays.rows.length;
    const L = this.sequenceLength;
    const P = this.maxPredictions;
    return {
      x: {
        inputIds: tf.tensor2d(arrays.inputIds, [b, L], 'int32'),
        tokenTypeIds: tf.zeros([b, L], 'int32') as tf.Tensor2D,
        attentionMask: tf.tensor2d(arrays.attentionMask, [b, L], 'int32'),
      },
      y: [
        tf.tensor2d(arrays.maskedPositions, [b, P], 'int32'),
        tf.tensor2d(arrays.maskedIds, [b, P], 'int32'),
        tf.tensor2d(arrays.maskedWeights, [b, P], 'float32'),
      ],
    };
  }
}

/**
 * Seeded masked-LM batches (BERT's recipe, Devlin et al. 2019 Sec. 3.1): in each sequence, 15%
 * of the real, non-reserved positions (at most `maxPredictions`, at least 1) are chosen; of those
 * 80% become `[MASK]`, 10% a random non-reserved token, 10% stay. `batch(i)` is deterministic in
 * `(seed, i)`. Batch: `x = { inputIds, tokenTypeIds (zeros), attentionMask }` int32 `[B, L]`,
 * `y = [maskedPositions int32 [B, P], maskedIds int32 [B, P], maskedWeights float32 [B, P]]`,
 * P = `maxPredictions`, padded entries position 0 / id 0 / weight 0.
 *
 * @param corpus - From {@link mlmCorpus}.
 * @param options - `batchSize`, `maskProbability` (0.15), `maxPredictions` (20), `seed` (0),
 *   `split` ('train'), `dropRemainder` (true).
 * @returns An {@link MlmBatchSource}.
 * @throws FinepruneError `INVALID_ARGUMENT` for bad options or an empty split.
 *
 * @example
 * ```ts
 * import { loadMobyDick } from '@fineprune/corpora';
 * import { createBertTokenizer, disposeBatch, mlmBatches, mlmCorpus } from '@fineprune/text';
 *
 * const corpus = mlmCorpus(createBertTokenizer(), loadMobyDick(), { sequenceLength: 128 });
 * const source = mlmBatches(corpus, { batchSize: 32, maskProbability: 0.15, maxPredictions: 20, seed: 0 });
 * const batch = source.batch(0);
 * const [positions, ids, weights] = batch.y; // int32 [32, 20], int32 [32, 20], float32 [32, 20]
 * disposeBatch(batch);
 * ```
 */
export function mlmBatches(corpus: MlmCorpus, options: MlmBatchOptions): MlmBatchSource {
  return new MlmBatchSource(corpus, options);
}
