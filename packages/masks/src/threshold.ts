import * as tf from '@tensorflow/tfjs-core';
import {
  type LossTerm,
  type MaskFunction,
  type MaskInput,
  matchesSelector,
  type ParameterSelector,
} from '@fineprune/core';
import { ErrorCodes } from '@fineprune/tensor/errors';
import { addMany, sigmoidSumTensor } from '@fineprune/tensor';
import { thresholdMaskTensors, topCountMasks } from '@fineprune/tensor/select';
import { readScores } from './read-scores';
import { type SigmoidComparison, sigmoidCut } from './sigmoid-cut';
import { invalid } from './invalid';

/**
 * Options of {@link threshold}.
 *
 * @example
 * ```ts
 * const options: ThresholdOptions = { on: 'scores', minKeptFraction: 0.005, floorScope: 'local' };
 * // The reference code's masks: σ(S) > τ in float32, a floor of int(0.005·n) + 1 per matrix.
 * const reference: ThresholdOptions = { on: 'sigmoid', sigmoidComparison: 'float32', floorCount: 'floor-plus-one' };
 * ```
 */
export interface ThresholdOptions {
  /**
   * What τ is compared with: `scores` (default) keeps S > τ (Sec. 4 of Movement Pruning); `sigmoid`
   * keeps σ(S) > τ, as the reference implementation's `ThresholdBinarizer` does (τ in [0, 1)).
   */
  on?: 'scores' | 'sigmoid';
  /**
   * With `on: 'sigmoid'`: `logit` (default) keeps S > logit(τ); `float32` keeps σ(S) > τ both
   * rounded to float32, as the reference code compares them, which differs only at float32 ties
   * (see {@link SigmoidComparison}).
   */
  sigmoidComparison?: SigmoidComparison;
  /**
   * The floor on the fraction of weights kept, in [0, 1): when the threshold would keep fewer, the
   * top `ceil(minKeptFraction · n)` scores are kept instead (see `floorCount`), so a run cannot
   * prune everything. Default 0.005 (the reference code keeps at least 0.5% of each matrix). With 0
   * (and `floorCount: 'ceil'`), a threshold that keeps nothing is an `EMPTY_MASK` error.
   */
  minKeptFraction?: number;
  /** Where the floor applies: to each matrix (`local`, default, as the reference) or to the whole group (`global`). */
  floorScope?: 'local' | 'global';
  /**
   * How the floor's count of n entries is rounded: `ceil` (default) keeps ⌈f·n⌉; `floor-plus-one`
   * keeps ⌊f·n⌋ + 1 as the reference's `ThresholdBinarizer` does (at f = 0.005: 5 and 6 of 1,000;
   * with f = 0 it still keeps one entry, so the mask is never empty).
   */
  floorCount?: 'ceil' | 'floor-plus-one';
}

/**
 * The threshold mask of soft movement pruning (SMvP, Sec. 4): M = (S > τ) with τ from a schedule of
 * kind `threshold` (such as `cubicThreshold` of `@fineprune/schedulers`). The selection is global by
 * nature (one τ for every matrix), so layers end with different sparsities; the regulariser
 * {@link sigmoidPenalty} pushes the scores down and so sets the sparsity. The forward pass is the
 * default straight-through one (Eq. 2): learned scores receive dL/d(W ⊙ M) ⊙ W.
 *
 * @example
 * ```ts
 * const pruner = new Pruner({
 *   model,
 *   scores: movement(),
 *   mask: threshold({ minKeptFraction: 0.01 }),
 *   schedule: cubicThreshold({ initialThreshold: 0, finalThreshold: 0.1, totalSteps: 1800, warmupSteps: 180, cooldownSteps: 360 }),
 *   lossTerms: [sigmoidPenalty({ lambda: 1e-5, rampWithThreshold: { finalThreshold: 0.1 } })],
 *   optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) },
 * });
 * ```
 */
