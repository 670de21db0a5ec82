import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes } from '@fineprune/tensor/errors';
import { fail } from './fail';
import { PluginDriver } from './plugin-driver';
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
}

/**
 * Computes the scores of every parameter, has the mask function turn them into masks for the
 * target, checks one mask per parameter with its shape, and assigns them. Errors of the plugins
 * are tagged with the plugin, the method and the step. Scores and masks are disposed.
 *
 * @example
 * ```ts
 * await assignMasks({ parameters, scores: magnitude(), mask: topV(), target: 0.5, context });
 * ```
 */
export async function assignMasks(selection: MaskSelection): Promise<void> {
  const { parameters, scores, mask, target, context } = selection;
  const step = context.step;
  const inputs: Array<{ parameter: PrunableParameter; scores: tf.Tensor }> = [];
  let masks: tf.Tensor[] = [];
  try {
    for (const [index, parameter] of parameters.entries()) {
      const computed = await PluginDriver.call(scores, 'compute', step, () =>
        scores.compute({ parameter, scores: selection.scoreVariables?.[index] }, context),
      );
      inputs.push({ parameter, scores: computed });
    }
    masks = await PluginDriver.call(mask, 'compute', step, () => mask.compute(inputs, target, context));
    if (masks.length !== parameters.length) {
      fail(
        `Mask function "${mask.id}" returned ${masks.length} masks for ${parameters.length} parameters.`,
        'Return one mask per input, in order.',
      );
    }
    for (const [index, parameter] of parameters.entries()) {
      const next = masks[index]!;
      if (!tf.util.arraysEqual(next.shape, [...parameter.shape])) {
        fail(
          `Mask function "${mask.id}" returned shape [${next.shape}] for "${parameter.name}" of shape [${parameter.shape}].`,
          'Return masks with the shapes of the weights.',
          ErrorCodes.SHAPE_MISMATCH,
        );
      }
      parameter.mask.assign(next.dtype === 'float32' ? next : tf.tidy(() => tf.cast(next, 'float32')));
    }
  } finally {
    for (const input of inputs) input.scores.dispose();
    for (const next of masks) next.dispose();
  }
}
