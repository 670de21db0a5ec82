import { type Batch, ErrorCodes, FinepruneError } from '@fineprune/core';
import type { Recipe } from '@fineprune/recipes';
import * as tf from '@tensorflow/tfjs-core';
import { importUserFunction } from '../models';
import { accumulated, type RunData } from '../run-data';

/**
 * What a data module's exported function receives.
 *
 * @example
 * ```ts
 * export default function createData(context: DataModuleContext) { … }
 * ```
 */
export interface DataModuleContext {
  /** The recipe's seed: shuffle with it so runs are reproducible. */
  seed: number;
  /** `data.batchSize`. */
  batchSize: number;
  /** The recipe's directory (for files the module reads). */
  baseDirectory: string;
}

/**
 * What a data module returns: batches in the `Batch` format of `@fineprune/core` (`y` int32
 * labels `[b]` or one-hot rows), training batch `i` a pure function of `i` so that resumed runs
 * stay exact.
 *
 * @example
 * ```ts
 * const data: DataModule = { classes: 2, trainCount: 1000, testCount: 200, batch: (i) => …, evaluationBatches: function* () { … } };
 * ```
 */
export interface DataModule {
  classes: number;
  labels?: string[];
  trainCount: number;
  testCount: number;
  /** Values per example, when batches are flat feature vectors (lets the CLI check the model's input). */
  featureSize?: number;
  /** Training batch `index` (the CLI disposes it after use). */
  batch(index: number): Batch;
  /** The evaluation data in order (the CLI disposes each batch after use). */
  evaluationBatches(): Iterable<Batch>;
}

function invalid(message: string, fix: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.INVALID_RECIPE,
    message: `data.module: ${message}`,
    fix,
    details: { path: 'data.module' },
  });
}

function isTensorTree(value: unknown): boolean {
  if (value instanceof tf.Tensor) return true;
  if (Array.isArray(value)) return value.length > 0 && value.every((item) => item instanceof tf.Tensor);
  return (
    value !== null &&
    typeof value === 'object' &&
    Object.values(value).length > 0 &&
    Object.values(value).every((item) => item instanceof tf.Tensor)
  );
}

/** Checks one batch a module made, naming where it came from. */
function checkedBatch(value: unknown, where: string): Batch {
  const batch = value as Batch | undefined;
  if (!batch || typeof batch !== 'object' || !isTensorTree(batch.x) || !isTensorTree(batch.y))
    throw invalid(
      `${where} is not a batch { x, y } of tensors.`,
      'Return { x: tf.Tensor (or a record or list of tensors), y: tf.Tensor } built with the same @tensorflow/tfjs-core.',
    );
  return batch;
}

/**
 * Run data from a user's module (`data.module`, `data.export`): the module's function is called
 * with {@link DataModuleContext} and must return a {@link DataModule}; its fields are checked, and
 * each batch it makes is checked to be `{ x, y }` tensors. `data.trainLimit` and `data.testLimit`
 * do not apply (the module decides what it serves).
 *
 * @throws FinepruneError `IO_FAILED` when the module cannot be imported; `INVALID_RECIPE` when it
 *   exports no such function or returns something else than a data module
 *
 * @example
 * ```ts
 * const data = await moduleRunData(recipe, '.');
 * ```
 */
export async function moduleRunData(recipe: Recipe, baseDirectory: string): Promise<RunData> {
  const specifier = recipe.data.module!;
  const exportName = recipe.data.export ?? 'default';
  const create = await importUserFunction(specifier, exportName, {
    baseDirectory,
    where: 'data.module',
    exportWhere: 'data.export',
    expected: '`(context) => ({ classes, trainCount, testCount, batch(index), evaluationBatches() })`',
  });
  const context: DataModuleContext = { seed: recipe.seed, batchSize: recipe.data.batchSize, baseDirectory };
  const made = (await (create as (context: DataModuleContext) => unknown)(
    context,
  )) as Partial<DataModule> | null;
  const count = (value: unknown, minimum: number) =>
    Number.isSafeInteger(value) && (value as number) >= minimum;
  if (
    made === null ||
    typeof made !== 'object' ||
    !count(made.classes, 2) ||
    !count(made.trainCount, 1) ||
    !count(made.testCount, 1) ||
    typeof made.batch !== 'function' ||
    typeof made.evaluationBatches !== 'function' ||
    (made.featureSize !== undefined && !count(made.featureSize, 1)) ||
    (made.labels !== undefined &&
      (!Array.isArray(made.labels) ||
        made.labels.length !== made.classes ||
        !made.labels.every((label) => typeof label === 'string')))
  ) {
    throw invalid(
      `"${exportName}" of ${specifier} did not return a data module.`,
      'Return { classes (≥ 2), trainCount, testCount, batch(index), evaluationBatches(), and optionally labels (one per class) and featureSize }.',
    );
  }
  const module = made as DataModule;
  const train = { batch: (index: number) => checkedBatch(module.batch(index), `batch(${index})`) };
  function* evaluation(): IterableIterator<Batch> {
    let index = 0;
    for (const batch of module.evaluationBatches()) yield checkedBatch(batch, `evaluation batch ${index++}`);
  }
  return {
    kind: 'module',
    name: specifier,
    classes: module.classes,
    labels: module.labels ?? Array.from({ length: module.classes }, (_, index) => String(index)),
    trainCount: module.trainCount,
    testCount: module.testCount,
    ...(module.featureSize !== undefined ? { featureSize: module.featureSize } : {}),
    train,
    source: accumulated(train, recipe.training.gradientAccumulation),
    evaluationBatches: evaluation,
    measureBatch: () => {
      const iterator = evaluation();
      const first = iterator.next();
      iterator.return?.();
      if (first.done)
        throw invalid('evaluationBatches() yielded no batch.', 'Yield the evaluation data in batches.');
      return first.value;
    },
    measureLimit: 100,
  };
}
