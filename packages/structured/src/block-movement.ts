import * as tf from '@tensorflow/tfjs-core';
import {
  type BlockSize,
  blockGrid,
  expandBlocks,
  poolBlocks,
  type PrunableParameter,
  type ScoreStrategy,
} from '@fineprune/core';
import { checkGroupScoreInit, createGroupScores, type GroupScoreInit } from './score-init';

/**
 * Options of {@link blockMovement}.
 *
 * @example
 * ```ts
 * const options: BlockMovementOptions = { rows: 32, cols: 32, init: { type: 'constant' } };
 * ```
 */
export interface BlockMovementOptions extends BlockSize {
  /** How the block scores start; default `{ type: 'constant', value: 0 }`. */
  init?: GroupScoreInit;
}

/**
 * Block movement pruning (as nn_pruning prunes 32 × 32 attention blocks): one learned score per
 * `rows × cols` block of the last two axes of each weight (shape `[gridRows, gridCols]`; leading
 * axes such as kernel taps lie inside each block). Spread over the weight in the forward pass, each
 * block's score receives the straight-through gradient of Eq. 2 of Movement Pruning summed over its
 * entries: ∂L/∂S_b = Σ_{(i,j) ∈ b} ∂L/∂(W ⊙ M)_ij · W_ij. Rank them with `block()` of
 * `@fineprune/masks` with the same sizes and `pool: 'mean'` (the block's own score), Top-v local or
 * global, or `selection: 'threshold'` for soft movement pruning by block.
 *
 * @example
 * ```ts
 * new Pruner({ model: prunable, scores: blockMovement({ rows: 32, cols: 32 }),
 *   mask: block({ rows: 32, cols: 32, pool: 'mean' }), schedule: cubic({ finalSparsity: 0.5, totalSteps: 600 }), optimizers });
 * ```
 */
export function blockMovement(options: BlockMovementOptions): ScoreStrategy {
  const size: BlockSize = { rows: options?.rows, cols: options?.cols };
  // Check the sizes once, on a shape every size fits.
  blockGrid([Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], size, 'blockMovement');
  const init = checkGroupScoreInit(options.init, 'blockMovement');
  const gridOf = (parameter: PrunableParameter) =>
    blockGrid(parameter.shape, size, 'blockMovement', parameter.name);
  return {
    id: 'blockMovement',
    learnable: true,
    createScores: (parameter, context) => {
      const grid = gridOf(parameter);
      return createGroupScores([grid.gridRows, grid.gridCols], init, context, () =>
        tf.sqrt(poolBlocks(parameter.weight, grid, 'sumOfSquares')),
      );
    },
    expandScores: (scores, parameter) => expandBlocks(scores, gridOf(parameter), parameter.shape),
    compute: ({ parameter, scores }) => expandBlocks(scores!, gridOf(parameter), parameter.shape),
    toConfig: () => ({ type: 'blockMovement', rows: size.rows, cols: size.cols, init }),
  };
}
