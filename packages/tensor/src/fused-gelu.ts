/**
 * GELU and its gradient, differentiable, with a fused SIMD pass on `wasm`.
 *
 * TF.js's wasm `Erf`, `Exp` and `Tanh` are scalar loops, and the op chain of GELU's forward and
 * backward passes is nine kernels (timings: `encoderKernels` in bench/results/wasm-kernels.json). On `wasm` (unless `FINEPRUNE_FUSED=0`) each pass here is one function over the heap,
 * four lanes at a time, with the erf, exp and tanh of {@link ./simd-math}; elsewhere, and for sizes
 * that are not a multiple of 4, the op chain. Measured against the cpu op chain (|Δ|/max(1, |cpu|),
 * fused-gelu.test.ts): gelu 2.4e-7 (value) and 4.2e-7 (gradient); geluTanh 4.8e-7 and 1.4e-6.
 */

import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, fusedKernelAvailable, runRegisteredKernel } from './fused-kernels';
import { fusedRoute, moduleFunctions, runWasmKernel } from './fused-module';
import {
  add,
  div,
  elementwiseFunction,
  erfLocals,
  erfVector,
  expLocals,
  expVector,
  type Locals,
  mul,
  splat,
  type TanhLocals,
  tanhLocals,
  tanhVector,
} from './simd-math';
import { get, set } from './wasm-binary';
import { type WasmHeap, wasmHeapOf } from './wasm-heap';

const SQRT_HALF = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const CUBIC = 0.044715;

/** The fused GELU kernels' names (registered for `wasm` on first use). */
export const FUSED_GELU_KERNEL = 'FinepruneGelu';
export const FUSED_GELU_GRAD_KERNEL = 'FinepruneGeluGrad';

/** Φ(x) = ½(1 + erf(x/√2)) of the vector `x` leaves. */
function cdf(x: number[], locals: Locals): number[] {
  return mul(splat(0.5), add(splat(1), erfVector(mul(x, splat(SQRT_HALF)), erfLocals(locals))));
}

/** tanh(√(2/π)(x + 0.044715x³)) of the vector in local `x`. */
function tanhOfCubic(x: number, locals: TanhLocals): number[] {
  const cube = mul(mul(get(x), get(x)), get(x));
  return tanhVector(mul(splat(SQRT_2_OVER_PI), add(get(x), mul(splat(CUBIC), cube))), locals);
}

type Map1 = (x: number, out: number, bytes: number) => void;
type Map2 = (x: number, dy: number, out: number, bytes: number) => void;
interface GeluFunctions {
  gelu: Map1;
  geluGrad: Map2;
  geluTanh: Map1;
  geluTanhGrad: Map2;
}

const functionsFor = moduleFunctions<GeluFunctions>(() => [
  // GELU(x) = x·Φ(x) (Hendrycks & Gimpel 2016, Eq. 1)
  elementwiseFunction('gelu', 1, ([x], locals) => mul(x!, cdf(x!, locals))),
  // d/dx x·Φ(x) = Φ(x) + x·φ(x), φ(x) = exp(−x²/2)/√(2π)
  elementwiseFunction('geluGrad', 2, ([x, dy], locals) => {
    const density = mul(expVector(mul(mul(x!, x!), splat(-0.5)), expLocals(locals)), splat(INV_SQRT_2PI));
    return mul(dy!, add(cdf(x!, locals), mul(x!, density)));
  }),
  // ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (Hendrycks & Gimpel 2016, Sec. 2)
  elementwiseFunction('geluTanh', 1, ([x], locals) => {
    const value = locals.v128();
    return [
      ...x!,
      ...set(value),
      ...mul(mul(splat(0.5), get(value)), add(splat(1), tanhOfCubic(value, tanhLocals(locals)))),
    ];
  }),
  // d/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²), with 1 − t² = 4e/(1 + e)², e = e^(−2|u|)
  // (exact where t → ±1, unlike 1 − t·t)
  elementwiseFunction('geluTanhGrad', 2, ([x, dy], locals) => {
    const value = locals.v128();
    const tanh = tanhLocals(locals);
    const t = locals.v128();
    const du = mul(splat(SQRT_2_OVER_PI), add(splat(1), mul(splat(3 * CUBIC), mul(get(value), get(value)))));
    const onePlusDecay = add(splat(1), get(tanh.decay));
    const sech2 = div(mul(splat(4), get(tanh.decay)), mul(onePlusDecay, onePlusDecay));
    const slope = add(
      mul(splat(0.5), add(splat(1), get(t))),
      mul(mul(mul(splat(0.5), get(value)), sech2), du),
    );
    return [...x!, ...set(value), ...tanhOfCubic(value, tanh), ...set(t), ...mul(dy!, slope)];
  }),
]);

interface KernelArguments {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function heapOf(backend: unknown): { heap: WasmHeap; functions: GeluFunctions } {
  const heap = wasmHeapOf(backend)!;
  return { heap, functions: functionsFor(heap.memory)! };
}

function geluKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const { heap, functions } = heapOf(backend);
  const x = inputs.x!;
  const out = heap.backend.makeOutput([...x.shape], 'float32');
  const run = attrs!.approximate ? functions.geluTanh : functions.gelu;
  run(heap.offsetOf(x), heap.offsetOf(out), tf.util.sizeFromShape(x.shape) * 4);
  return out;
}

function geluGradKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo {
  const { heap, functions } = heapOf(backend);
  const { x, dy } = inputs as Record<string, tf.TensorInfo>;
  const out = heap.backend.makeOutput([...x!.shape], 'float32');
  const run = attrs!.approximate ? functions.geluTanhGrad : functions.geluGrad;
  run(heap.offsetOf(x!), heap.offsetOf(dy!), heap.offsetOf(out), tf.util.sizeFromShape(x!.shape) * 4);
  return out;
}

