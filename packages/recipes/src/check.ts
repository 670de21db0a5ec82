import type { JsonObject, SparsitySchedule } from '@fineprune/core';
import {
  type PluginEnvironment,
  type PluginKind,
  type PluginKindMap,
  type PluginRegistry,
  stepUnits,
} from './registry';
import { checkGroupComposition, checkRecipePlugins } from './resolve';
import type { Recipe, RecipeOptimizer } from './schema';
import { formatPath, type RecipeIssue, recipeError } from './validate';

/**
 * How far from its final value a schedule may still be at the last step, as a fraction of the way
 * from its start value: 1%. A cubic schedule without cool-down reaches its final value only at step
 * `totalSteps`, one step after the last one trained; with enough pruning intervals it ends within
 * this margin, while a schedule cut short (`totalSteps: 600` with `training.steps: 6`) does not.
 *
 * @example
 * ```ts
 * console.log(`schedules must end within ${SCHEDULE_END_TOLERANCE * 100}% of their final target`);
 * ```
 */
export const SCHEDULE_END_TOLERANCE = 0.01;

function valueAt(schedule: SparsitySchedule, step: number): number | undefined {
  try {
    const value = schedule.valueAt(step);
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The problems of a recipe's schedules against its training length: each schedule (of a target
 * kind) must be within {@link SCHEDULE_END_TOLERANCE} of its final value at the last trained step,
 * `training.steps − 1`. The message names the step-valued options (declared with a `unit` in the
 * schedule's options schema) that run past `training.steps`.
 *
 * @param schedules - the built schedule of each pruning group, in recipe order (undefined: not checked)
 *
 * @example
 * ```ts
 * scheduleLengthIssues(recipe, registry, groups.map((group) => group.schedule));
 * ```
 */
export function scheduleLengthIssues(
  recipe: Recipe,
  registry: PluginRegistry,
  schedules: ReadonlyArray<SparsitySchedule | undefined>,
): RecipeIssue[] {
  const steps = recipe.training.steps;
  const issues: RecipeIssue[] = [];
  schedules.forEach((schedule, index) => {
    if (schedule === undefined || schedule.kind === 'none') return;
    const start = valueAt(schedule, 0);
    const final = valueAt(schedule, Number.MAX_SAFE_INTEGER);
    const reached = valueAt(schedule, steps - 1);
    if (start === undefined || final === undefined || reached === undefined) return;
    if (Math.abs(final - reached) <= SCHEDULE_END_TOLERANCE * Math.abs(final - start)) return;
    const reference = recipe.pruning[index]!.schedule;
    const definition = registry.get('schedule', reference.id);
    const beyond = Object.entries(definition ? stepUnits(definition) : {})
      .filter(([name, unit]) => {
        const value = reference.options[name];
        return unit === 'steps' && typeof value === 'number' && value > steps;
      })
      .map(([name]) => `${name} ${reference.options[name]}`);
    const what = schedule.kind === 'threshold' ? 'threshold' : 'sparsity';
    issues.push({
      path: formatPath(['pruning', index, 'schedule']),
      message: `schedule "${schedule.id}" reaches ${what} ${reached.toPrecision(4)} at the last step (${steps - 1} of training.steps ${steps}) instead of its final ${final}${
        beyond.length
          ? `: ${beyond.join(', ')} ${beyond.length === 1 ? 'runs' : 'run'} past training.steps`
          : ''
      }`,
      fix: `Make the schedule end within training.steps (totalSteps ≤ ${steps}, warm-up and cool-down included), or raise training.steps.`,
    });
  });
  return issues;
}

/**
 * The warm-up of an optimizer's learning-rate schedule in steps: `warmupSteps`, or `warmupFraction`
 * of `training.steps` rounded to the nearest step, or 0.
 *
 * @example
 * ```ts
 * warmupStepsOf({ type: 'adamw', learningRate: 3e-4, schedule: { type: 'linear', warmupFraction: 0.1 } }, 150); // 15
 * ```
 */
export function warmupStepsOf(optimizer: RecipeOptimizer, steps: number): number {
  const schedule = optimizer.schedule;
  if (!schedule) return 0;
  if (schedule.warmupSteps !== undefined) return schedule.warmupSteps;
  return schedule.warmupFraction !== undefined ? Math.round(schedule.warmupFraction * steps) : 0;
}

/**
 * The problems of a recipe's training section that the schema cannot see alone: a learning-rate
 * schedule with both `warmupSteps` and `warmupFraction`, a warm-up that does not end before
 * `training.steps`, a `minimum` above the peak rate.
 *
 * @example
 * ```ts
 * trainingIssues(recipe); // [] for a sound recipe
 * ```
 */
export function trainingIssues(recipe: Recipe): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  const steps = recipe.training.steps;
  const optimizers = [
    ['optimizer', recipe.training.optimizer],
    ['scoreOptimizer', recipe.training.scoreOptimizer],
  ] as const;
  for (const [key, optimizer] of optimizers) {
    const schedule = optimizer?.schedule;
    if (!optimizer || !schedule) continue;
    const at = formatPath(['training', key, 'schedule']);
    if (schedule.warmupSteps !== undefined && schedule.warmupFraction !== undefined) {
      issues.push({
        path: at,
        message: 'gives both warmupSteps and warmupFraction',
        fix: 'Keep one of them.',
      });
      continue;
    }
    const warmup = warmupStepsOf(optimizer, steps);
    if (schedule.type !== 'constant' && warmup >= steps) {
      issues.push({
        path: at,
        message: `warms up for ${warmup} steps, which does not end before training.steps ${steps}`,
        fix: `Use a warm-up shorter than the run (for example warmupFraction: 0.1, ${Math.round(0.1 * steps)} steps).`,
      });
    }
    if (schedule.minimum !== undefined && schedule.minimum > optimizer.learningRate) {
      issues.push({
        path: `${at}.minimum`,
        message: `is ${schedule.minimum}, above the peak learningRate ${optimizer.learningRate}`,
        fix: 'Give a minimum below the learning rate, or leave it out (1e-8).',
      });
    }
  }
  return issues;
}

/**
 * Every check of a recipe that needs neither its model nor its data, the same for `fineprune
 * validate` and before a run starts: plugin ids and options ({@link checkRecipePlugins}); each
 * plugin whose definition declares an options schema built by its factory with `checkOnly: true`
 * (no model, no data), so the factory's own checks run too (`finalSparsity` in [0, 1), a cubic
 * `interval` ≥ 1, …); each group's plugins agreeing ({@link checkGroupComposition}); and each
 * schedule reaching its final target within `training.steps` ({@link scheduleLengthIssues}); the
 * learning-rate schedules fitting the run ({@link trainingIssues}).
 * Definitions without a schema predate this protocol: they are built only for the run.
 *
 * @throws FinepruneError `UNKNOWN_PLUGIN`, `INVALID_RECIPE`, `INCOMPATIBLE_PLUGINS`, or a factory's own error with the recipe path
 *
 * @example
 * ```ts
 * await checkRecipe(recipe, registry, { source: 'mnist.yaml', baseDirectory: '.' });
 * ```
 */
export async function checkRecipe(
  recipe: Recipe,
  registry: PluginRegistry,
  options: { source?: string; baseDirectory?: string } = {},
): Promise<void> {
  checkRecipePlugins(recipe, registry, options.source);
  const environment: PluginEnvironment = {
    seed: recipe.seed,
    totalSteps: recipe.training.steps,
    checkOnly: true,
    ...(options.baseDirectory !== undefined ? { baseDirectory: options.baseDirectory } : {}),
  };
  // Builds a plugin for checking when its definition declares a schema (and so the checkOnly protocol).
  const build = async <K extends PluginKind>(
    kind: K,
    reference: { id: string; options: Record<string, unknown> },
    path: string,
  ): Promise<PluginKindMap[K] | undefined> =>
    registry.get(kind, reference.id)?.options
      ? registry.create(kind, reference.id, reference.options as JsonObject, environment, path)
      : undefined;
  const schedules: Array<SparsitySchedule | undefined> = [];
  for (const [index, group] of recipe.pruning.entries()) {
    const at = (kind: string) => formatPath(['pruning', index, kind]);
    const scores = await build('scores', group.scores, at('scores'));
    const mask = await build('mask', group.mask, at('mask'));
    const schedule = await build('schedule', group.schedule, at('schedule'));
    checkGroupComposition(recipe, registry, index, {
      ...(scores ? { scores } : {}),
      ...(mask ? { mask } : {}),
      ...(schedule ? { schedule } : {}),
    });
    schedules.push(schedule);
  }
  for (const [index, term] of recipe.lossTerms.entries())
    await build('lossTerm', term, formatPath(['lossTerms', index]));
  for (const [index, hook] of recipe.hooks.entries()) await build('hook', hook, formatPath(['hooks', index]));
  const issues = [...scheduleLengthIssues(recipe, registry, schedules), ...trainingIssues(recipe)];
  if (issues.length > 0) throw recipeError(issues, options.source);
}
