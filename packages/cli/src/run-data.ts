import {
  type Batch,
  type BatchProvider,
  ErrorCodes,
  FinepruneError,
  type MicroBatchProvider,
} from '@fineprune/core';
import { type Dataset, type Split, batches, evaluationBatches } from '@fineprune/datasets';
import type { Recipe } from '@fineprune/recipes';
import { batchesFromEncoded, type EncodedExamples } from '@fineprune/text';

/**
 * The examples a run trains and evaluates on, whatever their source: training batches as a pure
 * function of the step (so a resumed run sees the same batches), the evaluation data in order, and
 * what the model must fit.
 *
 * @example
 * ```ts
 * const data = featureRunData(recipe, dataset);
 * const batch = data.source.batch(0);
 * ```
 */
export interface RunData {
  /** `features`: flat float vectors (MNIST, image folders); `text`: token ids; `module`: a user's batches. */
  kind: 'features' | 'text' | 'module';
  /** What the data is, for messages (`mnist`, `train.jsonl`). */
  name: string;
  /** Number of classes (every label is below it). */
  classes: number;
  /** A name per class. */
  labels: readonly string[];
  trainCount: number;
  testCount: number;
  /** Values per example (features data). */
  featureSize?: number;
  /** Tokens per example and vocabulary size (text data). */
  sequenceLength?: number;
  vocabularySize?: number;
  /** Training batch `i` of `data.batchSize` examples. */
  train: BatchProvider;
  /** The batches of step `s`: one batch, or `training.gradientAccumulation` micro-batches. */
  source: MicroBatchProvider;
  /** Every evaluation example in order, in batches of the evaluation size; the caller disposes them. */
  evaluationBatches(): IterableIterator<Batch>;
  /** The first evaluation examples as one batch (ΔL is measured on it); the caller disposes it. */
  measureBatch(): Batch;
  /** How many mask updates at most get a ΔL measurement (each costs two forward passes). */
  measureLimit: number;
}

/**
 * The first `limit` examples of a split (the whole split without a limit).
 *
 * @example
 * ```ts
 * const small = subset(dataset.test, 256);
 * ```
 */
export function subset(split: Split, limit: number | undefined): Split {
  if (limit === undefined || limit >= split.count) return split;
  return {
    ...split,
    count: limit,
    images: split.images.subarray(0, limit * split.featureSize),
    labels: split.labels.subarray(0, limit),
  };
}

/** The first `limit` encoded examples (all without a limit). */
function encodedSubset(encoded: EncodedExamples, limit: number | undefined): EncodedExamples {
  const count = encoded.labels.length;
  if (limit === undefined || limit >= count) return encoded;
  const values = limit * encoded.maxLength;
  return {
    maxLength: encoded.maxLength,
    inputIds: encoded.inputIds.subarray(0, values),
    tokenTypeIds: encoded.tokenTypeIds.subarray(0, values),
    attentionMask: encoded.attentionMask.subarray(0, values),
    labels: encoded.labels.subarray(0, limit),
  };
}

function checkBatchSize(recipe: Recipe, trainCount: number): void {
  if (recipe.data.batchSize > trainCount) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `data.batchSize ${recipe.data.batchSize} is larger than the ${trainCount} training examples.`,
      fix: 'Lower data.batchSize or raise data.trainLimit.',
      details: { path: 'data.batchSize' },
    });
  }
}

/**
 * The batches of each step: batch `s` of the source, or with gradient accumulation over `k`
 * micro-batches the batches `k·s … k·s + k − 1`.
 *
 * @example
 * ```ts
 * accumulated(train, 2).batch(3); // [train.batch(6), train.batch(7)]
 * ```
 */
export function accumulated(train: BatchProvider, microBatches: number): MicroBatchProvider {
  if (microBatches === 1) return train;
  return {
    batch: (step) =>
      Array.from({ length: microBatches }, (_, index) => train.batch(step * microBatches + index)),
  };
}

/**
 * Run data from flat feature vectors (MNIST, Fashion-MNIST, an image folder): `data.trainLimit` /
 * `data.testLimit` applied, seeded training batches.
 *
 * @throws FinepruneError `INVALID_RECIPE` when `data.batchSize` exceeds the training examples
 *
 * @example
 * ```ts
 * const data = featureRunData(recipe, await loadRecipeDataset('mnist'));
 * ```
 */
export function featureRunData(recipe: Recipe, dataset: Dataset): RunData {
  const train = subset(dataset.train, recipe.data.trainLimit);
  const test = subset(dataset.test, recipe.data.testLimit);
  checkBatchSize(recipe, train.count);
  const source = batches(train, { batchSize: recipe.data.batchSize, seed: recipe.seed });
  const evaluationSize = recipe.data.evaluationBatchSize ?? 1000;
  return {
    kind: 'features',
    name: dataset.name,
    classes: dataset.classes,
    labels: dataset.labelNames,
    trainCount: train.count,
    testCount: test.count,
    featureSize: train.featureSize,
    train: source,
    source: accumulated(source, recipe.training.gradientAccumulation),
    evaluationBatches: () => evaluationBatches(test, evaluationSize),
    measureBatch: () => evaluationBatches(subset(test, Math.min(256, test.count)), 256).next().value as Batch,
    measureLimit: 100,
  };
}

/**
 * Run data from encoded text: limits applied, seeded training batches (those of `batchesFromEncoded`
 * of `@fineprune/text`), evaluation in order in batches of `data.evaluationBatchSize` (default 64).
 *
 * @throws FinepruneError `INVALID_RECIPE` when `data.batchSize` exceeds the training examples
 *
 * @example
 * ```ts
 * const data = textRunData(recipe, { name: 'train.jsonl', labels, train, test, vocabularySize: 30522 });
 * ```
 */
export function textRunData(
  recipe: Recipe,
  text: {
    name: string;
    labels: readonly string[];
    train: EncodedExamples;
    test: EncodedExamples;
    vocabularySize: number;
  },
): RunData {
  const train = encodedSubset(text.train, recipe.data.trainLimit);
  const test = encodedSubset(text.test, recipe.data.testLimit);
  const classes = text.labels.length;
  checkBatchSize(recipe, train.labels.length);
  const source = batchesFromEncoded(train, { batchSize: recipe.data.batchSize, seed: recipe.seed, classes });
  const testCount = test.labels.length;
  const evaluation = batchesFromEncoded(test, {
    batchSize: Math.min(recipe.data.evaluationBatchSize ?? 64, testCount),
    shuffle: false,
    dropRemainder: false,
    classes,
  });
  return {
    kind: 'text',
    name: text.name,
    classes,
    labels: text.labels,
    trainCount: train.labels.length,
    testCount,
    sequenceLength: train.maxLength,
    vocabularySize: text.vocabularySize,
    train: source,
    source: accumulated(source, recipe.training.gradientAccumulation),
    evaluationBatches: () => evaluation.evaluationBatches(),
    // An encoder's forward pass is costly: ΔL is measured on 16 examples, at most 20 times a run.
    measureBatch: () => evaluation.evaluationBatches(Math.min(16, testCount)).next().value!,
    measureLimit: 20,
  };
}
