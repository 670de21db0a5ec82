/**
 * The masked weight W ⊙ M with a straight-through gradient to the scores that produced M.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';
// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';

export function checkSameShape(name: string, tensor: tf.Tensor, weight: tf.Tensor): void {
  if (!tf.util.arraysEqual(tensor.shape, weight.shape)) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `The ${name} has shape [${tensor.shape}] but the weight has shape [${weight.shape}].`,
      fix: `Build the ${name} from the weight it masks, so both have the same shape.`,
      details: { [`${name}Shape`]: tensor.shape, weightShape: weight.shape },
    });
  }
}

/**
 * The masked weight W ⊙ M, differentiable in W and, when given, in the scores S behind the mask.
 *
 * - Gradient to W: dy ⊙ M, so pruned weights receive no update.
 * - Gradient to S: dy ⊙ W, straight through the (non-differentiable) mask: Eq. 2 of Movement
 *   Pruning (Sanh et al., 2020), ∂L/∂S_ij = ∂L/∂a_i · W_ij · x_j, with M treated as the identity.
 * - No gradient flows to M itself: it is a constant of the operation, not an input.
 *
 * @param weight - W, float32
 * @param mask - M, same shape as W (0/1 or soft values; cast to float32)
 * @param scores - S, same shape as W; pass it to get ∂L/∂S from `tf.grads`/`tf.variableGrads`
 * @returns W ⊙ M (a new tensor)
 * @throws FinepruneError `SHAPE_MISMATCH` when the mask or the scores do not match W's shape
 *
 * @example
 * ```ts
 * const [dW, dS] = tf.grads((w, s) => tf.sum(tf.matMul(maskedWeight(w, mask, s), x)))([w, scores]);
 * ```
 */
export function maskedWeight(weight: tf.Tensor, mask: tf.Tensor, scores?: tf.Tensor): tf.Tensor {
  checkSameShape('mask', mask, weight);
  if (scores === undefined) {
    const masked = tf.customGrad((w, save) => {
      const m = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
      const kept = keptForBackward([m], save as tf.GradSaveFunc);
      return {
        value: tf.mul(w as tf.Tensor, m), // forward: W ⊙ M
        gradFunc: (dy, saved) => tf.mul(dy, kept(saved)[0]!), // ∂L/∂W = dy ⊙ M
      };
    });
    return masked(weight);
  }
  checkSameShape('scores', scores, weight);
  const masked = tf.customGrad((w, _scores, save) => {
    const m = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
    const kept = keptForBackward([w as tf.Tensor, m], save as tf.GradSaveFunc);
    return {
      value: tf.mul(w as tf.Tensor, m), // forward: W ⊙ M, the scores only act in backward
      gradFunc: (dy, saved) => {
        const [weightKept, maskKept] = kept(saved);
        return [
          tf.mul(dy, maskKept!), // ∂L/∂W = dy ⊙ M
          tf.mul(dy, weightKept!), // ∂L/∂S = dy ⊙ W (straight-through, Movement Pruning Eq. 2)
        ];
      },
    };
  });
  return masked(weight, scores);
}

/**
 * What the backward pass reads: variables as they are — a step does not assign W or M between its
 * forward and backward passes, and TF.js would otherwise copy each (wasm's `Identity` copies the
 * data: two 1 MB copies per matrix of the 784-300 MLP at every step) — and any other tensor as the
 * copy `save` keeps alive, since the caller may dispose it before the gradient is taken.
 */
function keptForBackward(tensors: tf.Tensor[], save: tf.GradSaveFunc): (saved: tf.Tensor[]) => tf.Tensor[] {
  if (tensors.every((tensor) => tensor instanceof tf.Variable)) return () => tensors;
  save(tensors);
  return (saved) => saved;
}
