import {
  adam,
  type LearningRate,
  learningRateSchedule,
  type Optimizer,
  type Plugin,
  type PrunableModel,
  Pruner,
  type ScoreStrategy,
  sgd,
} from '@fineprune/core';
import {
  type PluginRegistry,
  type Recipe,
  type RecipeOptimizer,
  resolvePlugins,
  warmupStepsOf,
} from '@fineprune/recipes';
import type { RunData } from './run-data';

/** AdamW's default decoupled weight decay (Loshchilov & Hutter 2019, as in BERT fine-tuning). */
const ADAMW_WEIGHT_DECAY = 0.01;

/**
 * The learning rate of a recipe optimizer over a run of `steps` steps: the constant rate, or its
 * schedule (linear warm-up then linear or cosine decay) as a function of the step.
 *
 * @example
 * ```ts
 * const rate = optimizerLearningRate({ type: 'adamw', learningRate: 3e-4, schedule: { type: 'linear', warmupSteps: 15 } }, 150);
 * ```
 */
export function optimizerLearningRate(options: RecipeOptimizer, steps: number): LearningRate {
  const schedule = options.schedule;
  if (!schedule || schedule.type === 'constant') return options.learningRate;
  return learningRateSchedule(options.learningRate, {
    type: schedule.type,
    warmupSteps: warmupStepsOf(options, steps),
    totalSteps: steps,
    ...(schedule.minimum !== undefined ? { minimum: schedule.minimum } : {}),
  });
}

/**
 * The optimizer a recipe's `training.optimizer` (or `scoreOptimizer`) describes, over a run of
 * `steps` steps: SGD, Adam, or AdamW (Adam with decoupled weight decay, 0.01 unless given).
 *
 * @example
 * ```ts
 * const optimizer = makeOptimizer({ type: 'adam', learningRate: 1e-3 }, 6000);
 * ```
 */
export function makeOptimizer(options: RecipeOptimizer, steps: number): Optimizer {
  const learningRate = optimizerLearningRate(options, steps);
  if (options.type === 'sgd') {
    return sgd({
      learningRate,
      ...(options.momentum !== undefined ? { momentum: options.momentum } : {}),
    });
  }
  const weightDecay = options.weightDecay ?? (options.type === 'adamw' ? ADAMW_WEIGHT_DECAY : undefined);
  return adam({
    learningRate,
    ...(options.beta1 !== undefined ? { beta1: options.beta1 } : {}),
    ...(options.beta2 !== undefined ? { beta2: options.beta2 } : {}),
    ...(options.epsilon !== undefined ? { epsilon: options.epsilon } : {}),
    ...(weightDecay !== undefined ? { weightDecay } : {}),
  });
}

/**
 * Builds the recipe's plugins through the registry and the `Pruner` that runs them, with the run's
 * own hook plugins added after the recipe's.
 *
 * @returns the pruner and each group's score strategy (the report computes scores with it)
 *
 * @example
 * ```ts
 * const { pruner } = await createRunPruner(recipe, registry, { model: prunable, data, baseDirectory, plugins: [measurement.plugin] });
 * ```
 */
export async function createRunPruner(
  recipe: Recipe,
  registry: PluginRegistry,
  options: { model: PrunableModel; data: RunData; baseDirectory: string; plugins: readonly Plugin[] },
): Promise<{ pruner: Pruner; scoreStrategies: Map<string, ScoreStrategy> }> {
  const { groups, lossTerms, hooks } = await resolvePlugins(recipe, registry, {
    seed: recipe.seed,
    totalSteps: recipe.training.steps,
    model: options.model,
    data: options.data.train,
    evaluationData: () => options.data.evaluationBatches(),
    baseDirectory: options.baseDirectory,
  });
  const pruner = new Pruner({
    model: options.model,
    groups,
    lossTerms,
    plugins: [...hooks, ...options.plugins],
    optimizers: {
      weights: makeOptimizer(recipe.training.optimizer, recipe.training.steps),
      ...(recipe.training.scoreOptimizer
        ? { scores: makeOptimizer(recipe.training.scoreOptimizer, recipe.training.steps) }
        : {}),
    },
    ...(recipe.training.gradientClipping
      ? { gradientClipping: { maxNorm: recipe.training.gradientClipping } }
      : {}),
    ...(recipe.training.divergenceGuard !== undefined
      ? { divergenceGuard: recipe.training.divergenceGuard }
      : {}),
    seed: recipe.seed,
  });
  return {
    pruner,
    scoreStrategies: new Map(groups.map((group) => [group.name ?? 'default', group.scores])),
  };
}
