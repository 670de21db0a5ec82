import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError, type MaskFunction, type MaskInput } from '@fineprune/core';
import { topCountMasks } from '@fineprune/tensor';
import { readScoresTransient } from './read-scores';

/** Options of {@link topV}. */
export interface TopVOptions {
  /**
   * `local` keeps the top (1 − v) of each matrix separately; `global` ranks all the group's
   * scores together, so layers end with different sparsities. Default `local`.
   */
  scope?: 'local' | 'global';
}

/** Number of entries kept out of `total` at sparsity `sparsity`: total − round(v·total). */
export function keptCount(total: number, sparsity: number): number {
  return total - Math.round(sparsity * total);
}

/**
 * The Top-v mask of Eq. (1) of Movement Pruning: M = Top_v(S) keeps the entries with the largest
 * scores, exactly `total − round(v · total)` of them; ties at the threshold go to the lowest index
 * (earlier parameter first, for global selection), so the mask is deterministic.
 *
 * The default transform is straight-through (Eq. 2): the forward pass uses W ⊙ M and learned
 * scores receive dL/d(W ⊙ M) ⊙ W.
 *
 * @example
 * ```ts
 * const mask = topV({ scope: 'global' });
 * const [m1, m2] = await mask.compute([{ parameter: p1, scores: s1 }, { parameter: p2, scores: s2 }], 0.9, context);
 * ```
 */
export function topV(options: TopVOptions = {}): MaskFunction {
  const scope = options.scope ?? 'local';
  if (scope !== 'local' && scope !== 'global') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `topV: scope must be "local" or "global", got ${JSON.stringify(scope)}.`,
      fix: 'Use "local" to prune each matrix to the same sparsity, "global" to rank all matrices together.',
    });
  }
  return {
    id: 'topV',
    targetKind: 'sparsity',
    async compute(inputs: readonly MaskInput[], sparsity: number) {
      if (!(sparsity >= 0 && sparsity < 1)) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_SPARSITY,
          message: `topV: sparsity must be in [0, 1), got ${sparsity}.`,
          fix: 'Give the schedule a final sparsity below 1.',
        });
      }
      // The score arrays may be views of backend memory, valid only until the next tensor is
      // allocated: select every mask before creating any tensor.
      const scores = await readScoresTransient(inputs.map((input) => input.scores));
      let masks: Float32Array[];
      if (scope === 'global') {
        const total = scores.reduce((sum, values) => sum + values.length, 0);
        masks = topCountMasks(scores, keptCount(total, sparsity));
      } else {
        masks = scores.map((values) => topCountMasks([values], keptCount(values.length, sparsity))[0]!);
      }
      return masks.map((mask, index) => tf.tensor(mask, [...inputs[index]!.parameter.shape], 'float32'));
    },
    toConfig: () => ({ type: 'topV', scope }),
  };
}
