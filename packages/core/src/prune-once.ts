import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { createRandom } from '@fineprune/tensor/random';
import { assignMasks } from './assign-masks';
import { fail } from './fail';
import { type ParameterSelector, selectParameters } from './parameter';
import { PluginDriver } from './plugin-driver';
import { type SparsityReport, sparsityReport, type UnitSparsity, unitReport } from './report';
import { structuresForGroup } from './structures';
import {
  type Batch,
  type MaskFunction,
  type PluginContext,
  type PrunableModel,
  type PrunableParameter,
  SPEC_VERSION,
  type ScoreStrategy,
  type SkippedWeight,
} from './types';

/**
 * Options of {@link pruneOnce}: how to rank the weights, how to turn the ranking into masks, and
 * the target.
 *
 * @example
 * ```ts
 * const options: PruneOnceOptions = { scores: magnitude(), mask: topV({ scope: 'global' }), sparsity: 0.5 };
 * ```
 */
export interface PruneOnceOptions {
  /**
   * How the weights are ranked: a score strategy that computes its scores, from the weights
   * (`magnitude()`, a random criterion) or from data (the gradient-based criteria of
   * `@fineprune/criteria`, which need {@link PruneOnceOptions.data}). Learned scores (movement, L0)
   * need training: use the `Pruner` for them.
   */
  scores: ScoreStrategy;
  /** How scores become masks: `topV({ scope: 'global' | 'local' })`, `threshold(…)`, … */
  mask: MaskFunction;
  /** The target of a sparsity mask (Top-v): the fraction of the chosen weights to remove, in [0, 1). */
  sparsity?: number;
  /** The target of a threshold mask: the score threshold. */
  threshold?: number;
  /** Which parameters to prune: names, groups, patterns or a predicate; default every parameter. */
  parameters?: ParameterSelector;
  /** Parameters to leave as they are (reported as skipped, reason `excluded`). */
  exclude?: ParameterSelector;
  /**
   * Scoring batches, for scores measured on data (`scores.measure`): gradients, curvature. Needs a
   * model with a loss. Each batch is disposed once the scores are measured. Data-free scores take
   * no data (passing some is an error).
   */
  data?: Iterable<Batch>;
  /** Seed of the random source the plugins receive; default 0. */
  seed?: number;
}

/**
 * What {@link pruneOnce} did: the kept count and sparsity of each pruned parameter and in total
 * (as {@link sparsityReport}), the plugins and target, and every weight left dense.
 *
 * @example
 * ```ts
 * const report: PruneOnceReport = await pruneOnce(prunable, options);
 * console.log(report.sparsity, report.parameters.map((row) => `${row.name} ${row.kept}/${row.total}`));
 * ```
 */
export interface PruneOnceReport extends SparsityReport {
  /** Id of the score strategy. */
  readonly scores: string;
  /** Id of the mask function. */
  readonly mask: string;
  /** What the target is, and its value. */
  readonly targetKind: 'sparsity' | 'threshold';
  readonly target: number;
  /**
   * Weights that stay dense: those the model's adapter does not prune (its `skippedWeights()`:
   * normalisation layers, biases, unsupported layers) and the parameters that `parameters` /
   * `exclude` left out (their `layerClass` is the parameter's kind).
   */
  readonly skipped: SkippedWeight[];
  /**
   * With a unit mask (neurons, filters, heads): the units kept of each structure it pruned. Absent
   * for masks that select single weights or shape-only patterns.
   */
  readonly units?: UnitSparsity[];
}

function checkModel(model: PrunableModel): void {
  if (model?.specVersion === SPEC_VERSION && typeof model.parameters === 'function') return;
  const layers = (model as unknown as { layers?: unknown } | undefined)?.layers;
  if (Array.isArray(layers)) {
    fail(
      'pruneOnce() received a tf.LayersModel, not a PrunableModel.',
      'Wrap it first with fromLayersModel(model) from @fineprune/layers, or call pruneLayersModel(model, options), which returns a pruned copy.',
    );
  }
  fail(
    `pruneOnce() needs a PrunableModel (spec version ${SPEC_VERSION}).`,
    'Build one with an adapter, such as fromLayersModel() from @fineprune/layers.',
  );
}