export function threshold(options: ThresholdOptions = {}): MaskFunction {
  const on = options.on ?? 'scores';
  const minKeptFraction = options.minKeptFraction ?? 0.005;
  const floorScope = options.floorScope ?? 'local';
  const sigmoidComparison = options.sigmoidComparison ?? 'logit';
  const floorCount = options.floorCount ?? 'ceil';
  if (on !== 'scores' && on !== 'sigmoid')
    invalid(
      `threshold: on must be "scores" or "sigmoid", got ${JSON.stringify(on)}.`,
      'Use "scores" (S > τ) or "sigmoid" (σ(S) > τ).',
    );
  if (!(minKeptFraction >= 0 && minKeptFraction < 1))
    invalid(
      `threshold: minKeptFraction must be in [0, 1), got ${minKeptFraction}.`,
      'Use a small floor such as 0.005 (0.5% of the weights), or 0 for none.',
      ErrorCodes.INVALID_SPARSITY,
    );
  if (floorScope !== 'local' && floorScope !== 'global')
    invalid(
      `threshold: floorScope must be "local" or "global", got ${JSON.stringify(floorScope)}.`,
      'Use "local" or "global".',
    );
  if (sigmoidComparison !== 'logit' && sigmoidComparison !== 'float32')
    invalid(
      `threshold: sigmoidComparison must be "logit" or "float32", got ${JSON.stringify(sigmoidComparison)}.`,
      'Use "logit" (S > logit(τ), the default) or "float32" (the reference code\'s float32 σ(S) > τ).',
    );
  if (floorCount !== 'ceil' && floorCount !== 'floor-plus-one')
    invalid(
      `threshold: floorCount must be "ceil" or "floor-plus-one", got ${JSON.stringify(floorCount)}.`,
      'Use "ceil" (⌈f·n⌉, the default) or "floor-plus-one" (⌊f·n⌋ + 1, the reference code).',
    );
  // The floor on the entries kept out of `size`: ⌈f·n⌉, or the reference's int(f·n) + 1.
  const floorOf = (size: number) =>
    Math.min(
      size,
      floorCount === 'ceil' ? Math.ceil(minKeptFraction * size) : Math.floor(minKeptFraction * size) + 1,
    );
  const hasFloor = minKeptFraction > 0 || floorCount === 'floor-plus-one';
  return {
    id: 'threshold',
    targetKind: 'threshold',
    async compute(inputs: readonly MaskInput[], tau: number) {
      if (Number.isNaN(tau) || tau === Number.POSITIVE_INFINITY || (on === 'sigmoid' && tau >= 1)) {
        if (!hasFloor)
          invalid(
            `threshold: τ = ${tau} keeps nothing${on === 'sigmoid' ? ' (σ(S) < 1 always)' : ''} and minKeptFraction is 0.`,
            'Use a schedule whose thresholds stay finite (below 1 with on: "sigmoid"), or set a minKeptFraction floor.',
            ErrorCodes.EMPTY_MASK,
          );
      }
      // With on: 'sigmoid', σ(S) > τ becomes S > cut (logit(τ), or its float32 counterpart).
      const cut = on === 'scores' ? tau : sigmoidCut(tau, sigmoidComparison);
      // On wasm one SIMD pass per tensor writes the mask and counts it; elsewhere TF.js ops.
      const direct = thresholdMaskTensors(
        inputs.map((input) => input.scores),
        cut,
      );
      let masks: tf.Tensor[];
      let counts: number[];
      if (direct !== undefined) {
        ({ masks, counts } = direct);
      } else {
        masks = inputs.map((input) => tf.tidy(() => tf.cast(tf.greater(input.scores, cut), 'float32')));
        const countsTensor = tf.tidy(() => tf.stack(masks.map((mask) => tf.sum(mask))));
        counts = Array.from(await readScores(countsTensor));
        countsTensor.dispose();
      }
      const sizes = inputs.map((input) => input.scores.size);
      const total = sizes.reduce((sum, size) => sum + size, 0);
      const kept = counts.reduce((sum, count) => sum + count, 0);
      if (kept === 0 && !hasFloor) {
        tf.dispose(masks);
        invalid(
          `threshold: τ = ${tau} is above every score, so the mask would keep nothing.`,
          'Lower the final threshold or the penalty λ, or set a minKeptFraction floor (for example 0.005).',
          ErrorCodes.EMPTY_MASK,
        );
      }
      // The floor: keep the top entries when the threshold keeps fewer than minKeptFraction.
      if (floorScope === 'global' && kept < floorOf(total)) {
        const values = await Promise.all(inputs.map((input) => readScores(input.scores)));
        const floored = topCountMasks(values, floorOf(total));
        masks.forEach((mask, index) => {
          mask.dispose();
          masks[index] = tf.tensor(floored[index]!, [...inputs[index]!.parameter.shape], 'float32');
        });
      } else if (floorScope === 'local') {
        for (const [index, input] of inputs.entries()) {
          if (counts[index]! >= floorOf(sizes[index]!)) continue;
          const floored = topCountMasks([await readScores(input.scores)], floorOf(sizes[index]!))[0]!;
          masks[index]!.dispose();
          masks[index] = tf.tensor(floored, [...input.parameter.shape], 'float32');
        }
      }
      return masks;
    },
    toConfig: () => ({ type: 'threshold', on, minKeptFraction, floorScope, floorCount, sigmoidComparison }),
  };
}

/**
 * How a penalty sums over the scores.
 *
 * @example
 * ```ts
 * const reduction: PenaltyReduction = 'meanPerParameter'; // as the reference implementation
 * ```
 */
export type PenaltyReduction = 'sum' | 'mean' | 'meanPerParameter';

/**
 * Options of {@link sigmoidPenalty}.
 *
 * @example
 * ```ts
 * const options: SigmoidPenaltyOptions = { lambda: 1e-5, rampWithThreshold: { finalThreshold: 0.1 } };
 * ```
 */
