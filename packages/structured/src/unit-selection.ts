import * as tf from '@tensorflow/tfjs-core';
import {
  ErrorCodes,
  FinepruneError,
  type KeptCountRule,
  keptCountFor,
  type UnitMaskInput,
} from '@fineprune/core';
import { topCountMasks } from '@fineprune/tensor/select';
import { invalid } from './errors';

/**
 * The unit scores of each structure, read as Float32Arrays (copies), in order.
 *
 * @example
 * ```ts
 * const [scores] = await readUnitScores([{ structure, scores: tf.tensor1d([3, 1, 2]) }]);
 * ```
 */
export async function readUnitScores(inputs: readonly UnitMaskInput[]): Promise<Float32Array[]> {
  return Promise.all(inputs.map(async (input) => Float32Array.from(await input.scores.data())));
}

function emptyUnits(owner: string, over: string, total: number, sparsity: number): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.EMPTY_MASK,
    message: `${owner}: at sparsity ${sparsity} ${over} (${total} units) would keep none of its units.`,
    fix: `Lower the final sparsity below ${1 - 0.5 / total}, so that at least one unit is kept.`,
    details: { mask: owner, total },
  });
}

/** In each structure that kept no unit, keeps its best one (a layer with no unit cuts the network). */
function keepOneEach(masks: Float32Array[], scores: readonly Float32Array[]): Float32Array[] {
  return masks.map((mask, index) =>
    mask.some((value) => value === 1) ? mask : topCountMasks([scores[index]!], 1)[0]!,
  );
}

/**
 * Top-v over units (Eq. 1 of Movement Pruning with units in place of weights): per structure
 * (`local`) keeps `count − round(v · count)` units of each (or another kept-count rule); across the
 * structures (`global`) keeps that many of all their units together, and a structure that would
 * keep none keeps its best unit. Ties go to the lower index (earlier structure first). A local
 * target that keeps no unit of a structure, or a global one that keeps none at all, is `EMPTY_MASK`.
 *
 * @example
 * ```ts
 * topUnits([Float32Array.of(3, 1, 2)], ['fc1/neurons'], 0.5, 'local', 'round'); // [[1, 0, 1]]
 * ```
 */
export function topUnits(
  scores: readonly Float32Array[],
  names: readonly string[],
  sparsity: number,
  scope: 'local' | 'global',
  rule: KeptCountRule,
): Float32Array[] {
  if (!(sparsity >= 0 && sparsity < 1))
    invalid(
      `unitTopV: the target sparsity must be in [0, 1), got ${sparsity}.`,
      'Give the schedule a final sparsity below 1.',
      ErrorCodes.INVALID_SPARSITY,
    );
  if (scope === 'global') {
    const total = scores.reduce((sum, values) => sum + values.length, 0);
    const kept = keptCountFor(total, sparsity, rule);
    if (kept === 0) throw emptyUnits('unitTopV', `the group of ${names.length} structures`, total, sparsity);
    return keepOneEach(topCountMasks(scores, kept), scores);
  }
  return scores.map((values, index) => {
    const kept = keptCountFor(values.length, sparsity, rule);
    if (kept === 0) throw emptyUnits('unitTopV', JSON.stringify(names[index]), values.length, sparsity);
    return topCountMasks([values], kept)[0]!;
  });
}

/**
 * The units scored above τ in each structure, and at least its `minKept` best units (a structure
 * left without units disconnects the network). With `on: 'sigmoid'` the comparison is σ(S) > τ, that
 * is S > logit(τ) for τ in (0, 1) (soft movement pruning's σ(S) > τ, Sec. 4 of Movement Pruning).
 *
 * @example
 * ```ts
 * unitsAbove([Float32Array.of(3, -1, 2)], 1.5, 'scores', 1); // [[1, 0, 1]]
 * ```
 */
export function unitsAbove(
  scores: readonly Float32Array[],
  tau: number,
  on: 'scores' | 'sigmoid',
  minKept: number,
): Float32Array[] {
  if (Number.isNaN(tau) || (on === 'sigmoid' && !(tau > 0 && tau < 1)))
    invalid(
      `unitThreshold: the threshold τ must be a number${on === 'sigmoid' ? ' in (0, 1) for σ(S) > τ' : ''}, got ${tau}.`,
      'Use a threshold schedule with values in range.',
      ErrorCodes.INVALID_SPARSITY,
    );
  const cut = on === 'sigmoid' ? Math.log(tau / (1 - tau)) : tau;
  return scores.map((values) => {
    const kept = values.map((value) => (value > cut ? 1 : 0));
    const count = kept.reduce((sum, value) => sum + value, 0);
    const floor = Math.min(minKept, values.length);
    return count >= floor ? kept : topCountMasks([values], floor)[0]!;
  });
}

/**
 * Unit masks as tensors, one `[count]` float32 tensor per structure.
 *
 * @example
 * ```ts
 * const tensors = unitMaskTensors([Float32Array.of(1, 0, 1)]);
 * ```
 */
export function unitMaskTensors(masks: readonly Float32Array[]): tf.Tensor[] {
  return masks.map((mask) => tf.tensor1d(mask, 'float32'));
}
