/**
 * Softmax over the last axis, with the attention chain's scale and additive mask folded in:
 * softmax(x·s + mask) and its gradient, differentiable, one fused SIMD pass per row on `wasm`.
 *
 * The op chain of the attention probabilities (Vaswani et al. 2017, Eq. 1) on the benchmark encoder's
 * [16, 2, 128, 128] scores is a scale, a broadcast add, TF.js's `Softmax` (five kernels inside, a
 * scalar `Exp`), and a backward pass of five more kernels. Here the forward pass is one function that
 * for each row writes x·s + mask, takes the row maximum, exponentiates with the SIMD exp of
 * {@link ./simd-math} and divides by the sum; the backward pass is one function,
 * dx = s·(dy − Σ dy ⊙ y) ⊙ y. Elsewhere (and for a last axis that is not a multiple of 4, or a mask
 * that is not [B, 1, …, 1, L] against [B, …, L]) the op chain runs. Agreement with the cpu chain:
 * measured ≤ 1.2e-7 for the probabilities and ≤ 1.8e-7 for the gradients (fused-softmax.test.ts).
 */

import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, fusedKernelAvailable, runRegisteredKernel } from './fused-kernels';
import { fusedRoute, moduleFunctions, runWasmKernel } from './fused-module';
import {
  add,
  div,
  expLocals,
  expVector,
  horizontal,
  load,
  Locals,
  mul,
  overRow,
  splat,
  store,
  sub,
} from './simd-math';
import { F32, get, I32, i32Const, loopWhileBelow, op, set, simd, simdOp } from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';

/** The fused softmax kernels' names (registered for `wasm` on first use). */
export const FUSED_SOFTMAX_KERNEL = 'FinepruneSoftmax';
export const FUSED_SOFTMAX_GRAD_KERNEL = 'FinepruneSoftmaxGrad';

type Forward = (
  x: number,
  mask: number,
  out: number,
  rows: number,
  rowBytes: number,
  period: number,
  scale: number,
) => void;
type Backward = (y: number, dy: number, out: number, rows: number, rowBytes: number, scale: number) => void;
interface SoftmaxFunctions {
  softmax: Forward;
  softmaxMasked: Forward;
  softmaxGrad: Backward;
}

/** `for (row = 0; row < rows; row++) { rowBase = row·rowBytes; body }` over i32 locals. */
function overRows(row: number, rows: number, rowBase: number, rowBytes: number, body: number[]): number[] {
  return [
    ...i32Const(0),
    ...set(row),
    ...loopWhileBelow(row, rows, 1, [...get(row), ...get(rowBytes), op.i32Mul, ...set(rowBase), ...body]),
  ];
}

/** A local that holds `base + offset` (i32 locals). */
function offsetInto(base: number, offset: number, target: number): number[] {
  return [...get(base), ...get(offset), op.i32Add, ...set(target)];
}

/** softmax(x·s [+ mask]) row by row; the mask row of row r is r / period (integer division). */
function forward(withMask: boolean) {
  // params: x, mask, out, rows, rowBytes, period (i32), scale (f32)
  const [x, mask, out, rows, rowBytes, period, scale] = [0, 1, 2, 3, 4, 5, 6];
  const locals = new Locals(7);
  const [row, rowBase, cursor, xRow, outRow, maskRow] = locals.i32s(6);
  const [z, best, total, shift, e] = locals.v128s(5);
  const exp = expLocals(locals);
  const scaled = mul(load(xRow, cursor), [...get(scale), ...simd(simdOp.f32x4Splat)]);
  const logits = withMask ? add(scaled, load(maskRow, cursor)) : scaled;
  const maskRowBase = [
    ...get(row),
    ...get(period),
    op.i32DivU,
    ...get(rowBytes),
    op.i32Mul,
    ...get(mask),
    op.i32Add,
    ...set(maskRow),
  ];
  const body = [
    ...offsetInto(x, rowBase, xRow),
    ...offsetInto(out, rowBase, outRow),
    ...(withMask ? maskRowBase : []),
    // pass 1: z = x·s + mask, stored; running maximum
    ...splat(Number.NEGATIVE_INFINITY),
    ...set(best),
    ...overRow(cursor, rowBytes, [
      ...logits,
      ...set(z),
      ...store(outRow, cursor, get(z)),
      ...get(best),
      ...get(z),
      ...simd(simdOp.f32x4Max),
      ...set(best),
    ]),
    ...horizontal(best, op.f32Max),
    ...simd(simdOp.f32x4Splat),
    ...set(shift),
    // pass 2: e = exp(z − max), stored; running sum
    ...splat(0),
    ...set(total),
    ...overRow(cursor, rowBytes, [
      ...expVector(sub(load(outRow, cursor), get(shift)), exp),
      ...set(e),
      ...store(outRow, cursor, get(e)),
      ...add(get(total), get(e)),
      ...set(total),
    ]),
    ...horizontal(total, op.f32Add),
    ...simd(simdOp.f32x4Splat),
    ...set(total),
    // pass 3: y = e / Σe
    ...overRow(cursor, rowBytes, store(outRow, cursor, div(load(outRow, cursor), get(total)))),
  ];
  return {
    name: withMask ? 'softmaxMasked' : 'softmax',
    params: [I32, I32, I32, I32, I32, I32, F32],
    results: [],
    locals: locals.types,
    body: overRows(row, rows, rowBase, rowBytes, body),
  };
}

