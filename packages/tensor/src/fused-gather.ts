/**
 * Row gathers (embedding lookups) as one pass of `memory.copy`s on `wasm`.
 *
 * TF.js 4.22's wasm `GatherV2` computes every output element's source through strides, one float at
 * a time, about a hundred times slower than an `Add` of the same size (`encoderKernels` in
 * bench/results/wasm-kernels.json). Here each row is one bulk `memory.copy`, so the result is
 * bit-identical to `tf.gather`. The gradient is TF.js's own: dy summed into the rows by id
 * (`tf.unsortedSegmentSum`).
 */

import * as tf from '@tensorflow/tfjs-core';
import { fusedRoute, moduleFunctions, runWasmKernel } from './fused-module';
import { Locals } from './simd-math';
import { get, I32, i32Const, loopWhileBelow, memarg, memoryCopy, op, set } from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';

/** The fused gather kernel's name (registered for `wasm` on first use). */
export const FUSED_GATHER_KERNEL = 'FinepruneGatherRows';

type GatherRows = (table: number, ids: number, out: number, count: number, rowBytes: number) => void;

const functionsFor = moduleFunctions<{ gatherRows: GatherRows }>(() => {
  const [table, ids, out, count, rowBytes] = [0, 1, 2, 3, 4];
  const locals = new Locals(5);
  const [row, target] = locals.i32s(2);
  // out[row] = table[ids[row]], one memory.copy of rowBytes each
  const copyRow = [
    ...get(target),
    ...get(table),
    ...get(ids),
    ...get(row),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    op.i32Load,
    ...memarg(),
    ...get(rowBytes),
    op.i32Mul,
    op.i32Add,
    ...get(rowBytes),
    ...memoryCopy(),
    ...get(target),
    ...get(rowBytes),
    op.i32Add,
    ...set(target),
  ];
  return [
    {
      name: 'gatherRows',
      params: [I32, I32, I32, I32, I32],
      results: [],
      locals: locals.types,
      body: [
        ...get(out),
        ...set(target),
        ...i32Const(0),
        ...set(row),
        ...loopWhileBelow(row, count, 1, copyRow),
      ],
    },
  ];
});

function gatherKernel({
  inputs,
  backend,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
}): tf.TensorInfo {
  const heap = wasmHeapOf(backend)!;
  const { table, ids } = inputs as Record<string, tf.TensorInfo>;
  const [, features] = table!.shape as [number, number];
  const count = ids!.shape[0]!;
  const out = heap.backend.makeOutput([count, features], 'float32');
  functionsFor(heap.memory)!.gatherRows(
    heap.offsetOf(table!),
    heap.offsetOf(ids!),
    heap.offsetOf(out),
    count,
    features * 4,
  );
  return out;
}

/** Whether every id is a row of the table (read from the heap; the fused pass does not check). */
function idsInRange(ids: tf.Tensor1D, rows: number): boolean {
  const heap = wasmHeapOf()!;
  const values = new Int32Array(heap.memory.buffer, heap.offsetOf(ids), ids.size);
  for (const id of values) if (id < 0 || id >= rows) return false;
  return true;
}

/**
 * table[ids]: the rows of a [rows, features] float32 table at int32 `ids` (an embedding lookup),
 * differentiable with respect to the table (dy summed into the rows by id, as TF.js's `gather`
 * gradient). On `wasm` (unless `FINEPRUNE_FUSED=0`) one `memory.copy` per row, bit-identical to
 * `tf.gather`; elsewhere, and when an id is outside [0, rows), `tf.gather` (which reports the bad id).
 *
 * @param table - float32 [rows, features]
 * @param ids - int32 [count]
 * @returns [count, features]
 *
 * @example
 * ```ts
 * const words = gatherRows(wordEmbeddings, flatIds); // [B·L, H]
 * ```
 */
export function gatherRows(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  const fusable =
    table.rank === 2 &&
    ids.rank === 1 &&
    ids.dtype === 'int32' &&
    fusedRoute(functionsFor, [table]) !== undefined &&
    idsInRange(ids, table.shape[0]);
  if (!fusable) return tf.gather(table, ids);
  const op = tf.customGrad((input, save) => {
    (save as tf.GradSaveFunc)([]);
    return {
      value: runWasmKernel(FUSED_GATHER_KERNEL, gatherKernel, { table: input as tf.Tensor, ids })[0]!,
      gradFunc: (dy) => tf.unsortedSegmentSum(dy as tf.Tensor, ids, table.shape[0]),
    };
  });
  return op(table) as tf.Tensor2D;
}
