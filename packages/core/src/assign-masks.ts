import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes } from '@fineprune/tensor/errors';
import { fail } from './fail';
import { PluginDriver } from './plugin-driver';
import { parameterMasksFromUnits, type Structure } from './structures';
import type { MaskFunction, PluginContext, PrunableParameter, ScoreStrategy } from './types';

/** One mask selection: the parameters of a group, its score strategy and mask function, and the target. */
export interface MaskSelection {
  readonly parameters: readonly PrunableParameter[];
  readonly scores: ScoreStrategy;
  /** The learned score variable of each parameter, in order (none for computed scores). */
  readonly scoreVariables?: ReadonlyArray<tf.Variable | undefined>;
  readonly mask: MaskFunction;
  readonly target: number;
  readonly context: PluginContext;
  /**
   * The structures of the group (from `structuresForGroup`); with a score strategy that scores
   * units, masks are selected per unit and spread over the parameters.
   */
  readonly structures?: readonly Structure[];
  /** The learned scores of each structure, in order (learnable unit strategies). */
  readonly unitScoreVariables?: ReadonlyArray<tf.Variable | undefined>;
}

/** Checks that a plugin returned one tensor of the expected shape per item, in order. */
function checkReturned(
  mask: MaskFunction,
  returned: readonly tf.Tensor[],
  expected: ReadonlyArray<{ name: string; shape: readonly number[] }>,
  what: string,
): void {
  if (returned.length !== expected.length) {
    fail(
      what === 'unit'
        ? `Mask function "${mask.id}" returned ${returned.length} unit masks for ${expected.length} structures.`
        : `Mask function "${mask.id}" returned ${returned.length} masks for ${expected.length} parameters.`,
      'Return one mask per input, in order.',
    );
  }
  expected.forEach(({ name, shape }, index) => {
    if (!tf.util.arraysEqual(returned[index]!.shape, [...shape])) {
      fail(
        `Mask function "${mask.id}" returned shape [${returned[index]!.shape}] for "${name}" of shape [${shape}].`,
        what === 'unit'
          ? 'Return one [count] mask per structure.'
          : 'Return masks with the shapes of the weights.',
        ErrorCodes.SHAPE_MISMATCH,
      );
    }
  });
}

function assign(parameters: readonly PrunableParameter[], masks: readonly tf.Tensor[]): void {
  parameters.forEach((parameter, index) => {
    const next = masks[index]!;
    parameter.mask.assign(next.dtype === 'float32' ? next : tf.tidy(() => tf.cast(next, 'float32')));
  });
}

/** The unit path: one score per unit, unit masks, spread over the parameters. */
async function assignUnitMasks(selection: MaskSelection, structures: readonly Structure[]): Promise<void> {
  const { parameters, scores, mask, target, context } = selection;
  const step = context.step;
  const byName = new Map(parameters.map((parameter) => [parameter.name, parameter]));
  const unitScores: tf.Tensor[] = [];
  let unitMasks: tf.Tensor[] = [];
  let masks: tf.Tensor[] = [];
  try {
    for (const [index, structure] of structures.entries()) {
      const members = structure.members.map((member) => byName.get(member.parameter)!);
      const computed = await PluginDriver.call(scores, 'computeUnits', step, () =>
        scores.computeUnits!({ structure, members, scores: selection.unitScoreVariables?.[index] }, context),
      );
      unitScores.push(computed);
      if (!tf.util.arraysEqual(computed.shape, [structure.count])) {
        fail(
          `Score strategy "${scores.id}" returned shape [${computed.shape}] for structure "${structure.name}" of ${structure.count} units.`,
          'Return one score per unit, shape [count].',
          ErrorCodes.SHAPE_MISMATCH,
        );
      }
    }
    const inputs = structures.map((structure, index) => ({ structure, scores: unitScores[index]! }));
    unitMasks = await PluginDriver.call(mask, 'computeUnits', step, () =>
      mask.computeUnits!(inputs, target, context),
    );
    checkReturned(
      mask,
      unitMasks,
      structures.map((structure) => ({ name: structure.name, shape: [structure.count] })),
      'unit',
    );
    masks = parameterMasksFromUnits(structures, unitMasks, parameters);
    assign(parameters, masks);
  } finally {
    tf.dispose([...unitScores, ...unitMasks, ...masks]);
  }
}

/**
 * Computes the scores of every parameter, has the mask function turn them into masks for the
 * target, checks one mask per parameter with its shape, and assigns them. With a score strategy
 * that scores units (`computeUnits`), it scores each structure instead, has the mask function
 * select units (`computeUnits`) and spreads the unit masks over the parameters. Errors of the
 * plugins are tagged with the plugin, the method and the step. Scores and masks are disposed.
 *
 * @example
 * ```ts
 * await assignMasks({ parameters, scores: magnitude(), mask: topV(), target: 0.5, context });
 * ```
 */
export async function assignMasks(selection: MaskSelection): Promise<void> {
  const { parameters, scores, mask, target, context } = selection;
  if (typeof scores.computeUnits === 'function')
    return assignUnitMasks(selection, selection.structures ?? []);
  const step = context.step;
  const inputs: Array<{ parameter: PrunableParameter; scores: tf.Tensor; previousMask: tf.Tensor }> = [];
  let masks: tf.Tensor[] = [];
  try {
    for (const [index, parameter] of parameters.entries()) {
      const computed = await PluginDriver.call(scores, 'compute', step, () =>
        scores.compute({ parameter, scores: selection.scoreVariables?.[index] }, context),
      );
      inputs.push({ parameter, scores: computed, previousMask: parameter.mask });
    }
    masks = await PluginDriver.call(mask, 'compute', step, () => mask.compute(inputs, target, context));
    checkReturned(mask, masks, parameters, 'weight');
    assign(parameters, masks);
  } finally {
    for (const input of inputs) input.scores.dispose();
    for (const next of masks) next.dispose();
  }
}

/**
 * Writes the masks of a mask function that computes them on demand ({@link MaskFunction.masksOnDemand}):
 * the function gets each parameter with its learned score variable, and its masks are checked
 * (one per parameter, with its shape), assigned and disposed. Synchronous, with no other checks: the
 * pruner runs the full {@link assignMasks} at its mask interval.
 *
 * @example
 * ```ts
 * writeMasksOnDemand({ parameters, scores: l0(), scoreVariables, mask: hardConcrete(), target: 0, context });
 * ```
 */
export function writeMasksOnDemand(selection: MaskSelection): void {
  const { parameters, mask, context } = selection;
  const inputs = parameters.map((parameter, index) => ({
    parameter,
    scores: selection.scoreVariables![index]!,
    previousMask: parameter.mask,
  }));
  const masks = PluginDriver.callSync(mask, 'masksOnDemand', context.step, () =>
    mask.masksOnDemand!(inputs, context),
  );
  try {
    checkReturned(mask, masks, parameters, 'weight');
    assign(parameters, masks);
  } finally {
    tf.dispose(masks);
  }
}
