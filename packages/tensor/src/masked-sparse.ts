/**
 * The sparse route of `maskedDense` on wasm: x·(W ⊙ M) and dy·(W ⊙ M)ᵀ over the entries that the
 * mask keeps, listed afresh from W and M at each forward pass (the mask and the weights change at
 * every training step). At 90% sparsity a training step does a tenth of the forward product's work,
 * and XNNPACK never packs a new copy of W ⊙ M (0.74 ms for the 784 × 300 matrix on this project's
 * machine, whatever the sparsity).
 *
 * The weight gradient dW′ = xᵀ·dy stays dense: the straight-through scores need it at every entry
 * (Movement Pruning, Sanh et al. 2020, Eq. 2).
 */

import * as tf from '@tensorflow/tfjs-core';
import { fusedRoute, runWasmKernel } from './fused-module';
import { sparseRouteEnabled } from './fused-switch';
import { transposeLastTwo } from './fused-transpose';
import {
  compactionTable,
  MAX_CHUNK_VECTORS,
  type MaskedSparseFunctions,
  maskedSparseFunctions,
} from './masked-sparse-module';
import { type WasmHeap, wasmHeapOf } from './wasm-heap';

/**
 * The largest share of W's entries that the sparse route lists; past it `maskedDense` takes XNNPACK's
 * dense product. Measured with `cd bench && pnpm movement-step`: at 10% kept the sparse forward
 * of the benchmark MLP is several times faster than the dense one; near a third kept the two meet
 * (`bench/results/sparse-kernels.json` has the inference kernel's curve).
 */
export const SPARSE_ROUTE_MAX_DENSITY = 0.3;

/** The kernel names of the sparse route (registered for `wasm` on first use). */
export const MASKED_SPARSE_KERNELS = {
  compress: 'FinepruneMaskedSparseCompress',
  product: 'FinepruneMaskedSparseProduct',
  inputGradient: 'FinepruneMaskedSparseInputGradient',
  straightThrough: 'FinepruneStraightThroughGradients',
} as const;

/**
 * W ⊙ M's kept entries row by row: `structure` is int32 [K + 1 + capacity + 4] (row starts, then
 * each entry's output unit as a byte offset into a transposed [N][batch] matrix), `values` float32
 * [capacity + 4] (W·M of each entry).
 */
export interface SparseMaskedWeight {
  structure: tf.Tensor;
  values: tf.Tensor;
  rows: number;
  columns: number;
  /** The batch, rounded up to a multiple of 4, that the unit offsets were written for. */
  paddedBatch: number;
}

