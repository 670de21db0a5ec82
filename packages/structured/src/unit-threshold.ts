import { ErrorCodes, type MaskFunction } from '@fineprune/core';
import { checkChoice, invalid } from './errors';
import { masksFromWeightScores } from './pooled-units';
import { readUnitScores, unitMaskTensors, unitsAbove } from './unit-selection';

/**
 * Options of {@link unitThreshold}.
 *
 * @example
 * ```ts
 * const options: UnitThresholdOptions = { on: 'sigmoid', minKeptUnits: 2 };
 * ```
 */
export interface UnitThresholdOptions {
  /** Compare the unit score S (`scores`, default) or σ(S) (`sigmoid`, τ in (0, 1)) with τ. */
  on?: 'scores' | 'sigmoid';
  /** Units each structure keeps at least (its best ones), a whole number ≥ 1; default 1. */
  minKeptUnits?: number;
}

/**
 * Soft movement pruning by units: keep the units whose score is above the threshold τ of a
 * threshold schedule (S > τ, or σ(S) > τ with `on: 'sigmoid'`, Sec. 4 of Movement Pruning), each
 * structure keeping at least its `minKeptUnits` best. The sparsity is not set but follows from the
 * scores; `unitSigmoidPenalty()` pushes learned unit scores down. With per-weight scores it compares
 * the sum of each unit's scores.
 *
 * @example
 * ```ts
 * new Pruner({ model: prunable, scores: unitMovement(), mask: unitThreshold(),
 *   schedule: cubicThreshold({ initialThreshold: 0, finalThreshold: 0.1, totalSteps: 600 }),
 *   lossTerms: [unitSigmoidPenalty({ lambda: 1e-3 })], optimizers });
 * ```
 */
export function unitThreshold(options: UnitThresholdOptions = {}): MaskFunction {
  const on = checkChoice('unitThreshold', 'on', options.on ?? 'scores', ['scores', 'sigmoid'] as const);
  const minKeptUnits = options.minKeptUnits ?? 1;
  if (!(Number.isInteger(minKeptUnits) && minKeptUnits >= 1))
    invalid(
      `unitThreshold: minKeptUnits must be a whole number ≥ 1, got ${minKeptUnits}.`,
      'Use 1 (the default): a structure without units disconnects the network.',
      ErrorCodes.INVALID_SPARSITY,
    );
  const mask: MaskFunction = {
    id: 'unitThreshold',
    targetKind: 'threshold',
    requiresStructures: true,
    async computeUnits(inputs, tau) {
      return unitMaskTensors(unitsAbove(await readUnitScores(inputs), tau, on, minKeptUnits));
    },
    compute: (inputs, tau, context) =>
      masksFromWeightScores(inputs, context, (units) =>
        Promise.resolve(mask.computeUnits!(units, tau, context)),
      ),
    toConfig: () => ({ type: 'unitThreshold', on, minKeptUnits }),
  };
  return mask;
}
