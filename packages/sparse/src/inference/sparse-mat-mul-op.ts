/**
 * The op `sparseMatMul(x, matrix, bias)`: a thin `runKernel` wrapper around `FinepruneSparseMatMul`.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { registerSparseKernels } from '../kernels/register';
import { SPARSE_MAT_MUL } from '../kernels/sparse-mat-mul';
import type { SparseMatrix } from './sparse-matrix';

function shapeError(message: string, fix: string): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.SHAPE_MISMATCH, message, fix });
}

/** Checks that `bias` is a float32 [N] for this matrix (or absent). */
export function checkBias(matrix: SparseMatrix, bias: tf.Tensor | undefined): void {
  if (
    bias !== undefined &&
    (bias.rank !== 1 || bias.shape[0] !== matrix.outputSize || bias.dtype !== 'float32')
  ) {
    throw shapeError(
      `The bias is ${bias.dtype} [${bias.shape}]; this matrix has ${matrix.outputSize} outputs.`,
      'Pass a float32 bias of shape [outputs].',
    );
  }
}

/** Checks x and the bias against the matrix; x may have any rank ≥ 1 whose last axis is K. */
export function checkOperands(x: tf.Tensor, matrix: SparseMatrix, bias: tf.Tensor | undefined): void {
  matrix.assertUsable();
  if (!(x instanceof tf.Tensor) || x.rank < 1 || x.shape[x.rank - 1] !== matrix.inputSize) {
    throw shapeError(
      `The input has shape [${x instanceof tf.Tensor ? x.shape : typeof x}]; this ${matrix.inputSize}×${matrix.outputSize} matrix needs a last axis of ${matrix.inputSize}.`,
      'Pass x as [..., inputs].',
    );
  }
  if (x.dtype !== 'float32') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The input is ${x.dtype}; the sparse kernels compute in float32.`,
      fix: 'Cast it first: tf.cast(x, "float32").',
    });
  }
  checkBias(matrix, bias);
}

/**
 * y = x·W (+ bias) with W sparse, on the active backend's sparse kernel (cpu, wasm or webgpu),
 * whatever the density. x is [..., K]; y is [..., N]. For a choice between this and the dense
 * product, use `sparseDense`.
 *
 * @param x - float32 [..., K]
 * @param matrix - W
 * @param bias - optional float32 [N]
 * @returns y, float32 [..., N]
 * @throws FinepruneError `SHAPE_MISMATCH` or `INVALID_ARGUMENT` for operands that do not fit;
 * `DISPOSED` for a disposed matrix
 *
 * @example
 * ```ts
 * const y = sparseMatMul(tf.ones([1, 784]), matrix, bias); // [1, 300]
 * ```
 */
export function sparseMatMul(x: tf.Tensor, matrix: SparseMatrix, bias?: tf.Tensor1D): tf.Tensor {
  checkOperands(x, matrix, bias);
  ensureKernelsRegistered();
  if (x.rank === 2) return runSparseMatMul(x, matrix, bias);
  return tf.tidy(() => {
    const y = runSparseMatMul(tf.reshape(x, [-1, matrix.inputSize]), matrix, bias);
    return tf.reshape(y, [...x.shape.slice(0, -1), matrix.outputSize]);
  });
}

let kernelsRegistered = false;

function ensureKernelsRegistered(): void {
  if (kernelsRegistered) return;
  registerSparseKernels();
  kernelsRegistered = true;
}

/** The kernel on a rank-2 x. */
function runSparseMatMul(x: tf.Tensor, matrix: SparseMatrix, bias: tf.Tensor1D | undefined): tf.Tensor {
  const inputs: tf.NamedTensorMap = {
    x,
    values: matrix.values,
    offsets: matrix.offsets,
    structure: matrix.structure,
  };
  if (bias !== undefined) inputs.bias = bias;
  const attributes = { inputSize: matrix.inputSize, outputSize: matrix.outputSize, groups: matrix.groups };
  return tf.engine().runKernel(SPARSE_MAT_MUL, inputs, attributes as unknown as tf.NamedAttrMap) as tf.Tensor;
}