function checkPlugins(scores: ScoreStrategy, mask: MaskFunction): void {
  if (typeof scores?.compute !== 'function' || typeof scores.id !== 'string') {
    fail('pruneOnce() needs `scores`, a score strategy.', 'Pass scores: magnitude() from @fineprune/scores.');
  }
  if (typeof mask?.compute !== 'function' || typeof mask.id !== 'string') {
    fail(
      'pruneOnce() needs `mask`, a mask function.',
      "Pass mask: topV({ scope: 'global' }) from @fineprune/masks.",
    );
  }
  if (scores.learnable || mask.requiresLearnableScores) {
    fail(
      `Score strategy "${scores.id}" with mask "${mask.id}" learns during training, so there is nothing to rank before it.`,
      'Prune once with computed scores (magnitude(), a criterion), or train with the Pruner for movement or L0 pruning.',
      ErrorCodes.INCOMPATIBLE_PLUGINS,
    );
  }
}

/** The target the mask function needs, from `sparsity` or `threshold`. */
function targetOf(options: PruneOnceOptions): { targetKind: 'sparsity' | 'threshold'; target: number } {
  const { mask } = options;
  if (mask.targetKind === 'sparsity') {
    const { sparsity } = options;
    if (sparsity === undefined) {
      fail(
        `Mask "${mask.id}" selects by sparsity, and no \`sparsity\` was given.`,
        'Pass sparsity: 0.5 (the fraction of weights to remove).',
      );
    }
    if (!(typeof sparsity === 'number' && sparsity >= 0 && sparsity < 1)) {
      fail(
        `sparsity must be a number in [0, 1), got ${sparsity}.`,
        'Pass the fraction of weights to remove, for example 0.9; 1 would remove every weight.',
        ErrorCodes.INVALID_SPARSITY,
      );
    }
    return { targetKind: 'sparsity', target: sparsity };
  }
  if (mask.targetKind === 'threshold') {
    const { threshold } = options;
    if (!(typeof threshold === 'number' && Number.isFinite(threshold))) {
      fail(
        `Mask "${mask.id}" keeps scores above a threshold; \`threshold\` must be a finite number, got ${threshold}.`,
        'Pass threshold: 0.1 (or use a Top-v mask with `sparsity`).',
      );
    }
    return { targetKind: 'threshold', target: threshold };
  }
  fail(
    `Mask "${mask.id}" takes no target: its gates are learned in training.`,
    'Use topV() with `sparsity` or threshold() with `threshold`, or train with the Pruner.',
    ErrorCodes.INCOMPATIBLE_PLUGINS,
  );
}

function chooseParameters(model: PrunableModel, options: PruneOnceOptions): PrunableParameter[] {
  const all = model.parameters();
  const chosen = selectParameters(all, {
    ...(options.parameters !== undefined ? { include: options.parameters } : {}),
    ...(options.exclude !== undefined ? { exclude: options.exclude } : {}),
  });
  if (chosen.length === 0) {
    fail(
      `No parameter of model "${model.name}" is chosen${all.length > 0 ? ' by `parameters` / `exclude`' : ''}.`,
      all.length > 0
        ? `Check the selectors; the model's parameters are: ${all.map((parameter) => parameter.name).join(', ')}.`
        : 'The model exposes no prunable weight; see its adapter for the layers it can prune.',
      ErrorCodes.NO_PRUNABLE_PARAMETERS,
    );
  }
  return chosen;
}

/** Measures data-driven scores on the batches, disposing each batch afterwards. */
async function measureOn(model: PrunableModel, scores: ScoreStrategy, data: Iterable<Batch>): Promise<void> {
  const measure = scores.measure;
  if (typeof measure !== 'function') {
    fail(
      `Score strategy "${scores.id}" computes its scores without data, and \`data\` was given.`,
      'Remove `data`, or use a score measured on data (a gradient-based criterion such as linearModel()).',
    );
  }
  const batches: Batch[] = [];
  try {
    for (const batch of data) batches.push(batch);
    await PluginDriver.call(scores, 'measure', 0, () => measure.call(scores, model, batches));
  } finally {
    tf.dispose(batches.flatMap((batch) => [batch.x, batch.y]) as tf.TensorContainer);
  }
}

