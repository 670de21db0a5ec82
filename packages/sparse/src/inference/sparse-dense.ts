/**
 * `sparseDense(x, weights)`: a Dense layer's product for inference that runs the sparse kernel or
 * TF.js's dense matMul, whichever was measured faster for this backend, matrix and batch bucket.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type CompressedRows, denseFromCompressedRows } from '../layout/compressed-rows';
import {
  cachedChoice,
  choiceFromTimings,
  choiceKey,
  measure,
  measureSynchronously,
  type ProductPath,
  type SparseDenseChoice,
  SYNCHRONOUS_BACKENDS,
  staticChoice,
  storeChoice,
} from './break-even';
import { checkBias, checkOperands, sparseMatMul } from './sparse-mat-mul-op';
import { type SparseMatrix, sparseMatrix, sparseMatrixFromKernel } from './sparse-matrix';

/**
 * How {@link sparseDense} picks its product: `'auto'` (measured break-even), or always `'sparse'` or
 * always `'dense'`.
 *
 * @example
 * ```ts
 * const weights = await prepareSparseDense(kernel, { mask, mode: 'sparse' satisfies SparseDenseMode });
 * ```
 */
export type SparseDenseMode = 'auto' | ProductPath;

/**
 * Options of {@link prepareSparseDense} and {@link prepareSparseDenseFromRows}.
 *
 * @example
 * ```ts
 * const options: SparseDenseOptions = { mask, bias, mode: 'auto' };
 * ```
 */
export interface SparseDenseOptions {
  /** A 0/1 mask of the kernel's shape; without it every nonzero weight is kept. */
  mask?: tf.Tensor;
  /** The layer's bias [N]. */
  bias?: tf.Tensor1D;
  /** Default `'auto'`. `'sparse'` keeps no dense copy of the kernel. */
  mode?: SparseDenseMode;
}

/**
 * The weights of one Dense layer prepared for {@link sparseDense}: the sparse matrix, the masked
 * dense kernel (unless the mode is `'sparse'`) and the bias, with the choices made so far.
 *
 * @example
 * ```ts
 * const weights = await prepareSparseDense(kernel, { mask, bias });
 * const y = sparseDense(x, weights);
 * console.log(weights.choiceFor(x.shape[0])); // { path: 'sparse', measured: true, reason: '...' }
 * weights.dispose();
 * ```
 */
export class SparseDenseWeights {
  private readonly madeChoices = new Map<string, SparseDenseChoice>();

  constructor(
    /** The kept weights in the sparse layout. */
    readonly matrix: SparseMatrix,
    /** The masked kernel [K, N] for the dense path (absent in `'sparse'` mode). */
    readonly dense: tf.Tensor2D | undefined,
    /** The bias [N], if any (owned by these weights: a copy of the one given). */
    readonly bias: tf.Tensor1D | undefined,
    readonly mode: SparseDenseMode,
  ) {}

  /** The choice that covers batch size `batch` on the active backend, once one was made. */
  choiceFor(batch: number): SparseDenseChoice | undefined {
    return this.madeChoices.get(this.key(batch)) ?? cachedChoice(this.key(batch));
  }

  /** Every choice made for these weights, in the order they were made. */
  choices(): SparseDenseChoice[] {
    return [...this.madeChoices.values()];
  }

  /** The cache key of a batch size on the active backend. */
  key(batch: number): string {
    const { inputSize, outputSize, nonzeros } = this.matrix;
    return choiceKey(tf.getBackend(), inputSize, outputSize, nonzeros, batch);
  }

  /** Records a choice for these weights (and in the shared cache). */
  remember(batch: number, choice: SparseDenseChoice): SparseDenseChoice {
    const kept = storeChoice(this.key(batch), choice);
    this.madeChoices.set(this.key(batch), kept);
    return kept;
  }

  /** The dense kernel, or a typed error in `'sparse'` mode. */
  denseKernel(): tf.Tensor2D {
    if (this.dense === undefined) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: "These weights were prepared in 'sparse' mode and keep no dense kernel.",
        fix: "Prepare them with mode 'auto' or 'dense' to use the dense product.",
      });
    }
    return this.dense;
  }

  /**
   * Times both products at batch size `batch` (awaiting results, so it works on every backend,
   * webgpu included) and keeps the faster for that batch bucket.
   *
   * @param batch - the batch size to time
   * @returns the measured choice
   */
  async calibrate(batch: number): Promise<SparseDenseChoice> {
    const x = tf.zeros([batch, this.matrix.inputSize]);
    try {
      const [sparse, dense] = await measure(
        () => this.run(x, 'sparse'),
        () => this.run(x, 'dense'),
      );
      return this.remember(batch, choiceFromTimings(tf.getBackend(), batch, sparse, dense));
    } finally {
      x.dispose();
    }
  }

  /** The product on one path (x already checked). */
  run(x: tf.Tensor, path: ProductPath): tf.Tensor {
    if (path === 'sparse') return sparseMatMul(x, this.matrix, this.bias);
    return tf.tidy(() => {
      const flat =
        x.rank === 2 ? (x as tf.Tensor2D) : (tf.reshape(x, [-1, this.matrix.inputSize]) as tf.Tensor2D);
      // The fast path of tfjs-wasm (XNNPACK): no transpose flags, a rank-2 product.
      const y = tf.fused.matMul({
        a: flat,
        b: this.denseKernel(),
        ...(this.bias ? { bias: this.bias } : {}),
      });
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), this.matrix.outputSize]);
    });
  }

  /** Frees the matrix, the dense kernel and the bias. */
  dispose(): void {
    this.matrix.dispose();
    tf.dispose([this.dense, this.bias].filter((tensor) => tensor !== undefined));
  }
}

