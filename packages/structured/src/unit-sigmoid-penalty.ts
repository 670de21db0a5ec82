import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, type LossTerm } from '@fineprune/core';
import { addMany } from '@fineprune/tensor';
import { invalid } from './errors';

/**
 * Options of {@link unitSigmoidPenalty}.
 *
 * @example
 * ```ts
 * const options: UnitSigmoidPenaltyOptions = { lambda: 1e-3 };
 * ```
 */
export interface UnitSigmoidPenaltyOptions {
  /** λ ≥ 0. */
  lambda: number;
}

/**
 * The soft movement pruning penalty λ_mvp Σ σ(S) of Sec. 4 of Movement Pruning, over learned unit
 * scores (one per neuron, filter or head) instead of weight scores: it pushes the unit scores down,
 * so that `unitThreshold()` removes the units whose score the task does not hold up. It needs
 * learned unit scores (`unitMovement()`) in some pruning group.
 *
 * @example
 * ```ts
 * lossTerms: [unitSigmoidPenalty({ lambda: 1e-3 })]
 * ```
 */
export function unitSigmoidPenalty(options: UnitSigmoidPenaltyOptions): LossTerm {
  const lambda = options?.lambda;
  if (!(typeof lambda === 'number' && lambda >= 0 && Number.isFinite(lambda)))
    invalid(
      `unitSigmoidPenalty: lambda must be a finite number ≥ 0, got ${lambda}.`,
      'Use a small λ such as 1e-3.',
    );
  return {
    id: 'unitSigmoidPenalty',
    compute({ prunedUnits }) {
      const scores = (prunedUnits ?? []).flatMap((unit) => (unit.scores ? [unit.scores] : []));
      if (scores.length === 0)
        invalid(
          'unitSigmoidPenalty: no pruning group learns unit scores, so there is nothing to penalise.',
          'Use unitMovement() as the scores of a group with unitThreshold(), or remove the penalty.',
          ErrorCodes.INCOMPATIBLE_PLUGINS,
        );
      // λ_mvp Σ_u σ(S_u) (Sec. 4 of Movement Pruning, applied to unit scores)
      return tf.tidy(
        () => tf.mul(addMany(scores.map((values) => tf.sum(tf.sigmoid(values)))), lambda) as tf.Scalar,
      );
    },
    toConfig: () => ({ type: 'unitSigmoidPenalty', lambda }),
  };
}