interface KernelArguments {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** Masks of which the last compress found more kept entries than the route takes (by data id). */
const tooDense = new WeakMap<object, true>();
/**
 * Weights whose last mask was too dense, with the calls left before their next mask is listed: a
 * mask that changes at every step (soft movement pruning's threshold) is not scanned at every step
 * while it stays dense; one that turns sparse takes the route at most this many calls late.
 */
const denseWeights = new WeakMap<object, number>();
const CALLS_BEFORE_RECHECK = 8;

function heapAndFunctions(backend: unknown): {
  at: (info: tf.TensorInfo) => number;
  heap: NonNullable<ReturnType<typeof wasmHeapOf>>;
  functions: MaskedSparseFunctions;
} {
  const heap = wasmHeapOf(backend)!;
  return { heap, at: (info) => heap.offsetOf(info), functions: maskedSparseFunctions(heap.memory)! };
}

/** Where each heap keeps compress's 256-byte shuffle table (allocated once, never freed). */
const tables = new WeakMap<WebAssembly.Memory, number>();

/** The shuffle table's offset in the heap; `undefined` where the backend exposes no `malloc`. */
function compactionTableIn(heap: WasmHeap): number | undefined {
  let offset = tables.get(heap.memory);
  const malloc = heap.backend.wasm?._malloc;
  if (offset === undefined && malloc !== undefined) {
    offset = malloc(256);
    new Uint8Array(heap.memory.buffer, offset, 256).set(compactionTable());
    tables.set(heap.memory, offset);
  }
  return offset;
}

function compressKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo[] {
  const { heap, at, functions } = heapAndFunctions(backend);
  const { weight, mask } = inputs as Record<string, tf.TensorInfo>;
  const [rows, columns] = weight!.shape as [number, number];
  const capacity = attrs!.capacity as number;
  // 4 entries of slack: compress writes a whole group of four before it checks the capacity
  const structure = heap.backend.makeOutput([rows + 1 + capacity + 4], 'int32');
  const values = heap.backend.makeOutput([capacity + 4], 'float32');
  // The count goes out as a tensor: the kernel is registered once per process, so state of this
  // module (a copy of the package loaded twice) would not be the caller's.
  const count = heap.backend.makeOutput([1], 'int32');
  const table = compactionTableIn(heap)!; // checked by sparseMaskedWeight
  const start = at(structure);
  const listed = functions.compress(
    at(weight!),
    at(mask!),
    rows,
    columns,
    start,
    start + 4 * (rows + 1),
    at(values),
    capacity,
    (attrs!.paddedBatch as number) * 4,
    table,
  );
  new Int32Array(heap.memory.buffer, at(count), 1)[0] = listed;
  return [structure, values, count];
}

/**
 * Calls `run(vectors, chunkBytes)` over the batch in the fewest chunks of at most MAX_CHUNK_VECTORS
 * vectors, of balanced sizes (each chunk is one pass over the list: 25 vectors go as 9 + 8 + 8).
 */
function overChunks(paddedBatch: number, run: (vectors: number, chunkBytes: number) => void): void {
  const total = paddedBatch / 4;
  const chunks = Math.ceil(total / MAX_CHUNK_VECTORS);
  let first = 0;
  for (let chunk = 0; chunk < chunks; chunk += 1) {
    const vectors = Math.ceil((total - first) / (chunks - chunk));
    run(vectors, first * 16);
    first += vectors;
  }
}

/** Runs `product<V>` or `inputGradient<V>` over the list for every chunk of the batch. */
function overList(
  functions: MaskedSparseFunctions,
  name: 'product' | 'inputGradient',
  input: number,
  structure: number,
  values: number,
  rows: number,
  output: number,
  paddedBatch: number,
): void {
  const units = structure + 4 * (rows + 1);
  overChunks(paddedBatch, (vectors, chunkBytes) =>
    functions[`${name}${vectors}`]!(
      input,
      structure,
      units,
      values,
      rows,
      output,
      paddedBatch * 4,
      chunkBytes,
    ),
  );
}

function productKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const { heap, at, functions } = heapAndFunctions(backend);
  const { transposedInput, structure, values, bias } = inputs as Record<string, tf.TensorInfo>;
  const { batch, units, relu } = attrs as { batch: number; units: number; relu: boolean };
  const [rows, paddedBatch] = transposedInput!.shape as [number, number];
  const out = heap.backend.makeOutput([batch, units], 'float32');
  // yᵀ [N][Bpad], accumulated from zero, then written out as y [B][N] (+ b, then ReLU if asked)
  const transposed = heap.backend.makeOutput([units, paddedBatch], 'float32');
  new Float32Array(heap.memory.buffer, at(transposed), units * paddedBatch).fill(0);
  overList(
    functions,
    'product',
    at(transposedInput!),
    at(structure!),
    at(values!),
    rows,
    at(transposed),
    paddedBatch,
  );
  functions.untranspose(
    at(transposed),
    bias ? at(bias) : 0,
    at(out),
    batch,
    units,
    paddedBatch * 4,
    bias ? 1 : 0,
    relu ? 0 : Number.NEGATIVE_INFINITY,
  );
  heap.backend.disposeData(transposed.dataId);
  return out;
}

function inputGradientKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const { heap, at, functions } = heapAndFunctions(backend);
  const { transposedGradient, structure, values } = inputs as Record<string, tf.TensorInfo>;
  const { batch, rows } = attrs as { batch: number; rows: number };
  const paddedBatch = transposedGradient!.shape[1]!;
  const out = heap.backend.makeOutput([batch, rows], 'float32');
  const transposed = heap.backend.makeOutput([rows, paddedBatch], 'float32'); // dxᵀ, every entry written
  overList(
    functions,
    'inputGradient',
    at(transposedGradient!),
    at(structure!),
    at(values!),
    rows,
    at(transposed),
    paddedBatch,
  );
  functions.untranspose(
    at(transposed),
    0,
    at(out),
    batch,
    rows,
    paddedBatch * 4,
    0,
    Number.NEGATIVE_INFINITY,
  );
  heap.backend.disposeData(transposed.dataId);
  return out;
}

function straightThroughKernel({ inputs, backend }: KernelArguments): tf.TensorInfo[] {
  const { heap, at, functions } = heapAndFunctions(backend);
  const { gradient, weight, mask } = inputs as Record<string, tf.TensorInfo>;
  const dWeight = heap.backend.makeOutput([...gradient!.shape], 'float32');
  const dScores = heap.backend.makeOutput([...gradient!.shape], 'float32');
  const size = tf.util.sizeFromShape(gradient!.shape);
  functions.straightThrough(at(gradient!), at(weight!), at(mask!), at(dWeight), at(dScores), size * 4);
  return [dWeight, dScores];
}

/** x [B, K] as xᵀ [K, Bpad], the batch padded with zero rows to a multiple of 4. */
export function transposedPadded(x: tf.Tensor2D, paddedBatch: number): tf.Tensor2D {
  return tf.tidy(() => {
    const padded =
      paddedBatch > x.shape[0]
        ? tf.pad(x, [
            [0, paddedBatch - x.shape[0]],
            [0, 0],
          ])
        : x;
    return transposeLastTwo(padded) as tf.Tensor2D;
  });
}

