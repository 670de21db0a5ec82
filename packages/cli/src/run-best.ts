import path from 'node:path';
import type { Recipe } from '@fineprune/recipes';
import { writeFileAtomic } from './files';
import { exportRunModel } from './run-export';
import { exportTargetOf, type RunModel } from './run-model';
import type { EvaluationPoint } from './run-record';

/** The value of the recipe's `keepBest` metric in an evaluation (undefined when it was not measured). */
function metricOf(point: EvaluationPoint, metric: string): number | undefined {
  const value = (point as unknown as Record<string, unknown>)[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** True when `value` beats `other` for the metric: lower loss, higher everything else. */
function beats(metric: string, value: number, other: number): boolean {
  return metric === 'loss' ? value < other : value > other;
}

/**
 * The best evaluation of a run by `training.keepBest.metric` (the first one on ties), or undefined
 * when the recipe keeps no best model or nothing was measured.
 *
 * @example
 * ```ts
 * bestEvaluation(recipe, history.evaluations); // { step: 400, accuracy: 0.91, …, metric: 'accuracy' }
 * ```
 */
export function bestEvaluation(
  recipe: Recipe,
  evaluations: readonly EvaluationPoint[],
): (EvaluationPoint & { metric: string }) | undefined {
  const metric = recipe.training.keepBest?.metric;
  if (metric === undefined) return undefined;
  let best: EvaluationPoint | undefined;
  for (const point of evaluations) {
    const value = metricOf(point, metric);
    if (value === undefined) continue;
    if (best === undefined || beats(metric, value, metricOf(best, metric)!)) best = point;
  }
  return best ? { ...best, metric } : undefined;
}

/**
 * The metrics a run's evaluations must report: `training.metrics` and the `keepBest` metric.
 *
 * @example
 * ```ts
 * evaluationMetrics(recipe); // ['accuracy', 'macroF1']
 * ```
 */
export function evaluationMetrics(recipe: Recipe): string[] {
  const metric = recipe.training.keepBest?.metric;
  const metrics = [...recipe.training.metrics];
  if (metric !== undefined && metric !== 'loss' && !metrics.includes(metric)) metrics.push(metric);
  return metrics;
}

/**
 * Best-model keeping (`training.keepBest`): after each evaluation, when it beats every earlier one of
 * the run (resumed runs included: the history comes from the checkpoint), the model is exported to
 * `<out>/best` in the recipe's export format and the evaluation to `<out>/best.json`.
 *
 * @example
 * ```ts
 * const keep = bestModelKeeper({ recipe, outputDirectory, model: opened, evaluations: history.evaluations });
 * await keep?.(point);
 * ```
 */
export function bestModelKeeper(options: {
  recipe: Recipe;
  outputDirectory: string;
  model: RunModel;
  evaluations: readonly EvaluationPoint[];
}): ((point: EvaluationPoint) => Promise<void>) | undefined {
  const { recipe, outputDirectory, model, evaluations } = options;
  const metric = recipe.training.keepBest?.metric;
  if (metric === undefined) return undefined;
  return async (point) => {
    const value = metricOf(point, metric);
    if (value === undefined) return;
    const earlier = bestEvaluation(
      recipe,
      evaluations.filter((entry) => entry !== point),
    );
    if (earlier && !beats(metric, value, metricOf(earlier, metric)!)) return;
    await exportRunModel(
      recipe,
      exportTargetOf(model, recipe.export.dtype),
      path.join(outputDirectory, 'best'),
    );
    await writeFileAtomic(
      path.join(outputDirectory, 'best.json'),
      `${JSON.stringify({ metric, value, ...point }, null, 2)}\n`,
    );
  };
}
