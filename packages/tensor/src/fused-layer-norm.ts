/**
 * LayerNorm over the last axis and its gradient, differentiable, one fused SIMD pass per row on `wasm`.
 *
 * y = γ ⊙ x̂ + β with x̂ = (x − μ)·r, r = 1/√(σ² + ε) and the biased variance σ² (Ba et al. 2016,
 * Eq. 4). The forward pass saves x̂ and r; the backward pass is
 * dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)) with g = dy ⊙ γ, dγ = Σ_rows dy ⊙ x̂, dβ = Σ_rows dy, all in one
 * function over the rows. The op chain (eleven kernels forward, fourteen backward on TF.js) runs
 * elsewhere and for a feature count that is not a multiple of 4. Agreement with the cpu chain is
 * measured in fused-layer-norm.test.ts.
 */

import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, fusedKernelAvailable, runRegisteredKernel } from './fused-kernels';
import { fusedRoute, moduleFunctions, runWasmKernel } from './fused-module';
import { add, horizontal, load, Locals, mul, overRow, store, sub } from './simd-math';
import {
  F32,
  f32Const,
  get,
  I32,
  i32Const,
  loopWhileBelow,
  memarg,
  memoryFill,
  op,
  set,
  simd,
  simdOp,
} from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';

/** The fused layer norm kernels' names (registered for `wasm` on first use). */
export const FUSED_LAYER_NORM_KERNEL = 'FinepruneLayerNorm';
export const FUSED_LAYER_NORM_GRAD_KERNEL = 'FinepruneLayerNormGrad';

type Forward = (
  x: number,
  gamma: number,
  beta: number,
  out: number,
  xHat: number,
  inverse: number,
  rows: number,
  rowBytes: number,
  count: number,
  epsilon: number,
) => void;
type Backward = (
  dy: number,
  xHat: number,
  inverse: number,
  gamma: number,
  dx: number,
  dGamma: number,
  dBeta: number,
  rows: number,
  rowBytes: number,
  count: number,
) => void;
interface LayerNormFunctions {
  layerNorm: Forward;
  layerNormGrad: Backward;
}

/** A v128 local set to the splat of the f32 on the stack. */
function splatInto(local: number): number[] {
  return [...simd(simdOp.f32x4Splat), ...set(local)];
}

/** `target = base + row·rowBytes` for i32 locals. */
function rowAddress(base: number, rowBase: number, target: number): number[] {
  return [...get(base), ...get(rowBase), op.i32Add, ...set(target)];
}

function rowLoop(row: number, rows: number, rowBase: number, rowBytes: number, body: number[]): number[] {
  return [
    ...i32Const(0),
    ...set(row),
    ...loopWhileBelow(row, rows, 1, [...get(row), ...get(rowBytes), op.i32Mul, ...set(rowBase), ...body]),
  ];
}

function forward() {
  const [x, gamma, beta, out, xHat, inverse, rows, rowBytes, count, epsilon] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const locals = new Locals(10);
  const [row, rowBase, cursor, xRow, outRow, hatRow] = locals.i32s(6);
  const [total, mean, r] = [locals.v128(), locals.v128(), locals.v128()];
  const rInverse = locals.add(F32);
  const centered = sub(load(xRow, cursor), get(mean));
  const body = [
    ...rowAddress(x, rowBase, xRow),
    ...rowAddress(out, rowBase, outRow),
    ...rowAddress(xHat, rowBase, hatRow),
    // μ = Σx / n
    ...f32Const(0),
    ...splatInto(total),
    ...overRow(cursor, rowBytes, [...add(get(total), load(xRow, cursor)), ...set(total)]),
    ...horizontal(total, op.f32Add),
    ...get(count),
    op.f32Div,
    ...splatInto(mean),
    // σ² = Σ(x − μ)² / n;  r = 1/√(σ² + ε)
    ...f32Const(0),
    ...splatInto(total),
    ...overRow(cursor, rowBytes, [...add(get(total), mul(centered, centered)), ...set(total)]),
    ...f32Const(1),
    ...horizontal(total, op.f32Add),
    ...get(count),
    op.f32Div,
    ...get(epsilon),
    op.f32Add,
    op.f32Sqrt,
    op.f32Div,
    ...set(rInverse),
    ...get(inverse),
    ...get(row),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    ...get(rInverse),
    op.f32Store,
    ...memarg(),
    ...get(rInverse),
    ...splatInto(r),
    // x̂ = (x − μ)·r;  y = x̂·γ + β
    ...overRow(cursor, rowBytes, [
      ...store(hatRow, cursor, mul(centered, get(r))),
      ...store(outRow, cursor, add(mul(load(hatRow, cursor), load(gamma, cursor)), load(beta, cursor))),
    ]),
  ];
  return {
    name: 'layerNorm',
    params: [I32, I32, I32, I32, I32, I32, I32, I32, F32, F32],
    results: [],
    locals: locals.types,
    body: rowLoop(row, rows, rowBase, rowBytes, body),
  };
}

