/**
 * The one kernel of this package, `FinepruneSparseMatMul`: y = x·W (+ b) with W in the sliced-rows
 * layout. Its name, inputs and attributes, shared by the per-backend kernel configs.
 */

import type * as tf from '@tensorflow/tfjs-core';
import { structureSections } from '../layout/sliced-rows';

/**
 * The TF.js kernel name of the sparse matrix product.
 *
 * @example
 * ```ts
 * tf.getKernel(SPARSE_MAT_MUL, 'wasm'); // the config, once registerSparseKernels() ran
 * ```
 */
export const SPARSE_MAT_MUL = 'FinepruneSparseMatMul';

/**
 * Attributes of {@link SPARSE_MAT_MUL}: the matrix's sizes (the layout tensors do not carry them).
 *
 * @example
 * ```ts
 * const attributes: SparseMatMulAttributes = { inputSize: 784, outputSize: 300, groups: 75 };
 * ```
 */
export interface SparseMatMulAttributes {
  inputSize: number;
  outputSize: number;
  groups: number;
}

/**
 * Inputs of {@link SPARSE_MAT_MUL}: `x` [B, K] float32, the layout's `values` (float32), `offsets`
 * and `structure` (int32), and an optional `bias` [N].
 */
export interface SparseMatMulInputs {
  x: tf.TensorInfo;
  values: tf.TensorInfo;
  offsets: tf.TensorInfo;
  structure: tf.TensorInfo;
  bias?: tf.TensorInfo;
}

/** What every backend's kernel function receives. */
export interface SparseMatMulArguments {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** The inputs and attributes of one call, typed, with the batch size. */
export function unpackArguments({ inputs, attrs }: SparseMatMulArguments): {
  inputs: SparseMatMulInputs;
  attributes: SparseMatMulAttributes;
  batch: number;
  sections: ReturnType<typeof structureSections>;
} {
  const typed = inputs as unknown as SparseMatMulInputs;
  const attributes = attrs as unknown as SparseMatMulAttributes;
  return {
    inputs: typed,
    attributes,
    batch: typed.x.shape[0]!,
    sections: structureSections(attributes.groups),
  };
}