/** dx = ((dy − Σ dy ⊙ y) ⊙ y)·s row by row (the softmax Jacobian–vector product, chained with the scale). */
function backward() {
  const [y, dy, out, rows, rowBytes, scale] = [0, 1, 2, 3, 4, 5];
  const locals = new Locals(6);
  const [row, rowBase, cursor, yRow, dyRow, outRow] = locals.i32s(6);
  const [dot, scaleVector] = [locals.v128(), locals.v128()];
  const body = [
    ...offsetInto(y, rowBase, yRow),
    ...offsetInto(dy, rowBase, dyRow),
    ...offsetInto(out, rowBase, outRow),
    ...splat(0),
    ...set(dot),
    ...overRow(cursor, rowBytes, [
      ...add(get(dot), mul(load(dyRow, cursor), load(yRow, cursor))),
      ...set(dot),
    ]),
    ...horizontal(dot, op.f32Add),
    ...simd(simdOp.f32x4Splat),
    ...set(dot),
    ...overRow(
      cursor,
      rowBytes,
      store(
        outRow,
        cursor,
        mul(mul(sub(load(dyRow, cursor), get(dot)), load(yRow, cursor)), get(scaleVector)),
      ),
    ),
  ];
  return {
    name: 'softmaxGrad',
    params: [I32, I32, I32, I32, I32, F32],
    results: [],
    locals: locals.types,
    body: [
      ...get(scale),
      ...simd(simdOp.f32x4Splat),
      ...set(scaleVector),
      ...overRows(row, rows, rowBase, rowBytes, body),
    ],
  };
}

const functionsFor = moduleFunctions<SoftmaxFunctions>(() => [forward(false), forward(true), backward()]);

interface KernelArguments {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function softmaxKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const heap = wasmHeapOf(backend)!;
  const functions = functionsFor(heap.memory)!;
  const { x, mask } = inputs as Record<string, tf.TensorInfo | undefined>;
  const length = x!.shape[x!.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(x!.shape) / length;
  const out = heap.backend.makeOutput([...x!.shape], 'float32');
  const scale = attrs!.scale as number;
  if (mask === undefined)
    functions.softmax(heap.offsetOf(x!), 0, heap.offsetOf(out), rows, length * 4, 1, scale);
  else {
    const period = rows / (tf.util.sizeFromShape(mask.shape) / length);
    functions.softmaxMasked(
      heap.offsetOf(x!),
      heap.offsetOf(mask),
      heap.offsetOf(out),
      rows,
      length * 4,
      period,
      scale,
    );
  }
  return out;
}

function softmaxGradKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const heap = wasmHeapOf(backend)!;
  const { y, dy } = inputs as Record<string, tf.TensorInfo>;
  const length = y!.shape[y!.shape.length - 1]!;
  const out = heap.backend.makeOutput([...y!.shape], 'float32');
  functionsFor(heap.memory)!.softmaxGrad(
    heap.offsetOf(y!),
    heap.offsetOf(dy!),
    heap.offsetOf(out),
    tf.util.sizeFromShape(y!.shape) / length,
    length * 4,
    attrs!.scale as number,
  );
  return out;
}

