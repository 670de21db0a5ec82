/**
 * A dense layer on a masked weight, x·(W ⊙ M) + b, that holds no copy of W ⊙ M between its forward
 * and backward passes.
 */

import * as tf from '@tensorflow/tfjs-core';
import { checkShapes, inputAndKernelGradients } from './dense';
import { columnSums } from './fused-column-sum';
import { checkSameShape } from './masked-weight';
// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';

/** The gradients of one masked dense op, in the order of its inputs (x, W, then b and S if given). */
function maskedDenseGradients(
  dy: tf.Tensor2D,
  saved: tf.Tensor[],
  withBias: boolean,
  withScores: boolean,
): tf.Tensor[] {
  const [x, weight, mask] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  // W ⊙ M again, only for as long as this layer's gradient takes.
  const masked = tf.mul(weight, mask) as tf.Tensor2D;
  const [inputGradient, maskedGradient] = inputAndKernelGradients(dy, x, masked);
  const dMasked = maskedGradient(); // dW′ = xᵀ·dy, the gradient in W ⊙ M; freed with this tidy
  const gradients = [inputGradient(), tf.mul(dMasked, mask)]; // ∂L/∂W = dW′ ⊙ M
  if (withBias) gradients.push(columnSums(dy)); // ∂L/∂b = Σ_rows dy
  // ∂L/∂S = dW′ ⊙ W: straight through the mask (Movement Pruning, Sanh et al. 2020, Eq. 2)
  if (withScores) gradients.push(tf.mul(dMasked, weight));
  return gradients;
}

/**
 * `dense(x, maskedWeight(W, M, S), b)` as one op: y = x·(W ⊙ M) + b, with the same gradients —
 * dx = dy·(W ⊙ M)ᵀ, ∂L/∂W = (xᵀ·dy) ⊙ M, ∂L/∂b = Σ_rows dy and, when the scores S behind the mask
 * are given, ∂L/∂S = (xᵀ·dy) ⊙ W (straight-through, Movement Pruning Eq. 2). What it saves for the
 * backward pass is x, W and M themselves: W ⊙ M is a temporary of the forward pass and is made again
 * in the backward pass, and the gradient in W ⊙ M is turned into those of W and S at once and freed.
 * The composition instead keeps W ⊙ M (and, on wasm, XNNPACK's packed copy of it) and the gradient
 * in W ⊙ M until the whole backward pass ends: three copies of every masked weight in a training
 * step (at BERT-base scale, about 1 GB).
 *
 * @param x - input, [batch, inputs]
 * @param weight - W, [inputs, units], float32
 * @param mask - M, same shape as W (0/1 or soft values; cast to float32); a constant of the op
 * @param bias - optional b, [units]
 * @param scores - optional S, same shape as W; pass it to get ∂L/∂S from `tf.variableGrads`
 * @returns [batch, units]
 * @throws FinepruneError `SHAPE_MISMATCH` when the input, weight, bias, mask or scores do not fit together
 *
 * @example
 * ```ts
 * const { grads } = tf.variableGrads(() => tf.sum(maskedDense(x, kernel, mask, bias, scores)));
 * ```
 */
export function maskedDense(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  mask: tf.Tensor,
  bias?: tf.Tensor1D,
  scores?: tf.Tensor,
): tf.Tensor2D {
  checkShapes(x, weight, bias);
  checkSameShape('mask', mask, weight);
  if (scores !== undefined) checkSameShape('scores', scores, weight);
  const inputs: tf.Tensor[] = [x, weight];
  if (bias !== undefined) inputs.push(bias);
  if (scores !== undefined) inputs.push(scores);
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const floatMask = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
    save([x, weight, floatMask]);
    // y = x·(W ⊙ M) + b; the forward runs in a tidy of the engine, which frees W ⊙ M on return
    const masked = tf.mul(weight, floatMask) as tf.Tensor2D;
    const value = bias === undefined ? tf.matMul(x, masked) : tf.fused.matMul({ a: x, b: masked, bias });
    return {
      value,
      gradFunc: (dy, saved) =>
        tf.tidy(() =>
          maskedDenseGradients(dy as tf.Tensor2D, saved, bias !== undefined, scores !== undefined),
        ),
    };
  });
  return op(...inputs) as tf.Tensor2D;
}