function checkMode(mode: unknown): SparseDenseMode {
  if (mode !== 'auto' && mode !== 'sparse' && mode !== 'dense') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `mode must be 'auto', 'sparse' or 'dense', got ${String(mode)}.`,
      fix: "Leave it out for 'auto'.",
    });
  }
  return mode;
}

function ownBias(bias: tf.Tensor1D | undefined): tf.Tensor1D | undefined {
  return bias === undefined ? undefined : tf.keep(tf.clone(bias));
}

/**
 * Prepares a Dense layer's kernel [inputs, outputs], its 0/1 mask and its bias for
 * {@link sparseDense}.
 *
 * @param kernel - the kernel, float32 [K, N]
 * @param options - mask, bias, mode
 * @returns the prepared weights (dispose them when done)
 * @throws FinepruneError `SHAPE_MISMATCH` / `INVALID_ARGUMENT` for inputs that do not fit
 *
 * @example
 * ```ts
 * const [kernel, bias] = layer.getWeights();
 * const weights = await prepareSparseDense(kernel, { mask, bias });
 * ```
 */
export async function prepareSparseDense(
  kernel: tf.Tensor2D,
  options: SparseDenseOptions = {},
): Promise<SparseDenseWeights> {
  const mode = checkMode(options.mode ?? 'auto');
  const matrix = await sparseMatrixFromKernel(
    kernel,
    options.mask === undefined ? {} : { mask: options.mask },
  );
  try {
    checkBias(matrix, options.bias);
  } catch (error) {
    matrix.dispose();
    throw error;
  }
  const dense =
    mode === 'sparse'
      ? undefined
      : tf.keep(
          tf.tidy(() => (options.mask === undefined ? tf.clone(kernel) : tf.mul(kernel, options.mask))),
        );
  return new SparseDenseWeights(matrix, dense as tf.Tensor2D | undefined, ownBias(options.bias), mode);
}

/**
 * Prepares compressed rows (for example from a loader of the sparse export) and a bias for
 * {@link sparseDense}; the dense kernel, when the mode needs it, is rebuilt from the rows.
 *
 * @param rows - the kept weights (validated)
 * @param options - bias, mode (a mask is not used here)
 * @returns the prepared weights
 *
 * @example
 * ```ts
 * const weights = prepareSparseDenseFromRows(rows, { bias });
 * ```
 */
export function prepareSparseDenseFromRows(
  rows: CompressedRows,
  options: Omit<SparseDenseOptions, 'mask'> = {},
): SparseDenseWeights {
  const mode = checkMode(options.mode ?? 'auto');
  const matrix = sparseMatrix(rows);
  const dense =
    mode === 'sparse'
      ? undefined
      : tf.keep(tf.tensor2d(denseFromCompressedRows(rows), [rows.inputSize, rows.outputSize]));
  return new SparseDenseWeights(matrix, dense, ownBias(options.bias), mode);
}

/** The path for batch size `batch`: the mode, a cached choice, or a new one (timed where possible). */
function pathFor(x: tf.Tensor, batch: number, weights: SparseDenseWeights): ProductPath {
  if (weights.mode !== 'auto') return weights.mode;
  const known = weights.choiceFor(batch);
  if (known !== undefined) return weights.remember(batch, known).path;
  const backend = tf.getBackend();
  if (!SYNCHRONOUS_BACKENDS.has(backend)) {
    return weights.remember(batch, staticChoice(backend, batch, weights.matrix.density)).path;
  }
  const [sparse, dense] = measureSynchronously(
    () => weights.run(x, 'sparse'),
    () => weights.run(x, 'dense'),
  );
  return weights.remember(batch, choiceFromTimings(backend, batch, sparse, dense)).path;
}

/**
 * A Dense layer's product for inference, y = x·W (+ b), with W pruned: runs the sparse kernel or the
 * dense matMul, whichever is faster here. In `'auto'` mode the first call for each backend, shape,
 * nonzero count and batch bucket times both (on cpu and wasm, synchronously, on x itself) and caches
 * the faster; `weights.choiceFor(batch)` says what was picked and why. On backends that cannot read
 * synchronously (webgpu) an uncalibrated call picks by density (sparse below 1/3) until
 * `await weights.calibrate(batch)` has timed both.
 *
 * @param x - float32 [..., K]
 * @param weights - from {@link prepareSparseDense}
 * @returns y, float32 [..., N]
 * @throws FinepruneError `SHAPE_MISMATCH` / `INVALID_ARGUMENT` for operands that do not fit
 *
 * @example
 * ```ts
 * const weights = await prepareSparseDense(kernel, { mask, bias });
 * const logits = sparseDense(images, weights);
 * console.log(weights.choiceFor(images.shape[0])?.reason);
 * ```
 */
export function sparseDense(x: tf.Tensor, weights: SparseDenseWeights): tf.Tensor {
  checkOperands(x, weights.matrix, weights.bias);
  const batch = x.size / weights.matrix.inputSize;
  return weights.run(x, pathFor(x, batch, weights));
}
