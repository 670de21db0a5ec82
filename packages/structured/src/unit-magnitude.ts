import * as tf from '@tensorflow/tfjs-core';
import { poolUnits, type PrunableParameter, type ScoreStrategy, type Structure } from '@fineprune/core';
import { addMany } from '@fineprune/tensor';
import { checkChoice } from './errors';

/**
 * The norm of each unit of a structure over every member: the L2 norm √(Σ w²) of all the weights
 * the unit owns (its column in one kernel, its row in the next…), or their L1 norm Σ |w|.
 *
 * @example
 * ```ts
 * const norms = unitNorms(structure, members, 'l2'); // shape [structure.count]
 * ```
 */
export function unitNorms(
  structure: Structure,
  members: readonly PrunableParameter[],
  norm: 'l1' | 'l2' = 'l2',
): tf.Tensor1D {
  return tf.tidy(() => {
    const pooled = structure.members.map((member, index) => {
      const weight = members[index]!.weight;
      return norm === 'l2'
        ? poolUnits(weight, member, structure.count, 'sumOfSquares')
        : poolUnits(tf.abs(weight), member, structure.count, 'sum');
    });
    const total = addMany(pooled);
    return (norm === 'l2' ? tf.sqrt(total) : total) as tf.Tensor1D;
  });
}

/**
 * Options of {@link unitMagnitude}.
 *
 * @example
 * ```ts
 * const options: UnitMagnitudeOptions = { norm: 'l1' };
 * ```
 */
export interface UnitMagnitudeOptions {
  /** `l2` (default): a unit's L2 norm over every member slice; `l1`: the sum of |w|. */
  norm?: 'l1' | 'l2';
}

/**
 * Magnitude scores of whole units: one score per neuron, filter or head, the norm of every weight
 * it owns across the structure's members (a neuron's kernel column and the next kernel's row; a
 * filter, its batch-norm entries' parameters when prunable, and the next convolution's input
 * channel). Use it with `unitTopV()` (gradual magnitude pruning of units with a cubic schedule).
 *
 * @example
 * ```ts
 * await pruneOnce(prunable, { scores: unitMagnitude(), mask: unitTopV(), sparsity: 0.5 });
 * ```
 */
export function unitMagnitude(options: UnitMagnitudeOptions = {}): ScoreStrategy {
  const norm = checkChoice('unitMagnitude', 'norm', options.norm ?? 'l2', ['l2', 'l1'] as const);
  return {
    id: 'unitMagnitude',
    learnable: false,
    compute: ({ parameter }) => tf.abs(parameter.weight),
    computeUnits: ({ structure, members }) => unitNorms(structure, members, norm),
    toConfig: () => ({ type: 'unitMagnitude', norm }),
  };
}
