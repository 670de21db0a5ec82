import { type BatchProvider, ErrorCodes, FinepruneError } from '@fineprune/core';
import { type Dataset, type Split, batches } from '@fineprune/datasets';
import type { Recipe } from '@fineprune/recipes';

/**
 * The examples a run trains and evaluates on: the recipe's limits applied, and the training batches
 * as a pure function of the step (so a resumed run sees the same batches).
 *
 * @example
 * ```ts
 * const { train, test, source } = runData(recipe, dataset);
 * ```
 */
export interface RunData {
  train: Split;
  test: Split;
  /** Number of classes of the task (every label is below it). */
  classes: number;
  source: BatchProvider;
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
 * Applies `data.trainLimit` / `data.testLimit` and builds the seeded training batches.
 *
 * @throws FinepruneError `INVALID_RECIPE` when `data.batchSize` exceeds the training examples
 *
 * @example
 * ```ts
 * const { train, test, source } = runData(recipe, await loadRecipeDataset('mnist'));
 * ```
 */
export function runData(recipe: Recipe, dataset: Dataset): RunData {
  const train = subset(dataset.train, recipe.data.trainLimit);
  const test = subset(dataset.test, recipe.data.testLimit);
  if (recipe.data.batchSize > train.count) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `data.batchSize ${recipe.data.batchSize} is larger than the ${train.count} training examples.`,
      fix: 'Lower data.batchSize or raise data.trainLimit.',
      details: { path: 'data.batchSize' },
    });
  }
  return {
    train,
    test,
    classes: dataset.classes,
    source: batches(train, { batchSize: recipe.data.batchSize, seed: recipe.seed }),
  };
}
