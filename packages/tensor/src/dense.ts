/**
 * A dense (fully connected) op whose gradient is fast on the wasm backend.
 */

import * as tf from '@tensorflow/tfjs-core';
import { columnSums } from './fused-column-sum';
import { transposeLastTwo } from './fused-transpose';
import { ErrorCodes, FinepruneError } from './errors';
// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';

function shapeError(message: string, fix: string, details: Record<string, unknown>): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.SHAPE_MISMATCH, message, fix, details });
}

export function checkShapes(x: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor | undefined): void {
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
/** One gradient, computed only when the backward pass asks for it. */
export type LazyGradient = () => tf.Tensor;

/** The part of TF.js 4.x's engine that records an op with per-input gradient thunks. */
interface KernelFuncEngine {
  runKernelFunc?(params: {
    forwardFunc: (backend: unknown, save: tf.GradSaveFunc) => tf.Tensor;
    backwardsFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => Record<string, LazyGradient>;
    inputs: Record<string, tf.Tensor>;
  }): tf.Tensor;
}

/**
 * Runs `forward` as one op whose gradient in each input is a thunk, as TF.js records its own kernels:
 * the backward pass calls only the thunks of inputs on a path to what is differentiated, so the
 * gradient in a network's input (the first layer's x·Kᵀ, 47 of the MLP's 160 MFLOP per step) is never
 * computed during training. `tf.customGrad` computes every input's gradient; it is the fallback if
 * the engine lacks `runKernelFunc`.
 */
export function opWithLazyGradients(
  inputs: tf.Tensor[],
  forward: (save: tf.GradSaveFunc) => tf.Tensor,
  gradients: (dy: tf.Tensor, saved: tf.Tensor[]) => LazyGradient[],
): tf.Tensor {
  const engine = tf.engine() as unknown as KernelFuncEngine;
  if (typeof engine.runKernelFunc === 'function') {
    return engine.runKernelFunc({
      forwardFunc: (_backend, save) => forward(save),
      backwardsFunc: (dy, saved) =>
        Object.fromEntries(gradients(dy, saved).map((gradient, index) => [index, gradient])),
      inputs: Object.fromEntries(inputs.map((input, index) => [index, input])),
    });
  }
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    return {
      value: forward(save),
      gradFunc: (dy, saved) => gradients(dy as tf.Tensor, saved).map((gradient) => gradient()),
    };
  });
  return op(...inputs);
}

/** dx = dy·Kᵀ and dK = xᵀ·dy, with explicit transposes on wasm (10× faster than transposed matMul). */
export function inputAndKernelGradients(
  dy: tf.Tensor2D,
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
): [LazyGradient, LazyGradient] {
  // Each in a tidy: TF.js runs a custom gradient inside the whole backward pass's scope, so without
  // one the transposed copies would live until the backward pass ends (at BERT-base scale, one copy
  // of all 85M prunable weights).
  if (tf.getBackend() === 'wasm')
    return [
      () => tf.tidy(() => tf.matMul(dy, transposeLastTwo(kernel))),
      () => tf.tidy(() => tf.matMul(transposeLastTwo(x), dy)),
    ];
  return [() => tf.matMul(dy, kernel, false, true), () => tf.matMul(x, dy, true, false)];
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
  const inputs = bias === undefined ? [x, kernel] : [x, kernel, bias];
  return opWithLazyGradients(
    inputs,
    (save) => {
      save([x, kernel]);
      // y = x·K (+ b)
      return bias === undefined ? tf.matMul(x, kernel) : tf.fused.matMul({ a: x, b: kernel, bias });
    },
    (dy, saved) => {
      const gradients = inputAndKernelGradients(
        dy as tf.Tensor2D,
        saved[0] as tf.Tensor2D,
        saved[1] as tf.Tensor2D,
      );
      return bias === undefined ? gradients : [...gradients, () => columnSums(dy as tf.Tensor2D)]; // db = Σ_rows dy
    },
  ) as tf.Tensor2D;
}
