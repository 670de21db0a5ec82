import * as tf from '@tensorflow/tfjs-core';
import type { ScoreStrategy } from '@fineprune/core';
import { checkGroupScoreInit, createGroupScores, type GroupScoreInit } from './score-init';
import { unitNorms } from './unit-magnitude';

/**
 * Options of {@link unitMovement}.
 *
 * @example
 * ```ts
 * const options: UnitMovementOptions = { init: { type: 'magnitude' } };
 * ```
 */
export interface UnitMovementOptions {
  /** How the unit scores start; default `{ type: 'constant', value: 0 }`. */
  init?: GroupScoreInit;
}

/**
 * Movement scores of whole units: one learned score S_u per neuron, filter or head, trained by the
 * score optimizer. The forward pass uses W ⊙ M with the unit masks spread over every member, and
 * the Pruner routes the straight-through gradient of Eq. 2 of Movement Pruning, summed over the
 * unit: ∂L/∂S_u = Σ_{(i,j) ∈ u} ∂L/∂(W ⊙ M)_ij · W_ij, over every member slice of the unit. Use it
 * with `unitTopV()` (hard) or `unitThreshold()` with `unitSigmoidPenalty()` (soft).
 *
 * @example
 * ```ts
 * new Pruner({ model: prunable, scores: unitMovement({ init: { type: 'uniform', scale: 0.01 } }),
 *   mask: unitTopV(), schedule: cubic({ finalSparsity: 0.75, totalSteps: 600, warmupSteps: 60 }),
 *   optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) } });
 * ```
 */
export function unitMovement(options: UnitMovementOptions = {}): ScoreStrategy {
  const init = checkGroupScoreInit(options.init, 'unitMovement');
  return {
    id: 'unitMovement',
    learnable: true,
    createUnitScores: (structure, context) => {
      const members = () => {
        const byName = new Map(context.model.parameters().map((parameter) => [parameter.name, parameter]));
        return structure.members.map((member) => byName.get(member.parameter)!);
      };
      return createGroupScores([structure.count], init, context, () => unitNorms(structure, members()));
    },
    // Only unit masks rank these scores (computeUnits); a weight mask never sees them.
    compute: ({ parameter }) => tf.zeros([...parameter.shape]),
    computeUnits: ({ scores }) => scores!.clone(),
    toConfig: () => ({ type: 'unitMovement', init }),
  };
}