/** Whether the fused route runs for these operands (wasm, float32, a size that is a multiple of 4). */
function fused(tensors: tf.Tensor[]): boolean {
  return tensors[0]!.size % 4 === 0 && fusedRoute(functionsFor, tensors) !== undefined;
}

/**
 * GELU's op chains (any backend): `inner` is what the forward pass saves beside x (Φ(x), or the tanh
 * of the approximation), `value` and `slope` finish the value and dGELU/dx from it.
 */
const chains = {
  exact: {
    inner: (x: tf.Tensor) => tf.mul(0.5, tf.add(1, tf.erf(tf.mul(x, SQRT_HALF)))), // Φ(x)
    value: (x: tf.Tensor, phi: tf.Tensor) => tf.mul(x, phi),
    slope: (x: tf.Tensor, phi: tf.Tensor) =>
      tf.add(phi, tf.mul(x, tf.mul(tf.exp(tf.mul(tf.square(x), -0.5)), INV_SQRT_2PI))),
  },
  tanh: {
    // t = tanh(√(2/π)(x + 0.044715x³))
    inner: (x: tf.Tensor) => tf.tanh(tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(CUBIC, tf.pow(x, 3))))),
    value: (x: tf.Tensor, t: tf.Tensor) => tf.mul(tf.mul(0.5, x), tf.add(1, t)),
    slope: (x: tf.Tensor, t: tf.Tensor) => {
      const du = tf.mul(SQRT_2_OVER_PI, tf.add(1, tf.mul(3 * CUBIC, tf.square(x))));
      return tf.add(tf.mul(0.5, tf.add(1, t)), tf.mul(tf.mul(tf.mul(0.5, x), tf.sub(1, tf.square(t))), du));
    },
  },
};

function geluOp<T extends tf.Tensor>(x: T, approximate: boolean): T {
  const chain = approximate ? chains.tanh : chains.exact;
  const op = tf.customGrad((input, save) => {
    const value = input as tf.Tensor;
    if (fused([value])) {
      (save as tf.GradSaveFunc)([value]);
      return {
        value: runWasmKernel(FUSED_GELU_KERNEL, geluKernel, { x: value }, { approximate })[0]!,
        gradFunc: (dy, saved) =>
          runWasmKernel(FUSED_GELU_GRAD_KERNEL, geluGradKernel, { x: saved[0]!, dy }, { approximate })[0]!,
      };
    }
    const inner = tf.tidy(() => chain.inner(value));
    (save as tf.GradSaveFunc)([value, inner]);
    return {
      value: chain.value(value, inner),
      gradFunc: (dy, saved) => tf.mul(dy, chain.slope(saved[0]!, saved[1]!)),
    };
  });
  return op(x) as T;
}

/**
 * Exact GELU, x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)) (Hendrycks & Gimpel 2016, Eq. 1; Hugging Face
 * `gelu`), with the closed-form gradient Φ(x) + x·φ(x). One fused SIMD pass each way on `wasm`
 * (erf by Abramowitz & Stegun 7.1.26 as TF.js's `Erf`, max error 4.4e-7 in float32); the op chain
 * elsewhere.
 *
 * @param x - any float32 tensor
 * @returns GELU(x), same shape
 *
 * @example
 * ```ts
 * gelu(tf.tensor1d([1, -1])).print(); // [0.8413447, -0.1586553]
 * ```
 */
export function gelu<T extends tf.Tensor>(x: T): T {
  // One kernel where a backend package registered it (WebGPU), with the same closed-form gradient.
  if (fusedKernelAvailable(FUSED_KERNELS.gelu)) return runRegisteredKernel(FUSED_KERNELS.gelu, { x }) as T;
  return geluOp(x, false);
}

/**
 * The gradient of exact GELU at x against the upstream gradient dy, dy ⊙ (Φ(x) + x·φ(x)), without a
 * forward pass: the registered fused kernel where a backend package registered one (WebGPU), the
 * fused SIMD pass on `wasm`, the op chain elsewhere. For code that saved the pre-activation x itself
 * (`maskedDense` with `activation: 'gelu'`).
 *
 * @param x - the pre-activation, any float32 tensor
 * @param dy - the gradient in GELU(x), same shape
 * @returns dy ⊙ GELU′(x), same shape
 *
 * @example
 * ```ts
 * geluGradient(tf.scalar(0), tf.scalar(1)).print(); // 0.5
 * ```
 */
export function geluGradient<T extends tf.Tensor>(x: T, dy: T): T {
  if (fusedKernelAvailable(FUSED_KERNELS.geluGrad))
    return runRegisteredKernel(FUSED_KERNELS.geluGrad, { x, dy }) as T;
  if (fused([x]))
    return runWasmKernel(FUSED_GELU_GRAD_KERNEL, geluGradKernel, { x, dy }, { approximate: false })[0] as T;
  return tf.tidy(() => tf.mul(dy, chains.exact.slope(x, chains.exact.inner(x)))) as T;
}

/**
 * The tanh approximation of GELU, ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (Hendrycks & Gimpel 2016,
 * Sec. 2; Hugging Face `gelu_new`), with its closed-form gradient; fused on `wasm` like {@link gelu}.
 *
 * @param x - any float32 tensor
 * @returns the approximate GELU, same shape
 *
 * @example
 * ```ts
 * geluTanh(tf.scalar(1)).print(); // ≈ 0.8411920
 * ```
 */
export function geluTanh<T extends tf.Tensor>(x: T): T {
  return geluOp(x, true);
}