/** Whether the mask is [B, 1, …, 1, L] against scores [B, …, L] (or absent), as the fused pass reads it. */
function maskFits(scores: tf.Tensor, mask: tf.Tensor | undefined): boolean {
  if (mask === undefined) return true;
  const last = scores.rank - 1;
  return (
    mask.rank === scores.rank &&
    mask.shape[0] === scores.shape[0] &&
    mask.shape[last] === scores.shape[last] &&
    mask.shape.slice(1, last).every((size) => size === 1)
  );
}

/**
 * softmax(scores·scale + additiveMask) over the last axis, differentiable with respect to `scores`
 * (the mask is a constant: it gets no gradient). The attention probabilities of Vaswani et al. 2017,
 * Eq. 1, with scale = 1/√d_head. One fused SIMD pass each way on `wasm` (unless `FINEPRUNE_FUSED=0`);
 * the op chain `tf.softmax(tf.add(tf.mul(scores, scale), mask))` elsewhere.
 *
 * @param scores - float32 [..., L], L a multiple of 4 for the fused route
 * @param scale - multiplies the scores before the mask is added (1 for a plain softmax)
 * @param additiveMask - added after scaling, broadcast against the scores (for example [B, 1, 1, L] with 0
 *   for tokens and −10000 for padding); optional
 * @returns the probabilities, the shape of `scores`
 *
 * @example
 * ```ts
 * const probabilities = scaledMaskedSoftmax(tf.matMul(q, kT), 1 / Math.sqrt(64), additiveMask);
 * ```
 */
export function scaledMaskedSoftmax(scores: tf.Tensor, scale: number, additiveMask?: tf.Tensor): tf.Tensor {
  const perKeyMask =
    additiveMask === undefined ||
    (additiveMask.rank === 4 &&
      additiveMask.shape[0] === scores.shape[0] &&
      additiveMask.shape[1] === 1 &&
      additiveMask.shape[2] === 1 &&
      additiveMask.shape[3] === scores.shape[3]);
  if (scores.rank === 4 && perKeyMask && fusedKernelAvailable(FUSED_KERNELS.attentionSoftmax)) {
    const inputs: tf.NamedTensorMap =
      additiveMask === undefined ? { scores } : { scores, mask: additiveMask };
    return runRegisteredKernel(FUSED_KERNELS.attentionSoftmax, inputs, { scale });
  }
  const length = scores.shape[scores.rank - 1] ?? 0;
  const operands = additiveMask === undefined ? [scores] : [scores, additiveMask];
  const fused =
    scores.rank >= 1 &&
    length % 4 === 0 &&
    length > 0 &&
    maskFits(scores, additiveMask) &&
    fusedRoute(functionsFor, operands);
  if (!fused) {
    return tf.tidy(() => {
      const scaled = scale === 1 ? scores : tf.mul(scores, scale);
      return tf.softmax(additiveMask === undefined ? scaled : tf.add(scaled, additiveMask));
    });
  }
  const op = tf.customGrad((input, save) => {
    const inputs: tf.NamedTensorMap = { x: input as tf.Tensor };
    if (additiveMask !== undefined) inputs.mask = additiveMask;
    const y = runWasmKernel(FUSED_SOFTMAX_KERNEL, softmaxKernel, inputs, { scale })[0]!;
    (save as tf.GradSaveFunc)([y]);
    return {
      value: y,
      gradFunc: (dy, saved) =>
        runWasmKernel(FUSED_SOFTMAX_GRAD_KERNEL, softmaxGradKernel, { y: saved[0]!, dy }, { scale })[0]!,
    };
  });
  return op(scores) as tf.Tensor;
}

/**
 * softmax over the last axis, differentiable; {@link scaledMaskedSoftmax} with scale 1 and no mask.
 *
 * @param x - float32 [..., L]
 * @returns softmax(x), same shape
 *
 * @example
 * ```ts
 * softmax(tf.tensor1d([0, 0, 0, 0])).print(); // [0.25, 0.25, 0.25, 0.25]
 * ```
 */
export function softmax(x: tf.Tensor): tf.Tensor {
  return scaledMaskedSoftmax(x, 1);
}