function backward() {
  const [dy, xHat, inverse, gamma, dx, dGamma, dBeta, rows, rowBytes, count] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const locals = new Locals(10);
  const [row, rowBase, cursor, dyRow, hatRow, dxRow] = locals.i32s(6);
  const [sumG, sumGHat, meanG, meanGHat, r] = locals.v128s(5);
  const g = mul(load(dyRow, cursor), load(gamma, cursor));
  const mean = (source: number, target: number) => [
    ...horizontal(source, op.f32Add),
    ...get(count),
    op.f32Div,
    ...splatInto(target),
  ];
  const body = [
    ...rowAddress(dy, rowBase, dyRow),
    ...rowAddress(xHat, rowBase, hatRow),
    ...rowAddress(dx, rowBase, dxRow),
    ...f32Const(0),
    ...splatInto(sumG),
    ...f32Const(0),
    ...splatInto(sumGHat),
    ...overRow(cursor, rowBytes, [
      ...add(get(sumG), g),
      ...set(sumG),
      ...add(get(sumGHat), mul(g, load(hatRow, cursor))),
      ...set(sumGHat),
      ...store(dGamma, cursor, add(load(dGamma, cursor), mul(load(dyRow, cursor), load(hatRow, cursor)))),
      ...store(dBeta, cursor, add(load(dBeta, cursor), load(dyRow, cursor))),
    ]),
    ...mean(sumG, meanG),
    ...mean(sumGHat, meanGHat),
    ...get(inverse),
    ...get(row),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    op.f32Load,
    ...memarg(),
    ...splatInto(r),
    // dx = r·((g − mean(g)) − x̂·mean(g ⊙ x̂))
    ...overRow(
      cursor,
      rowBytes,
      store(dxRow, cursor, mul(get(r), sub(sub(g, get(meanG)), mul(load(hatRow, cursor), get(meanGHat))))),
    ),
  ];
  const zero = (target: number) => [...get(target), ...i32Const(0), ...get(rowBytes), ...memoryFill()];
  return {
    name: 'layerNormGrad',
    params: [I32, I32, I32, I32, I32, I32, I32, I32, I32, F32],
    results: [],
    locals: locals.types,
    body: [...zero(dGamma), ...zero(dBeta), ...rowLoop(row, rows, rowBase, rowBytes, body)],
  };
}

const functionsFor = moduleFunctions<LayerNormFunctions>(() => [forward(), backward()]);