/**
 * W ⊙ M's kept entries when the sparse route applies — wasm with the fused kernels on,
 * `FINEPRUNE_SPARSE_ROUTE` not `0`, float32 W and M, and at most {@link SPARSE_ROUTE_MAX_DENSITY} of
 * the entries kept — else `undefined` (the caller takes the dense product). A mask found too dense
 * is remembered until it changes, and its weight takes the dense product for the next 8 calls
 * whatever its mask (the results are the same either way; only the speed differs).
 *
 * @param weight - W [K, N]
 * @param mask - M [K, N], float32 (entries ≠ 0 are kept, with their value as a factor)
 * @param batch - the batch the product will run on
 */
export function sparseMaskedWeight(
  weight: tf.Tensor2D,
  mask: tf.Tensor,
  batch: number,
): SparseMaskedWeight | undefined {
  if (!sparseRouteEnabled() || tooDense.has(mask.dataId) || weight.size === 0 || batch === 0)
    return undefined;
  const skips = denseWeights.get(weight);
  if (skips !== undefined && skips > 0) {
    denseWeights.set(weight, skips - 1);
    return undefined;
  }
  const route = fusedRoute(maskedSparseFunctions, [weight, mask]);
  if (route === undefined || compactionTableIn(route.heap) === undefined) return undefined;
  const [rows, columns] = weight.shape;
  const paddedBatch = Math.ceil(batch / 4) * 4;
  const capacity = Math.floor(weight.size * SPARSE_ROUTE_MAX_DENSITY);
  const [structure, values, count] = runWasmKernel(
    MASKED_SPARSE_KERNELS.compress,
    compressKernel,
    { weight, mask },
    { capacity, paddedBatch },
  ) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const listed = count.dataSync()[0]!; // a read of 4 bytes of the heap on wasm
  count.dispose();
  if (listed < 0) {
    tf.dispose([structure, values]);
    tooDense.set(mask.dataId, true);
    denseWeights.set(weight, CALLS_BEFORE_RECHECK);
    return undefined;
  }
  return { structure, values, rows, columns, paddedBatch };
}

/**
 * y = x·(W ⊙ M) (+ b), ReLU'd if asked, from the listed entries (not differentiable: `maskedDense`
 * records the op).
 *
 * @param transposedInput - xᵀ [K, Bpad], from {@link transposedPadded}
 * @param batch - B, the rows of x
 * @param sparse - from {@link sparseMaskedWeight} for this batch
 * @param bias - optional [N]
 * @param relu - max(y, 0) in the same pass
 * @returns [B, N]
 */
export function sparseMaskedProduct(
  transposedInput: tf.Tensor2D,
  batch: number,
  sparse: SparseMaskedWeight,
  bias?: tf.Tensor1D,
  relu = false,
): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = { transposedInput, structure: sparse.structure, values: sparse.values };
  if (bias !== undefined) inputs.bias = bias;
  const [y] = runWasmKernel(MASKED_SPARSE_KERNELS.product, productKernel, inputs, {
    batch,
    units: sparse.columns,
    relu,
  });
  return y as tf.Tensor2D;
}

/**
 * dx = dy·(W ⊙ M)ᵀ from the listed entries (not differentiable).
 *
 * @param dy - [B, N]
 * @param sparse - from {@link sparseMaskedWeight}
 * @returns [B, K]
 */
export function sparseMaskedInputGradient(dy: tf.Tensor2D, sparse: SparseMaskedWeight): tf.Tensor2D {
  const transposedGradient = transposedPadded(dy, sparse.paddedBatch);
  const [dx] = runWasmKernel(
    MASKED_SPARSE_KERNELS.inputGradient,
    inputGradientKernel,
    { transposedGradient, structure: sparse.structure, values: sparse.values },
    { batch: dy.shape[0], rows: sparse.rows },
  );
  transposedGradient.dispose();
  return dx as tf.Tensor2D;
}

/**
 * ∂L/∂W = dW′ ⊙ M and ∂L/∂S = dW′ ⊙ W (straight-through, Movement Pruning Eq. 2), as one SIMD pass
 * on wasm when the size is a multiple of 4, two multiplies elsewhere.
 *
 * @param gradient - dW′, the gradient in W ⊙ M
 * @param weight - W
 * @param mask - M, float32
 * @returns [∂L/∂W, ∂L/∂S]
 */
export function straightThroughGradients(
  gradient: tf.Tensor,
  weight: tf.Tensor,
  mask: tf.Tensor,
): [tf.Tensor, tf.Tensor] {
  if (gradient.size % 4 !== 0 || fusedRoute(maskedSparseFunctions, [gradient, weight, mask]) === undefined) {
    return [tf.mul(gradient, mask), tf.mul(gradient, weight)];
  }
  return runWasmKernel(MASKED_SPARSE_KERNELS.straightThrough, straightThroughKernel, {
    gradient,
    weight,
    mask,
  }) as [tf.Tensor, tf.Tensor];
}
