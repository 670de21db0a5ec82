/**
 * A sparse weight matrix held as TF.js tensors on the active backend, in the sliced-rows layout.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type CompressedRows, compressedRowsFromDense } from '../layout/compressed-rows';
import { type SlicedRows, slicedRows } from '../layout/sliced-rows';

/**
 * A Dense kernel's kept weights on the active backend (three tensors: `values` float32, `offsets` and
 * `structure` int32; see the layout in `slicedRows`). Create it with {@link sparseMatrix} or
 * {@link sparseMatrixFromKernel}; free it with `dispose()`.
 *
 * @example
 * ```ts
 * const matrix = await sparseMatrixFromKernel(kernel, { mask });
 * console.log(matrix.nonzeros, matrix.density); // 23520 0.1
 * const y = sparseMatMul(x, matrix);
 * matrix.dispose();
 * ```
 */
export class SparseMatrix {
  /** K. */
  readonly inputSize: number;
  /** N. */
  readonly outputSize: number;
  /** Kept weights. */
  readonly nonzeros: number;
  /** Row groups of four (⌈N / 4⌉). */
  readonly groups: number;
  /** Stored slots of four entries (padding included). */
  readonly slots: number;
  readonly values: tf.Tensor1D;
  readonly offsets: tf.Tensor1D;
  readonly structure: tf.Tensor1D;
  private disposed = false;

  constructor(layout: SlicedRows) {
    this.inputSize = layout.inputSize;
    this.outputSize = layout.outputSize;
    this.nonzeros = layout.nonzeros;
    this.groups = layout.groups;
    this.slots = layout.slots;
    this.values = tf.tensor1d(layout.values, 'float32');
    this.offsets = tf.tensor1d(layout.offsets, 'int32');
    this.structure = tf.tensor1d(layout.structure, 'int32');
    for (const tensor of [this.values, this.offsets, this.structure]) tf.keep(tensor);
  }

  /** Kept weights over K·N. */
  get density(): number {
    return this.nonzeros / (this.inputSize * this.outputSize);
  }

  /** Stored entries (padding included) over kept weights: 1 means no padding. */
  get paddingFactor(): number {
    return this.nonzeros === 0 ? 1 : (this.slots * 4) / this.nonzeros;
  }

  /** Whether `dispose()` has been called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** @throws FinepruneError `DISPOSED` after `dispose()` */
  assertUsable(): void {
    if (this.disposed) {
      throw new FinepruneError({
        code: ErrorCodes.DISPOSED,
        message: `This ${this.inputSize}×${this.outputSize} sparse matrix was disposed.`,
        fix: 'Build a new one with sparseMatrix() or sparseMatrixFromKernel().',
      });
    }
  }

  /** Frees the three tensors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([this.values, this.offsets, this.structure]);
  }
}

/**
 * A {@link SparseMatrix} from compressed rows (validated: arrays from a file are welcome here) or from
 * a layout already sliced.
 *
 * @param source - compressed rows (`CompressedRows`) or a `SlicedRows` layout
 * @returns the matrix on the active backend
 * @throws FinepruneError `INVALID_ARGUMENT` when the rows are malformed
 *
 * @example
 * ```ts
 * const matrix = sparseMatrix({ inputSize: 3, outputSize: 2, rowPointers, inputIndices, values });
 * ```
 */
export function sparseMatrix(source: CompressedRows | SlicedRows): SparseMatrix {
  const layout = 'structure' in source ? source : slicedRows(source);
  return new SparseMatrix(layout);
}

/**
 * Options of {@link sparseMatrixFromKernel}.
 *
 * @example
 * ```ts
 * const options: KernelToSparseOptions = { mask };
 * ```
 */
export interface KernelToSparseOptions {
  /** A 0/1 mask of the kernel's shape (1 keeps); without it every nonzero weight is kept. */
  mask?: tf.Tensor;
}

function checkKernel(kernel: tf.Tensor, mask: tf.Tensor | undefined): void {
  if (!(kernel instanceof tf.Tensor) || kernel.rank !== 2) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `A sparse matrix is made from a rank-2 Dense kernel [inputs, outputs]; got ${kernel instanceof tf.Tensor ? `shape [${kernel.shape}]` : typeof kernel}.`,
      fix: 'Pass the layer’s kernel (layer.getWeights()[0]).',
    });
  }
  if (mask !== undefined && !tf.util.arraysEqual(mask.shape, kernel.shape)) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `The mask has shape [${mask.shape}]; the kernel has [${kernel.shape}].`,
      fix: 'Pass the mask of this kernel.',
    });
  }
}

/**
 * A {@link SparseMatrix} from a Dense kernel tensor [inputs, outputs] and optionally its 0/1 mask. It
 * reads both tensors (asynchronously, so it works on every backend).
 *
 * @param kernel - the kernel, float32 [K, N]
 * @param options - the mask
 * @returns the matrix on the active backend
 * @throws FinepruneError `SHAPE_MISMATCH` for a kernel that is not rank 2 or a mask of another shape;
 * `INVALID_ARGUMENT` for a mask entry other than 0 or 1
 *
 * @example
 * ```ts
 * const matrix = await sparseMatrixFromKernel(model.layers[1].getWeights()[0], { mask });
 * ```
 */
export async function sparseMatrixFromKernel(
  kernel: tf.Tensor,
  options: KernelToSparseOptions = {},
): Promise<SparseMatrix> {
  checkKernel(kernel, options.mask);
  const [weights, mask] = await Promise.all([kernel.data(), options.mask?.data()]);
  const rows = compressedRowsFromDense(
    weights as Float32Array,
    kernel.shape as [number, number],
    mask === undefined ? {} : { mask: mask as Float32Array },
  );
  return sparseMatrix(rows);
}
