/**
 * Column sums of a matrix, Σ_rows x, as one SIMD pass on `wasm`.
 *
 * TF.js's wasm `Sum` over axis 0 transposes the matrix first and then sums rows, slowly on the
 * benchmark encoder's bias gradients (`encoderKernels` in bench/results/wasm-kernels.json). Here the rows are
 * added four columns at a time into the output, in row order (float32, as the wasm `Sum`
 * accumulates), elsewhere `tf.sum(x, 0)`.
 */

import * as tf from '@tensorflow/tfjs-core';
import { fusedRoute, moduleFunctions, runWasmKernel } from './fused-module';
import { add, load, Locals, overRow, store } from './simd-math';
import { get, I32, i32Const, loopWhileBelow, memoryFill, op, set } from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';

/** The fused column-sum kernel's name (registered for `wasm` on first use). */
export const FUSED_COLUMN_SUM_KERNEL = 'FinepruneColumnSum';

type ColumnSum = (x: number, out: number, rows: number, rowBytes: number) => void;

const functionsFor = moduleFunctions<{ columnSum: ColumnSum }>(() => {
  const [x, out, rows, rowBytes] = [0, 1, 2, 3];
  const locals = new Locals(4);
  const [row, cursor, xRow] = [locals.i32(), locals.i32(), locals.i32()];
  return [
    {
      name: 'columnSum',
      params: [I32, I32, I32, I32],
      results: [],
      locals: locals.types,
      body: [
        ...get(out),
        ...i32Const(0),
        ...get(rowBytes),
        ...memoryFill(),
        ...get(x),
        ...set(xRow),
        ...i32Const(0),
        ...set(row),
        // out += x[row], row by row
        ...loopWhileBelow(row, rows, 1, [
          ...overRow(cursor, rowBytes, store(out, cursor, add(load(out, cursor), load(xRow, cursor)))),
          ...get(xRow),
          ...get(rowBytes),
          op.i32Add,
          ...set(xRow),
        ]),
      ],
    },
  ];
});

function columnSumKernel({
  inputs,
  backend,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
}): tf.TensorInfo {
  const heap = wasmHeapOf(backend)!;
  const x = inputs.x!;
  const [rows, columns] = x.shape as [number, number];
  const out = heap.backend.makeOutput([columns], 'float32');
  functionsFor(heap.memory)!.columnSum(heap.offsetOf(x), heap.offsetOf(out), rows, columns * 4);
  return out;
}

/**
 * Σ over the rows of a [rows, columns] matrix (not differentiable: meant for gradient functions, such
 * as a bias gradient db = Σ_rows dy). One SIMD pass on `wasm` when the column count is a multiple of 4
 * (unless `FINEPRUNE_FUSED=0`); `tf.sum(x, 0)` otherwise.
 *
 * @param x - float32 [rows, columns]
 * @returns [columns]
 *
 * @example
 * ```ts
 * columnSums(tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8]])).print(); // [6, 8, 10, 12]
 * ```
 */
export function columnSums(x: tf.Tensor2D): tf.Tensor1D {
  const columns = x.shape[1];
  if (x.rank !== 2 || columns % 4 !== 0 || columns === 0 || fusedRoute(functionsFor, [x]) === undefined) {
    return tf.sum(x, 0);
  }
  return runWasmKernel(FUSED_COLUMN_SUM_KERNEL, columnSumKernel, { x })[0] as tf.Tensor1D;
}
