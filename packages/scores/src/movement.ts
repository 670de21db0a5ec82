import type { ScoreStrategy } from '@fineprune/core';
import { checkScoreInit, createScoreVariable, type ScoreInit } from './init';

/**
 * Options of {@link movement}.
 *
 * @example
 * ```ts
 * const options: MovementOptions = { init: { type: 'uniform', scale: 0.01 } };
 * ```
 */
export interface MovementOptions {
  /** How the scores start; default `{ type: 'constant', value: 0 }` as in the reference implementation. */
  init?: ScoreInit;
}

/**
 * Movement scores (Sec. 4 of Movement Pruning): a learned score S per prunable weight, trained by the
 * score optimizer (its own learning rate α_S, separate from the weights'). The Pruner's default
 * forward `maskedWeight(W, M, S)` sends the straight-through gradient of Eq. (2) to S,
 * ∂L/∂S_ij = ∂L/∂a_i · W_ij · x_j, to every score — also to the scores of masked weights — so under
 * plain SGD S accumulates the movement −α_S Σ_t (∂L/∂W)^(t) W^(t) of Eq. (4).
 *
 * Use it with `topV` (hard movement pruning, MvP) or `threshold` plus `sigmoidPenalty` (soft
 * movement pruning, SMvP) from `@fineprune/masks`.
 *
 * @example
 * ```ts
 * const pruner = new Pruner({
 *   model,
 *   scores: movement(),
 *   mask: topV({ scope: 'local' }),
 *   schedule: cubic({ finalSparsity: 0.9, totalSteps: 1800, warmupSteps: 180, cooldownSteps: 360 }),
 *   optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) },
 * });
 * ```
 */
export function movement(options: MovementOptions = {}): ScoreStrategy {
  const init = checkScoreInit(options.init, 'movement');
  return {
    id: 'movement',
    learnable: true,
    createScores: (parameter, context) => createScoreVariable(parameter, init, context),
    // Top-v and threshold rank S itself (Eq. 1); clone, because the caller disposes what it gets.
    compute: ({ scores }) => scores!.clone(),
    toConfig: () => ({ type: 'movement', init }),
  };
}