interface KernelArguments {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function layerNormKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo[] {
  const heap = wasmHeapOf(backend)!;
  const { x, gamma, beta } = inputs as Record<string, tf.TensorInfo>;
  const [rows, features] = x!.shape as [number, number];
  const out = heap.backend.makeOutput([rows, features], 'float32');
  const xHat = heap.backend.makeOutput([rows, features], 'float32');
  const inverse = heap.backend.makeOutput([rows, 1], 'float32');
  const at = (info: tf.TensorInfo) => heap.offsetOf(info);
  functionsFor(heap.memory)!.layerNorm(
    at(x!),
    at(gamma!),
    at(beta!),
    at(out),
    at(xHat),
    at(inverse),
    rows,
    features * 4,
    features,
    attrs!.epsilon as number,
  );
  return [out, xHat, inverse];
}

function layerNormGradKernel({ inputs, backend }: KernelArguments): tf.TensorInfo[] {
  const heap = wasmHeapOf(backend)!;
  const { dy, xHat, inverse, gamma } = inputs as Record<string, tf.TensorInfo>;
  const [rows, features] = dy!.shape as [number, number];
  const dx = heap.backend.makeOutput([rows, features], 'float32');
  const dGamma = heap.backend.makeOutput([features], 'float32');
  const dBeta = heap.backend.makeOutput([features], 'float32');
  const at = (info: tf.TensorInfo) => heap.offsetOf(info);
  functionsFor(heap.memory)!.layerNormGrad(
    at(dy!),
    at(xHat!),
    at(inverse!),
    at(gamma!),
    at(dx),
    at(dGamma),
    at(dBeta),
    rows,
    features * 4,
    features,
  );
  return [dx, dGamma, dBeta];
}

/** LayerNorm as the op chain: saves x̂, r and γ; the closed-form gradient (any backend). */
function chainLayerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor2D {
  const op = tf.customGrad((input, scale, offset, save) => {
    const { normalized, inverse } = tf.tidy(() => {
      const centered = tf.sub(input as tf.Tensor, tf.mean(input as tf.Tensor, 1, true));
      const variance = tf.mean(tf.square(centered), 1, true); // σ² = mean((x − μ)²)
      const r = tf.rsqrt(tf.add(variance, epsilon)); // r = 1/√(σ² + ε)
      return { normalized: tf.mul(centered, r), inverse: r };
    });
    (save as tf.GradSaveFunc)([normalized, inverse, scale as tf.Tensor]);
    return {
      value: tf.add(tf.mul(normalized, scale as tf.Tensor), offset as tf.Tensor), // γ ⊙ x̂ + β
      gradFunc: (dy, saved) => {
        const [xHat, r, g] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dyGamma = tf.mul(dy, g);
        const dx = tf.mul(
          r,
          tf.sub(
            tf.sub(dyGamma, tf.mean(dyGamma, 1, true)),
            tf.mul(xHat, tf.mean(tf.mul(dyGamma, xHat), 1, true)),
          ),
        );
        return [dx, tf.sum(tf.mul(dy, xHat), 0), tf.sum(dy, 0)];
      },
    };
  });
  return op(x, gamma, beta) as tf.Tensor2D;
}

/** LayerNorm as the fused kernels (wasm only). */
function fusedLayerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): tf.Tensor2D {
  const op = tf.customGrad((input, scale, offset, save) => {
    const [y, xHat, inverse] = runWasmKernel(
      FUSED_LAYER_NORM_KERNEL,
      layerNormKernel,
      { x: input as tf.Tensor, gamma: scale as tf.Tensor, beta: offset as tf.Tensor },
      { epsilon },
    );
    (save as tf.GradSaveFunc)([xHat!, inverse!, scale as tf.Tensor]);
    return {
      value: y!,
      gradFunc: (dy, saved) =>
        runWasmKernel(FUSED_LAYER_NORM_GRAD_KERNEL, layerNormGradKernel, {
          dy: dy as tf.Tensor,
          xHat: saved[0]!,
          inverse: saved[1]!,
          gamma: saved[2]!,
        }),
    };
  });
  return op(x, gamma, beta) as tf.Tensor2D;
}

/**
 * LayerNorm over the last axis of a [rows, features] matrix (Ba et al. 2016, Eq. 4):
 * y = γ ⊙ (x − μ)/√(σ² + ε) + β with the biased variance σ², differentiable with respect to x, γ and
 * β (closed-form gradient). One fused SIMD pass each way on `wasm` (unless `FINEPRUNE_FUSED=0`;
 * features a multiple of 4); the op chain elsewhere.
 *
 * @param x - [rows, features]
 * @param gamma - [features]
 * @param beta - [features]
 * @param epsilon - ε added to the variance
 * @returns [rows, features]
 *
 * @example
 * ```ts
 * layerNorm(tf.tensor2d([[1, 2, 3, 4]]), tf.ones([4]), tf.zeros([4]), 1e-12).print(); // [[-1.3416, -0.4472, 0.4472, 1.3416]]
 * ```
 */
export function layerNorm(
  x: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  epsilon: number,
): tf.Tensor2D {
  if (fusedKernelAvailable(FUSED_KERNELS.layerNorm)) {
    return runRegisteredKernel(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon }) as tf.Tensor2D;
  }
  const features = x.shape[1];
  const fused =
    x.rank === 2 &&
    features % 4 === 0 &&
    features > 0 &&
    fusedRoute(functionsFor, [x, gamma, beta]) !== undefined;
  return fused ? fusedLayerNorm(x, gamma, beta, epsilon) : chainLayerNorm(x, gamma, beta, epsilon);
}
