/**
 * Transposes of the last two axes as one SIMD pass on `wasm`, for gradient functions (dK = xᵀ·dy,
 * dA = dy·Bᵀ).
 *
 * TF.js's wasm `Transpose` of large matrices is slow (`encoderKernels` in
 * bench/results/wasm-kernels.json). Here 4 × 4
 * blocks are loaded as four vectors, transposed in registers with eight `i8x16.shuffle`s and stored
 * as four vectors: values are moved, never computed, so the result is bit-identical to
 * `tf.transpose`. Elsewhere, and when either of the last two axes is not a multiple of 4,
 * `tf.transpose`.
 */

import * as tf from '@tensorflow/tfjs-core';
import { fusedRoute, moduleFunctions, runWasmKernel } from './fused-module';
import { Locals, shuffleLanes } from './simd-math';
import {
  get,
  I32,
  i32Const,
  increment,
  loopWhileBelow,
  memarg,
  op,
  set,
  simd,
  simdOp,
  whileBelow,
} from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';

/** The fused transpose kernel's name (registered for `wasm` on first use). */
export const FUSED_TRANSPOSE_KERNEL = 'FinepruneTransposeLastTwo';

type Transpose = (x: number, out: number, count: number, rows: number, columns: number) => void;

const functionsFor = moduleFunctions<{ transpose: Transpose }>(() => {
  const [x, out, count, rows, columns] = [0, 1, 2, 3, 4];
  const locals = new Locals(5);
  const [matrix, i, j, rowBytes, columnBytes, source, target, matrixBytes] = locals.i32s(8);
  const row = locals.v128s(4);
  const pair = locals.v128s(4);
  // source = x + matrix·matrixBytes + i·columnBytes + 4j;  target = out + matrix·matrixBytes + j·rowBytes + 4i
  const sourceAddress = [
    ...get(x),
    ...get(i),
    ...get(columnBytes),
    op.i32Mul,
    op.i32Add,
    ...get(j),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    ...set(source),
  ];
  const targetAddress = [
    ...get(out),
    ...get(j),
    ...get(rowBytes),
    op.i32Mul,
    op.i32Add,
    ...get(i),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    ...set(target),
  ];
  const loadRow = (k: number) => [
    ...get(source),
    ...get(columnBytes),
    ...i32Const(k),
    op.i32Mul,
    op.i32Add,
    ...simd(simdOp.v128Load),
    ...memarg(),
    ...set(row[k]!),
  ];
  const storeColumn = (k: number, value: number[]) => [
    ...get(target),
    ...get(rowBytes),
    ...i32Const(k),
    op.i32Mul,
    op.i32Add,
    ...value,
    ...simd(simdOp.v128Store),
    ...memarg(),
  ];
  const both = (a: number, b: number, lanes: [number, number, number, number]) => [
    ...get(a),
    ...get(b),
    ...shuffleLanes(lanes),
  ];
  const block = [
    ...sourceAddress,
    ...targetAddress,
    ...[0, 1, 2, 3].flatMap(loadRow),
    ...both(row[0]!, row[1]!, [0, 4, 1, 5]), // a0 b0 a1 b1
    ...set(pair[0]!),
    ...both(row[0]!, row[1]!, [2, 6, 3, 7]), // a2 b2 a3 b3
    ...set(pair[1]!),
    ...both(row[2]!, row[3]!, [0, 4, 1, 5]), // c0 d0 c1 d1
    ...set(pair[2]!),
    ...both(row[2]!, row[3]!, [2, 6, 3, 7]), // c2 d2 c3 d3
    ...set(pair[3]!),
    ...storeColumn(0, both(pair[0]!, pair[2]!, [0, 1, 4, 5])), // a0 b0 c0 d0
    ...storeColumn(1, both(pair[0]!, pair[2]!, [2, 3, 6, 7])),
    ...storeColumn(2, both(pair[1]!, pair[3]!, [0, 1, 4, 5])),
    ...storeColumn(3, both(pair[1]!, pair[3]!, [2, 3, 6, 7])),
  ];
  const matrixLoop = [
    ...i32Const(0),
    ...set(i),
    ...loopWhileBelow(i, rows, 4, [...i32Const(0), ...set(j), ...loopWhileBelow(j, columns, 4, block)]),
    ...get(x),
    ...get(matrixBytes),
    op.i32Add,
    ...set(x),
    ...get(out),
    ...get(matrixBytes),
    op.i32Add,
    ...set(out),
    ...increment(matrix, 1),
  ];
  return [
    {
      name: 'transpose',
      params: [I32, I32, I32, I32, I32],
      results: [],
      locals: locals.types,
      body: [
        ...get(rows),
        ...i32Const(2),
        op.i32Shl,
        ...set(rowBytes),
        ...get(columns),
        ...i32Const(2),
        op.i32Shl,
        ...set(columnBytes),
        ...get(rowBytes),
        ...get(columns),
        op.i32Mul,
        ...set(matrixBytes),
        ...i32Const(0),
        ...set(matrix),
        ...whileBelow(matrix, count, matrixLoop),
      ],
    },
  ];
});

function transposeKernel({
  inputs,
  backend,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
}): tf.TensorInfo {
  const heap = wasmHeapOf(backend)!;
  const x = inputs.x!;
  const shape = [...x.shape];
  const [rows, columns] = shape.slice(-2) as [number, number];
  const out = heap.backend.makeOutput([...shape.slice(0, -2), columns, rows], 'float32');
  const count = tf.util.sizeFromShape(shape.slice(0, -2));
  functionsFor(heap.memory)!.transpose(heap.offsetOf(x), heap.offsetOf(out), count, rows, columns);
  return out;
}

/**
 * x with its last two axes swapped, as a new contiguous tensor (not differentiable: meant for gradient
 * functions). One SIMD pass on `wasm` when both axes are multiples of 4 (unless
 * `FINEPRUNE_FUSED=0`); `tf.transpose` otherwise. Bit-identical either way.
 *
 * @param x - float32, rank ≥ 2
 * @returns [..., columns, rows]
 *
 * @example
 * ```ts
 * const kernelT = transposeLastTwo(kernel); // [out, in]
 * ```
 */
export function transposeLastTwo(x: tf.Tensor): tf.Tensor {
  const [rows, columns] = x.shape.slice(-2) as [number, number];
  const fusable = x.rank >= 2 && rows % 4 === 0 && columns % 4 === 0 && x.size > 0;
  if (!fusable || fusedRoute(functionsFor, [x]) === undefined) {
    const perm = Array.from({ length: x.rank }, (_, axis) => axis);
    [perm[x.rank - 2], perm[x.rank - 1]] = [x.rank - 1, x.rank - 2];
    return tf.transpose(x, perm);
  }
  return runWasmKernel(FUSED_TRANSPOSE_KERNEL, transposeKernel, { x })[0]!;
}
