import * as tf from '@tensorflow/tfjs-core';
import type { ScoreStrategy } from '@fineprune/core';

/**
 * Magnitude scores S = |W| (Sec. 3 of Movement Pruning; Han et al., 2015). Computed from the weights
 * whenever masks are re-selected; nothing is learned.
 *
 * @example
 * ```ts
 * const pruner = new Pruner({ model, scores: magnitude(), mask: topV(), schedule, optimizers });
 * ```
 */
export function magnitude(): ScoreStrategy {
  return {
    id: 'magnitude',
    learnable: false,
    compute: ({ parameter }) => tf.abs(parameter.weight),
    toConfig: () => ({ type: 'magnitude' }),
  };
}