/** A NOT_MEASURED error from scores that need data, said in terms of pruneOnce's options. */
function withDataFix(error: unknown, scores: ScoreStrategy): unknown {
  if (!FinepruneError.is(error) || error.code !== ErrorCodes.NOT_MEASURED) return error;
  return new FinepruneError({
    code: ErrorCodes.NOT_MEASURED,
    message: `Score strategy "${scores.id}" is measured on data, and pruneOnce() was given no data.`,
    fix: 'Pass data: scoring batches (for example 1,000 training examples) to pruneOnce(), or call scores.measure(model, batches) first.',
    cause: error,
  });
}

function excludedWeights(
  all: readonly PrunableParameter[],
  chosen: readonly PrunableParameter[],
): SkippedWeight[] {
  const taken = new Set(chosen);
  return all
    .filter((parameter) => !taken.has(parameter))
    .map((parameter) => ({
      name: parameter.name,
      group: parameter.group,
      layerClass: parameter.kind,
      shape: [...parameter.shape],
      size: parameter.size,
      reason: 'excluded' as const,
    }));
}

/**
 * Prunes a model once, without training: computes the scores of the chosen parameters, turns them
 * into masks for one target (a sparsity for Top-v, local or global, or a threshold) and assigns
 * the masks. Needs no loss and no optimizer unless the scores are measured on data; then pass
 * `data`. Earlier masks of the chosen parameters are replaced; the others are left as they are.
 * The model keeps its raw weights: `strip()` of `@fineprune/layers` makes the plain pruned model.
 *
 * @param model - a {@link PrunableModel}, for example from `fromLayersModel()`
 * @param options - scores, mask, target, which parameters, scoring data
 * @returns the kept counts per parameter and in total, and the weights left dense
 * @throws FinepruneError `INVALID_ARGUMENT` (a missing target, data for data-free scores),
 *   `INVALID_SPARSITY`, `INCOMPATIBLE_PLUGINS` (learned scores, a mask without target),
 *   `NO_PRUNABLE_PARAMETERS`, `NOT_MEASURED` (data-driven scores without data)
 *
 * @example
 * ```ts
 * const prunable = fromLayersModel(model);
 * const report = await pruneOnce(prunable, { scores: magnitude(), mask: topV({ scope: 'global' }), sparsity: 0.5 });
 * console.log(report.kept, report.skipped.length);
 * const plain = await strip(prunable); // a tf.LayersModel with W ⊙ M
 * ```
 */
export async function pruneOnce(model: PrunableModel, options: PruneOnceOptions): Promise<PruneOnceReport> {
  checkModel(model);
  checkPlugins(options?.scores, options?.mask);
  const { scores, mask } = options;
  const { targetKind, target } = targetOf(options);
  const parameters = chooseParameters(model, options);
  const structures = structuresForGroup('pruneOnce()', model, parameters, scores, mask);
  const context: PluginContext = { step: 0, model, random: createRandom(options.seed ?? 0) };
  const measured = options.data !== undefined;
  try {
    if (measured) await measureOn(model, scores, options.data!);
    await assignMasks({ parameters, scores, mask, target, context, structures });
  } catch (error) {
    throw measured ? error : withDataFix(error, scores);
  } finally {
    if (measured) scores.dispose?.();
  }
  const report = await sparsityReport(parameters);
  const units = structures.length > 0 ? await unitReport(structures, parameters) : undefined;
  return {
    ...report,
    ...(units ? { units } : {}),
    scores: scores.id,
    mask: mask.id,
    targetKind,
    target,
    skipped: [...(model.skippedWeights?.() ?? []), ...excludedWeights(model.parameters(), parameters)],
  };
}
