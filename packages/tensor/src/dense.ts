/**
 * A dense (fully connected) op whose gradient is fast on the wasm backend.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';
// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';

function shapeError(message: string, fix: string, details: Record<string, unknown>): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.SHAPE_MISMATCH, message, fix, details });
}

function checkShapes(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined): void {
  if (x.rank !== 2 || kernel.rank !== 2) {
    throw shapeError(
      `dense() needs a rank-2 input and kernel, got input [${x.shape}] and kernel [${kernel.shape}].`,
      'Reshape the input to [batch, features] and the kernel to [inputs, units].',
      { xShape: x.shape, kernelShape: kernel.shape },
    );
  }
  if (x.shape[1] !== kernel.shape[0]) {
    throw shapeError(
      `The input has ${x.shape[1]} features but the kernel expects ${kernel.shape[0]} (input [${x.shape}], kernel [${kernel.shape}]).`,
      'Use a kernel of shape [inputFeatures, units].',
      { xShape: x.shape, kernelShape: kernel.shape },
    );
  }
  if (bias !== undefined && (bias.rank !== 1 || bias.shape[0] !== kernel.shape[1])) {
    throw shapeError(
      `The bias has shape [${bias.shape}] but the kernel has ${kernel.shape[1]} units.`,
      'Use a rank-1 bias with one entry per unit (kernel.shape[1]).',
      { biasShape: bias.shape, kernelShape: kernel.shape },
    );
  }
}

/**
 * dx = dy·Kᵀ and dK = xᵀ·dy. On wasm, matMul with transposeA/transposeB is 10–13× slower than an
 * explicit transpose followed by a plain matMul, so transpose first there; elsewhere the flags are
 * faster (no transposed copy).
 */
function inputAndKernelGradients(
  dy: tf.Tensor2D,
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
): [tf.Tensor2D, tf.Tensor2D] {
  // In a tidy: TF.js runs a custom gradient inside the whole backward pass's scope, so without one
  // the transposed copies would live until the backward pass ends (at BERT-base scale, one copy of
  // all 85M prunable weights).
  return tf.tidy(() => {
    if (tf.getBackend() === 'wasm') {
      return [tf.matMul(dy, tf.transpose(kernel)), tf.matMul(tf.transpose(x), dy)];
    }
    return [tf.matMul(dy, kernel, false, true), tf.matMul(x, dy, true, false)];
  });
}

/**
 * A dense layer's core, `x·kernel + bias`, differentiable in all three inputs. Its gradient
 * (dx = dy·Kᵀ, dK = xᵀ·dy, db = Σ_rows dy) avoids the transposed-operand matMul on the wasm backend,
 * which made training steps ~3× slower there; the backend is checked when the gradient runs.
 *
 * @param x - input, [batch, inputs]
 * @param kernel - weights, [inputs, units]
 * @param bias - optional, [units]
 * @returns [batch, units]
 * @throws FinepruneError `SHAPE_MISMATCH` when the shapes do not fit together
 *
 * @example
 * ```ts
 * const logits = dense(x, tf.mul(kernel, mask) as tf.Tensor2D, bias);
 * const { grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, dense(x, kernel, bias)));
 * ```
 */
export function dense(x: tf.Tensor2D, kernel: tf.Tensor2D, bias?: tf.Tensor1D): tf.Tensor2D {
  checkShapes(x, kernel, bias);
  if (bias === undefined) {
    const op = tf.customGrad((input, weights, save) => {
      const a = input as tf.Tensor2D;
      const k = weights as tf.Tensor2D;
      (save as tf.GradSaveFunc)([a, k]);
      return {
        value: tf.matMul(a, k), // y = x·K
        gradFunc: (dy, saved) =>
          inputAndKernelGradients(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D),
      };
    });
    return op(x, kernel) as tf.Tensor2D;
  }
  const op = tf.customGrad((input, weights, offsets, save) => {
    const a = input as tf.Tensor2D;
    const k = weights as tf.Tensor2D;
    (save as tf.GradSaveFunc)([a, k]);
    return {
      value: tf.fused.matMul({ a, b: k, bias: offsets as tf.Tensor1D }), // y = x·K + b
      gradFunc: (dy, saved) => [
        ...inputAndKernelGradients(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D),
        tf.sum(dy, 0), // db = Σ_rows dy
      ],
    };
  });
  return op(x, kernel, bias) as tf.Tensor2D;
}
