import {
  type Batch,
  type BatchProvider,
  ErrorCodes,
  FinepruneError,
  type MicroBatchProvider,
} from '@fineprune/core';
import { type Dataset, type Split, batches, evaluationBatches } from '@fineprune/datasets';
import type { Recipe } from '@fineprune/recipes';
import { type BertTokenizer, encodeBatch, ExampleOrder } from '@fineprune/text';
import type { TextExamples } from './data/text-data';

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

/**
 * Refuses a `data.batchSize` larger than the training examples the run has (after `data.trainLimit`):
 * no training batch could be made. `run` checks it when it loads the data, `validate` when it reads
 * the recipe's data files through.
 *
 * @throws FinepruneError `INVALID_RECIPE` at `data.batchSize`
 *
 * @example
 * ```ts
 * checkBatchSize(recipe, 12); // throws when recipe.data.batchSize is 32
 * ```
 */
export function checkBatchSize(recipe: Recipe, trainCount: number): void {
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
 * Examples that are read when a batch is made (an image folder, a text file): how many there are,
 * and the batch of the examples at some indices, made now (the caller disposes it).
 *
 * @example
 * ```ts
 * const batch = examples.batch(Int32Array.of(3, 1, 4)); // x [3, …], y [3]
 * ```
 */
export interface LazyExamples {
  readonly count: number;
  batch(indices: Int32Array): Batch;
}

/** The first `limit` examples (all of them without a limit). */
function firstLazy(examples: LazyExamples, limit: number | undefined): LazyExamples {
  if (limit === undefined || limit >= examples.count) return examples;
  return { count: limit, batch: (indices) => examples.batch(indices) };
}

/** The indices `start … end − 1`. */
function range(start: number, end: number): Int32Array {
  return Int32Array.from({ length: end - start }, (_, index) => start + index);
}

/**
 * Run data from examples read a batch at a time: limits applied, training batch `s` the examples
 * `order(s)` (a seeded, resumable order of the training examples), evaluation in order in chunks of
 * `evaluationSize`, ΔL measured on the first `measureSize` evaluation examples. Nothing but the
 * order (4 bytes an example) and one batch is held.
 *
 * @throws FinepruneError `INVALID_RECIPE` when `data.batchSize` exceeds the training examples
 *
 * @example
 * ```ts
 * const data = lazyRunData(recipe, { kind: 'features', name: 'train', classes: 10, labels, featureSize: 784 }, { train, test, order: (count) => new BatchOrder(count, { batchSize: 32, seed: 0 }), evaluationSize: 1000, measureSize: 256, measureLimit: 100 });
 * ```
 */
export function lazyRunData(
  recipe: Recipe,
  about: Pick<
    RunData,
    'kind' | 'name' | 'classes' | 'labels' | 'featureSize' | 'sequenceLength' | 'vocabularySize'
  >,
  examples: {
    train: LazyExamples;
    test: LazyExamples;
    /** The batch order over `count` training examples (`data.batchSize`, the recipe's seed). */
    order: (count: number) => { indices(step: number): Int32Array };
    evaluationSize: number;
    measureSize: number;
    measureLimit: number;
  },
): RunData {
  const train = firstLazy(examples.train, recipe.data.trainLimit);
  const test = firstLazy(examples.test, recipe.data.testLimit);
  checkBatchSize(recipe, train.count);
  const order = examples.order(train.count);
  const source: BatchProvider = { batch: (step) => train.batch(order.indices(step)) };
  const evaluationSize = Math.min(examples.evaluationSize, test.count);
  return {
    ...about,
    trainCount: train.count,
    testCount: test.count,
    train: source,
    source: accumulated(source, recipe.training.gradientAccumulation),
    *evaluationBatches() {
      for (let start = 0; start < test.count; start += evaluationSize)
        yield test.batch(range(start, Math.min(start + evaluationSize, test.count)));
    },
    measureBatch: () => test.batch(range(0, Math.min(examples.measureSize, test.count))),
    measureLimit: examples.measureLimit,
  };
}

/**
 * Run data from labelled texts read a batch at a time ({@link TextExamples}: a text file's rows by
 * their byte offsets, or a built-in task's texts): each batch tokenized when it is made
 * (`encodeBatch` of `@fineprune/text`), training batches in the seeded order of `TextBatchSource`
 * (`ExampleOrder`), evaluation in order in batches of `data.evaluationBatchSize` (default 64).
 * Memory holds one batch and the examples' offsets, whatever `maxLength`.
 *
 * @throws FinepruneError `INVALID_RECIPE` when `data.batchSize` exceeds the training examples
 *
 * @example
 * ```ts
 * const data = textRunData(recipe, { name: 'train.jsonl', labels, train, test, tokenizer, maxLength: 128 });
 * ```
 */
export function textRunData(
  recipe: Recipe,
  text: {
    name: string;
    labels: readonly string[];
    train: TextExamples;
    test: TextExamples;
    tokenizer: BertTokenizer;
    maxLength: number;
  },
): RunData {
  const { tokenizer, maxLength } = text;
  const lazy = (examples: TextExamples): LazyExamples => ({
    count: examples.count,
    batch: (indices) => encodeBatch(tokenizer, examples.read(indices), maxLength),
  });
  return lazyRunData(
    recipe,
    {
      kind: 'text',
      name: text.name,
      classes: text.labels.length,
      labels: text.labels,
      sequenceLength: maxLength,
      vocabularySize: tokenizer.vocabSize,
    },
    {
      train: lazy(text.train),
      test: lazy(text.test),
      order: (count) => new ExampleOrder(count, { batchSize: recipe.data.batchSize, seed: recipe.seed }),
      evaluationSize: recipe.data.evaluationBatchSize ?? 64,
      // An encoder's forward pass is costly: ΔL is measured on 16 examples, at most 20 times a run.
      measureSize: 16,
      measureLimit: 20,
    },
  );
}
