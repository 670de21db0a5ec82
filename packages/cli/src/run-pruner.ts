import {
  adam,
  type Optimizer,
  type Plugin,
  type PrunableModel,
  Pruner,
  type ScoreStrategy,
  sgd,
} from '@fineprune/core';
import { type PluginRegistry, type Recipe, type RecipeOptimizer, resolvePlugins } from '@fineprune/recipes';
import { evaluationBatches } from '@fineprune/datasets';
import type { RunData } from './run-data';

/**
 * The optimizer a recipe's `training.optimizer` (or `scoreOptimizer`) describes.
 *
 * @example
 * ```ts
 * const optimizer = makeOptimizer({ type: 'adam', learningRate: 1e-3 });
 * ```
 */
export function makeOptimizer(options: RecipeOptimizer): Optimizer {
  if (options.type === 'sgd') {
    return sgd({
      learningRate: options.learningRate,
      ...(options.momentum !== undefined ? { momentum: options.momentum } : {}),
    });
  }
  return adam({
    learningRate: options.learningRate,
    ...(options.beta1 !== undefined ? { beta1: options.beta1 } : {}),
    ...(options.beta2 !== undefined ? { beta2: options.beta2 } : {}),
    ...(options.epsilon !== undefined ? { epsilon: options.epsilon } : {}),
    ...(options.weightDecay !== undefined ? { weightDecay: options.weightDecay } : {}),
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
    data: options.data.source,
    evaluationData: () => evaluationBatches(options.data.test, 1000),
    baseDirectory: options.baseDirectory,
  });
  const pruner = new Pruner({
    model: options.model,
    groups,
    lossTerms,
    plugins: [...hooks, ...options.plugins],
    optimizers: {
      weights: makeOptimizer(recipe.training.optimizer),
      ...(recipe.training.scoreOptimizer ? { scores: makeOptimizer(recipe.training.scoreOptimizer) } : {}),
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
