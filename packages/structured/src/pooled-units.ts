import * as tf from '@tensorflow/tfjs-core';
import {
  type MaskInput,
  type PluginContext,
  parameterMasksFromUnits,
  poolUnits,
  type Structure,
  structuresOf,
  type UnitMaskInput,
} from '@fineprune/core';
import { addMany } from '@fineprune/tensor';

/**
 * The per-weight scores of a group summed over each unit of every structure that touches it (with
 * `magnitude()` scores |W|, the L1 norm of each unit), as unit-mask inputs.
 *
 * @example
 * ```ts
 * const units = pooledUnitInputs(inputs, structuresOf(context.model, inputs.map((input) => input.parameter)));
 * ```
 */
export function pooledUnitInputs(
  inputs: readonly MaskInput[],
  structures: readonly Structure[],
): UnitMaskInput[] {
  const byName = new Map(inputs.map((input) => [input.parameter.name, input.scores]));
  return structures.map((structure) => ({
    structure,
    scores: tf.tidy(() =>
      addMany(
        structure.members.map((member) =>
          poolUnits(byName.get(member.parameter)!, member, structure.count, 'sum'),
        ),
      ),
    ),
  }));
}

/**
 * A unit mask's `compute` for per-weight scores (`magnitude()`, `movement()`): pools the scores of
 * each unit of the model's structures that touch the inputs ({@link pooledUnitInputs}), selects
 * units with `selectUnits`, and spreads the unit masks over the parameters (a weight is kept when
 * every unit it belongs to is kept; weights of no structure are kept).
 *
 * @example
 * ```ts
 * compute: (inputs, target, context) => masksFromWeightScores(inputs, context, (units) => select(units, target)),
 * ```
 */
export async function masksFromWeightScores(
  inputs: readonly MaskInput[],
  context: PluginContext,
  selectUnits: (units: readonly UnitMaskInput[]) => Promise<tf.Tensor[]>,
): Promise<tf.Tensor[]> {
  const parameters = inputs.map((input) => input.parameter);
  const structures = structuresOf(context.model, parameters);
  const units = pooledUnitInputs(inputs, structures);
  let unitMasks: tf.Tensor[] = [];
  try {
    unitMasks = await selectUnits(units);
    return parameterMasksFromUnits(structures, unitMasks, parameters);
  } finally {
    tf.dispose([...units.map((unit) => unit.scores), ...unitMasks]);
  }
}