export interface SigmoidPenaltyOptions {
  /** λ_mvp ≥ 0. */
  lambda: number;
  /**
   * `sum` (default): λ Σ σ(S) over every learned score, as written in Sec. 4. `mean`: divided by the
   * number of scores. `meanPerParameter`: the mean of σ(S) of each matrix, averaged over matrices,
   * as the reference implementation computes it.
   */
  reduction?: PenaltyReduction;
  /**
   * Scale λ along the threshold schedule as the reference does: λ_t = λ · τ_t / τ_f, with τ_t the
   * current target of `group` (default the first group). `finalThreshold` must not be 0.
   */
  rampWithThreshold?: { finalThreshold: number; group?: string };
  /** Only the scores of these parameters; default every pruned parameter with learned scores. */
  parameters?: ParameterSelector;
}

/**
 * Reduces per-parameter penalty sums into one scalar (inside the gradient tape): their sum, their
 * sum over the total number of scores (`mean`), or the mean of each parameter's mean
 * (`meanPerParameter`). Shared by {@link sigmoidPenalty} and `l0Penalty`.
 *
 * @example
 * ```ts
 * reducePenalty([{ sum: tf.scalar(3), size: 4 }, { sum: tf.scalar(1), size: 2 }], 'meanPerParameter'); // (0.75 + 0.5)/2
 * ```
 */
export function reducePenalty(
  terms: ReadonlyArray<{ sum: tf.Scalar; size: number }>,
  reduction: PenaltyReduction,
): tf.Scalar {
  if (terms.length === 0) return tf.scalar(0);
  if (reduction === 'sum') return addMany(terms.map((term) => term.sum)) as tf.Scalar;
  if (reduction === 'mean') {
    const size = terms.reduce((total, term) => total + term.size, 0);
    return tf.div(addMany(terms.map((term) => term.sum)), size) as tf.Scalar;
  }
  return tf.div(addMany(terms.map((term) => tf.div(term.sum, term.size))), terms.length) as tf.Scalar;
}

/**
 * Checks a penalty's λ (finite, ≥ 0) and reduction; throws `INVALID_ARGUMENT` naming the owner.
 *
 * @example
 * ```ts
 * checkPenalty('myPenalty', 1e-5, 'sum');
 * ```
 */
export function checkPenalty(owner: string, lambda: number, reduction: string): void {
  if (!(lambda >= 0 && Number.isFinite(lambda)))
    invalid(
      `${owner}: lambda must be a finite number ≥ 0, got ${lambda}.`,
      'Pass a penalty weight such as 1e-5 (0 turns it off).',
    );
  if (!['sum', 'mean', 'meanPerParameter'].includes(reduction))
    invalid(
      `${owner}: reduction must be "sum", "mean" or "meanPerParameter", got ${JSON.stringify(reduction)}.`,
      'Use "sum" (the paper) or "meanPerParameter" (the reference code).',
    );
}

/**
 * The regulariser of soft movement pruning, R(S) = λ_mvp Σ σ(S) (Sec. 4 of Movement Pruning): it
 * pushes every score down, so that fewer stay above the threshold; λ sets the sparsity.
 *
 * @example
 * ```ts
 * const penalty = sigmoidPenalty({ lambda: 1e-5, rampWithThreshold: { finalThreshold: 0.1 } });
 * new Pruner({ ..., mask: threshold(), lossTerms: [penalty] });
 * ```
 */
export function sigmoidPenalty(options: SigmoidPenaltyOptions): LossTerm {
  const lambda = options?.lambda;
  const reduction = options.reduction ?? 'sum';
  checkPenalty('sigmoidPenalty', lambda, reduction);
  const ramp = options.rampWithThreshold;
  if (ramp !== undefined && !(Number.isFinite(ramp.finalThreshold) && ramp.finalThreshold !== 0))
    invalid(
      `sigmoidPenalty: rampWithThreshold.finalThreshold must be a finite non-zero number, got ${ramp.finalThreshold}.`,
      'Pass the final threshold of the schedule (for example 0.1).',
    );
  return {
    id: 'sigmoidPenalty',
    compute({ pruned, targets }) {
      let scale = lambda;
      if (ramp) {
        const group = ramp.group ?? Object.keys(targets)[0]!;
        const current = targets[group];
        if (current === undefined)
          invalid(
            `sigmoidPenalty: no pruning group "${group}"; the groups are ${Object.keys(targets).join(', ')}.`,
            'Name an existing group in rampWithThreshold.group.',
          );
        // λ_t = λ · τ_t / τ_f (the reference implementation's ramp)
        scale = (lambda * current) / ramp.finalThreshold;
      }
      return tf.tidy(() => {
        const terms = pruned
          .filter(
            ({ parameter, scores }) =>
              scores && (options.parameters === undefined || matchesSelector(parameter, options.parameters)),
          )
          // R(S) = λ_mvp Σ σ(S) (Sec. 4), one fused pass on wasm
          .map(({ scores }) => ({
            sum: sigmoidSumTensor(scores!, 0),
            size: scores!.size,
          }));
        return tf.mul(reducePenalty(terms, reduction), scale) as tf.Scalar;
      });
    },
    toConfig: () => ({
      type: 'sigmoidPenalty',
      lambda,
      reduction,
      ...(ramp
        ? {
            rampWithThreshold: {
              finalThreshold: ramp.finalThreshold,
              ...(ramp.group ? { group: ramp.group } : {}),
            },
          }
        : {}),
    }),
  };
}
