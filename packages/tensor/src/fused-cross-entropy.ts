/**
 * The mean softmax cross-entropy of logits against integer labels as one op, with its gradient as
 * one op, on `wasm` for small heads (a classifier's [batch, classes] logits); the op chain elsewhere.
 *
 * TF.js's chain for it — cast, one-hot, log-softmax (max, subtract, exp, sum, log, subtract),
 * multiply, sum, mean, negate, and about as many kernels again for the gradient — is ~25 dispatches
 * on a [100, 10] tensor of a thousand numbers. Here both passes read the logits where they lie in the
 * wasm heap and run in JavaScript (float64 arithmetic, rounded to float32 when stored).
 */

import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsEnabled } from './fused-switch';
import { runWasmKernel } from './fused-module';
import { wasmHeapOf } from './wasm-heap';
// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';

/** The kernels' names (registered for `wasm` on first use). */
export const FUSED_CROSS_ENTROPY_KERNELS = {
  forward: 'FinepruneCrossEntropy',
  gradient: 'FinepruneCrossEntropyGrad',
} as const;

/**
 * The most logits the fused route takes: above it the work is in the exponentials, which TF.js's
 * vectorised kernels do faster than a JavaScript loop.
 */
export const FUSED_CROSS_ENTROPY_MAX_SIZE = 1 << 16;

interface KernelArguments {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
}

function views(backend: unknown, logits: tf.TensorInfo, labels: tf.TensorInfo) {
  const heap = wasmHeapOf(backend)!;
  const [rows, classes] = logits.shape as [number, number];
  const buffer = heap.memory.buffer;
  const z = new Float32Array(buffer, heap.offsetOf(logits), rows * classes);
  const label =
    labels.dtype === 'int32'
      ? new Int32Array(buffer, heap.offsetOf(labels), rows)
      : new Float32Array(buffer, heap.offsetOf(labels), rows);
  return { heap, rows, classes, z, label };
}

/** The label of a row as a class index, or −1 when it names no class (as `tf.oneHot`, a zero row). */
function classOf(label: ArrayLike<number>, row: number, classes: number): number {
  const value = Math.trunc(label[row]!);
  return value >= 0 && value < classes ? value : -1;
}

/** Forward: the mean over rows of log Σ_j exp(z_j − m) − (z_label − m), m = max_j z_j. */
function forwardKernel({ inputs, backend }: KernelArguments): tf.TensorInfo {
  const { heap, rows, classes, z, label } = views(backend, inputs.logits!, inputs.labels!);
  let total = 0;
  for (let row = 0; row < rows; row += 1) {
    const at = row * classes;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < classes; j += 1) max = Math.max(max, z[at + j]!);
    let sum = 0;
    for (let j = 0; j < classes; j += 1) sum += Math.exp(z[at + j]! - max);
    const target = classOf(label, row, classes);
    if (target >= 0) total += Math.log(sum) - (z[at + target]! - max);
  }
  const out = heap.backend.makeOutput([], 'float32');
  new Float32Array(heap.memory.buffer, heap.offsetOf(out), 1)[0] = total / rows;
  return out;
}

/** Gradient: ∂L/∂z = (softmax(z) − onehot(label)) · dy / rows, rows without a class at 0. */
function gradientKernel({ inputs, backend }: KernelArguments): tf.TensorInfo {
  const { heap, rows, classes, z, label } = views(backend, inputs.logits!, inputs.labels!);
  const upstream = new Float32Array(heap.memory.buffer, heap.offsetOf(inputs.dy!), 1)[0]! / rows;
  const out = heap.backend.makeOutput([rows, classes], 'float32');
  const dz = new Float32Array(heap.memory.buffer, heap.offsetOf(out), rows * classes);
  for (let row = 0; row < rows; row += 1) {
    const at = row * classes;
    const target = classOf(label, row, classes);
    if (target < 0) {
      dz.fill(0, at, at + classes);
      continue;
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < classes; j += 1) max = Math.max(max, z[at + j]!);
    let sum = 0;
    for (let j = 0; j < classes; j += 1) sum += Math.exp(z[at + j]! - max);
    for (let j = 0; j < classes; j += 1) {
      const softmax = Math.exp(z[at + j]! - max) / sum;
      dz[at + j] = (softmax - (j === target ? 1 : 0)) * upstream;
    }
  }
  return out;
}

/** The op chain: −mean(Σ onehot(label) ⊙ logSoftmax(z)). */
function chainCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const classes = logits.shape[1];
    const indices = labels.dtype === 'int32' ? labels : tf.cast(labels, 'int32');
    const picked = tf.mul(tf.oneHot(indices as tf.Tensor1D, classes), tf.logSoftmax(logits));
    return tf.neg(tf.mean(tf.sum(picked, -1))) as tf.Scalar;
  });
}

/**
 * The mean over rows of the softmax cross-entropy of `logits` against integer `labels`,
 * −(1/R) Σ_r log softmax(z_r)[label_r], differentiable in the logits (∂/∂z = (softmax(z) −
 * onehot(label)) / R; Goodfellow et al. 2016, Sec. 6.2.2.3). A label outside [0, classes) adds 0 and
 * gets a zero gradient row, as with `tf.oneHot`. One op each way on `wasm` for up to 65,536 logits
 * (unless `FINEPRUNE_FUSED=0`), the TF.js op chain otherwise; the two agree within float32 rounding.
 *
 * @param logits - float32 [rows, classes]
 * @param labels - [rows], int32 or float32 holding integers
 * @returns a scalar
 *
 * @example
 * ```ts
 * const loss = softmaxCrossEntropy(logits, labels); // labels: int32 [batch]
 * ```
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  const fused =
    fusedKernelsEnabled() &&
    tf.getBackend() === 'wasm' &&
    wasmHeapOf() !== undefined &&
    logits.dtype === 'float32' &&
    (labels.dtype === 'int32' || labels.dtype === 'float32') &&
    logits.rank === 2 &&
    labels.size === logits.shape[0] &&
    logits.size > 0 &&
    logits.size <= FUSED_CROSS_ENTROPY_MAX_SIZE;
  if (!fused) return chainCrossEntropy(logits, labels);
  const op = tf.customGrad((z, save) => {
    (save as tf.GradSaveFunc)([z as tf.Tensor, labels]);
    const [value] = runWasmKernel(FUSED_CROSS_ENTROPY_KERNELS.forward, forwardKernel, {
      logits: z as tf.Tensor,
      labels,
    });
    return {
      value: value as tf.Scalar,
      gradFunc: (dy, saved) =>
        runWasmKernel(FUSED_CROSS_ENTROPY_KERNELS.gradient, gradientKernel, {
          logits: saved[0]!,
          labels: saved[1]!,
          dy: dy as tf.Tensor,
        })[0]!,
    };
  });
  return op(logits) as tf.Scalar;
}
