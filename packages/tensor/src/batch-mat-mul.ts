/**
 * Batched matrix products for the `wasm` backend, one matrix at a time.
 *
 * @tensorflow/tfjs-backend-wasm 4.22 hands a `BatchMatMul` with one matrix pair to XNNPACK
 * but runs a batch of several pairs through a plain blocked
 * loop, several times slower per FLOP (the attention products of the benchmark encoder: `encoderKernels`
 * in bench/results/wasm-kernels.json). The kernel below makes one call per matrix pair
 * itself, on views of the operands where they lie in the wasm heap (registered with the backend's
 * own `registerTensor` and dropped right after), so nothing is copied and the result is the same
 * float32 arithmetic XNNPACK does for a single product.
 */

import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsEnabled } from './fused-switch';
import { transposeLastTwo } from './fused-transpose';
import { type WasmBackendInternals, wasmHeapOf } from './wasm-heap';

/** The name under which the sliced product is registered as a TF.js kernel for `wasm`. */
export const SLICED_BATCH_MAT_MUL_KERNEL = 'FinepruneSlicedBatchMatMul';

/** The parts of the wasm backend the sliced product needs beyond {@link WasmBackendInternals}. */
interface SlicingBackend extends WasmBackendInternals {
  dataIdNextNumber: number;
  wasm: WasmBackendInternals['wasm'] & {
    cwrap(name: string, result: null, params: string[]): (...args: unknown[]) => void;
    tfjs: {
      registerTensor(id: number, size: number, offset: number): void;
      disposeData(id: number): void;
    };
  };
}

type WasmMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: boolean,
  transposeB: boolean,
  outId: number,
) => void;

const matMulOf = new WeakMap<object, WasmMatMul>();

function wasmMatMul(backend: SlicingBackend): WasmMatMul {
  let matMul = matMulOf.get(backend);
  if (matMul === undefined) {
    const numbers = ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number'];
    matMul = backend.wasm.cwrap('BatchMatMul', null, numbers) as unknown as WasmMatMul;
    matMulOf.set(backend, matMul);
  }
  return matMul;
}

/** Registers `size` floats at byte `offset` as a tensor the wasm library can read; returns its id. */
function view(backend: SlicingBackend, offset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

function shapeBytes(shape: readonly number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

function slicedBatchMatMulKernel({ inputs, backend }: { inputs: tf.NamedTensorInfoMap; backend: unknown }) {
  const slicing = backend as SlicingBackend;
  const { offsetOf } = wasmHeapOf(backend)!;
  const { a, b } = inputs as Record<string, tf.TensorInfo>;
  const [m, k] = a!.shape.slice(-2) as [number, number];
  const n = b!.shape[b!.shape.length - 1]!;
  const count = tf.util.sizeFromShape(a!.shape.slice(0, -2));
  const out = slicing.makeOutput([...a!.shape.slice(0, -2), m, n], 'float32');
  const matMul = wasmMatMul(slicing);
  const [aShape, bShape] = [shapeBytes([1, m, k]), shapeBytes([1, k, n])];
  const [aBase, bBase, outBase] = [offsetOf(a!), offsetOf(b!), offsetOf(out)];
  for (let index = 0; index < count; index += 1) {
    const ids = [
      view(slicing, aBase + index * m * k * 4, m * k),
      view(slicing, bBase + index * k * n * 4, k * n),
      view(slicing, outBase + index * m * n * 4, m * n),
    ] as const;
    matMul(ids[0], aShape, 3, ids[1], bShape, 3, false, false, ids[2]);
    for (const id of ids) slicing.wasm.tfjs.disposeData(id);
  }
  return out;
}

/** Whether the sliced route can run: wasm with a reachable heap, float32, same leading axes, rank ≥ 3. */
function canSlice(a: tf.Tensor, b: tf.Tensor): boolean {
  if (!fusedKernelsEnabled() || tf.getBackend() !== 'wasm' || a.rank < 3 || a.rank !== b.rank) return false;
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return false;
  if (!tf.util.arraysEqual(a.shape.slice(0, -2), b.shape.slice(0, -2))) return false;
  const heap = wasmHeapOf() as { backend: Partial<SlicingBackend> } | undefined;
  return (
    typeof heap?.backend.dataIdNextNumber === 'number' &&
    typeof heap.backend.wasm?.cwrap === 'function' &&
    typeof heap.backend.wasm.tfjs?.registerTensor === 'function'
  );
}

/** a·b over the last two axes: the sliced wasm kernel where it can run, `tf.matMul` elsewhere. */
function product(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!canSlice(a, b)) return tf.matMul(a, b);
  if (tf.getKernel(SLICED_BATCH_MAT_MUL_KERNEL, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: SLICED_BATCH_MAT_MUL_KERNEL,
      backendName: 'wasm',
      kernelFunc: slicedBatchMatMulKernel as unknown as tf.KernelFunc,
    });
  }
  return tf.engine().runKernel(SLICED_BATCH_MAT_MUL_KERNEL, { a, b }) as tf.Tensor;
}

/**
 * Batched matrix product a·b over the last two axes (the same leading axes), differentiable, with the
 * gradient dA = dy·Bᵀ, dB = Aᵀ·dy; on wasm from explicitly transposed copies (there the
 * transposeA/transposeB flags of `tf.matMul` take a slow loop), elsewhere with those flags. On `wasm` each product runs as one
 * XNNPACK call per matrix pair (see the module comment), unless `FINEPRUNE_FUSED=0`; elsewhere
 * `tf.matMul`.
 *
 * @param a - [..., m, k]
 * @param b - [..., k, n]
 * @returns [..., m, n]
 *
 * @example
 * ```ts
 * const scores = batchMatMul(queries, keysTransposed); // [B, heads, L, L]
 * ```
 */
export function batchMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const op = tf.customGrad((left, right, save) => {
    (save as tf.GradSaveFunc)([left as tf.Tensor, right as tf.Tensor]);
    return {
      value: product(left as tf.Tensor, right as tf.Tensor),
      gradFunc: (dy, saved) => {
        const [l, r] = saved as [tf.Tensor, tf.Tensor];
        // Only wasm's matMul is slow with transposed operands (BACKENDS.md); elsewhere (cpu, WebGPU)
        // it reads them in place, with no transpose kernels: the same rule as `dense`.
        if (tf.getBackend() !== 'wasm') return [tf.matMul(dy, r, false, true), tf.matMul(l, dy, true, false)];
        return [product(dy, transposeLastTwo(r)), product(transposeLastTwo(l), dy)];
      },
    };
  });
  return op(a, b) as tf.Tensor;
}
