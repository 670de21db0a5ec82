/**
 * A dense layer on a masked weight, x·(W ⊙ M) + b, that holds no copy of W ⊙ M between its forward
 * and backward passes.
 */

import * as tf from '@tensorflow/tfjs-core';
import { checkShapes, inputAndKernelGradients, type LazyGradient, opWithLazyGradients } from './dense';
import { columnSums } from './fused-column-sum';
import {
  sparseMaskedInputGradient,
  sparseMaskedProduct,
  sparseMaskedWeight,
  straightThroughGradients,
  transposedPadded,
} from './masked-sparse';
import { checkSameShape } from './masked-weight';
// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';

/**
 * The gradients of one masked dense op, each computed only if the backward pass asks for it, in the
 * order of its inputs (x, W, then b and S if given).
 */
function maskedDenseGradients(
  dy: tf.Tensor2D,
  saved: tf.Tensor[],
  options: { withBias: boolean; withScores: boolean; sparse: boolean },
): LazyGradient[] {
  const { withBias, withScores } = options;
  const [x, weight, mask, transposedInput] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D?];
  /** dx over the kept entries, listed again (nothing of the list is held between the passes). */
  const sparseInputGradient = () =>
    tf.tidy(() => {
      const sparse = sparseMaskedWeight(weight, mask, x.shape[0]);
      if (sparse === undefined) return denseInputGradient();
      const dx = sparseMaskedInputGradient(dy, sparse);
      tf.dispose([sparse.structure, sparse.values]);
      return dx;
    });
  // dx = dy·(W ⊙ M)ᵀ, W ⊙ M made again only for as long as this takes
  const denseInputGradient = () =>
    tf.tidy(() => inputAndKernelGradients(dy, x, tf.mul(weight, mask) as tf.Tensor2D)[0]());
  // dW′ = xᵀ·dy, the gradient in W ⊙ M (the kernel thunk reads only x and dy), from the forward
  // pass's xᵀ where the sparse route made one
  const kernelGradient = transposedInput
    ? () => tf.matMul(transposedInput, dy)
    : inputAndKernelGradients(dy, x, weight)[1];
  // ∂L/∂S of the ∂L/∂W thunk, which makes both from one dW′; the ∂L/∂S thunk takes it
  let pendingScores: tf.Tensor | undefined;
  const gradients: LazyGradient[] = [
    options.sparse ? sparseInputGradient : denseInputGradient,
    () =>
      tf.tidy(() => {
        const dMasked = kernelGradient();
        if (!withScores) return tf.mul(dMasked, mask); // ∂L/∂W = dW′ ⊙ M
        const [dWeight, dScores] = straightThroughGradients(dMasked, weight, mask);
        pendingScores = tf.keep(dScores);
        // Freed here if the backward pass does not ask for ∂L/∂S (scores not differentiated).
        queueMicrotask(() => {
          pendingScores?.dispose();
          pendingScores = undefined;
        });
        return dWeight;
      }),
  ];
  if (withBias) gradients.push(() => columnSums(dy)); // ∂L/∂b = Σ_rows dy
  if (withScores) {
    // ∂L/∂S = dW′ ⊙ W: straight through the mask (Movement Pruning, Sanh et al. 2020, Eq. 2)
    gradients.push(() => {
      const ready = pendingScores;
      pendingScores = undefined;
      if (ready === undefined) return tf.tidy(() => tf.mul(kernelGradient(), weight));
      const gradient = tf.clone(ready);
      ready.dispose();
      return gradient;
    });
  }
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
  let routedSparse = false;
  return opWithLazyGradients(
    inputs,
    (save) =>
      tf.tidy(() => {
        const floatMask = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
        // Few entries kept (wasm): y from the kept entries of W ⊙ M, listed now (masked-sparse.ts)
        const sparse = sparseMaskedWeight(weight, floatMask, x.shape[0]);
        if (sparse !== undefined) {
          routedSparse = true;
          const transposedInput = transposedPadded(x, sparse.paddedBatch);
          // xᵀ is kept for the weight gradient xᵀ·dy when the batch needed no padding
          const kept = sparse.paddedBatch === x.shape[0] ? [transposedInput] : [];
          save([x, weight, floatMask, ...kept]);
          return sparseMaskedProduct(transposedInput, x.shape[0], sparse, bias);
        }
        save([x, weight, floatMask]);
        // y = x·(W ⊙ M) + b; W ⊙ M is a temporary of this tidy
        const masked = tf.mul(weight, floatMask) as tf.Tensor2D;
        return bias === undefined ? tf.matMul(x, masked) : tf.fused.matMul({ a: x, b: masked, bias });
      }),
    (dy, saved) =>
      maskedDenseGradients(dy as tf.Tensor2D, saved, {
        withBias: bias !== undefined,
        withScores: scores !== undefined,
        sparse: routedSparse,
      }),
  ) as tf.Tensor2D;
}
