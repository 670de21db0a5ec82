/**
 * The element-wise work of soft movement pruning and L0 regularisation as single WebAssembly SIMD
 * passes over the `wasm` backend's heap, built at run time like the fused Adam step:
 *
 * - the hard-concrete noise u = ε + (1 − 2ε)·U, U from the run's xoshiro128** stream, generated in
 *   WebAssembly from the generator's state (the same float32 values, bit for bit, as drawing them in
 *   JavaScript; the state is handed back so the next JavaScript draw continues the stream);
 * - the hard-concrete gate M = min(1, ReLU((r − l)·σ((log u − log(1 − u) + S)/b) + l)) with the
 *   factor of its gradient in S, (r − l)/b·S̄(1 − S̄)·1{0 < Z ≤ 1} (Eq. 3 of Movement Pruning), in one
 *   pass instead of about twelve kernels (TF.js's wasm `Log`, `Log1p`, `Minimum` and comparisons are scalar loops);
 * - Σ σ(S − c) with its derivative σ(1 − σ), the λ Σ σ(S) penalty of soft movement pruning and the
 *   expected L0 norm of the hard-concrete gates (c = b·log(−l/r)), in one pass.
 *
 * log and exp are polynomial (wasm-simd-math.ts), so values differ from TF.js's op chains by a few
 * float32 ulp; the tests and the conformance suite state the tolerances.
 */

import * as tf from '@tensorflow/tfjs-core';
import { isXoshiro128, type RandomSource } from './random';
import { functionsFor } from './gate-passes';
import { wasmHeapOf } from './wasm-heap';

/** Kernel names under which the passes are registered for `wasm`. */
export const FUSED_GATE_KERNELS = {
  uniformNoise: 'FinepruneUniformNoise',
  hardConcreteGate: 'FinepruneHardConcreteGate',
  sigmoidSum: 'FinepruneSigmoidSum',
} as const;

type KernelArguments = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function uniformNoiseKernel({ backend, attrs }: KernelArguments): tf.TensorInfo {
  const { backend: wasm, memory, offsetOf } = wasmHeapOf(backend)!;
  const { shape, random, offset, span } = attrs as unknown as {
    shape: number[];
    random: RandomSource;
    offset: number;
    span: number;
  };
  const out = wasm.makeOutput(shape, 'float32');
  const [s0, s1, s2, s3] = random.state();
  const next = functionsFor(memory)!.noise(
    offsetOf(out),
    tf.util.sizeFromShape(shape),
    s0!,
    s1!,
    s2!,
    s3!,
    offset,
    span,
  );
  random.setState(next.map((word) => word >>> 0));
  return out;
}

/** The gate M and its gradient factor f, or with a weight input W ⊙ M, M and W ⊙ f. */
function hardConcreteGateKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo[] {
  const { backend: wasm, memory, offsetOf } = wasmHeapOf(backend)!;
  const { scores, u, weight } = inputs as Record<string, tf.TensorInfo | undefined>;
  const { beta, limitLeft, limitRight } = attrs as unknown as HardConcreteGateParameters;
  const shape = [...scores!.shape];
  const gate = wasm.makeOutput(shape, 'float32');
  const factor = wasm.makeOutput(shape, 'float32');
  const masked = weight === undefined ? undefined : wasm.makeOutput(shape, 'float32');
  const functions = functionsFor(memory)!;
  const common = [
    offsetOf(scores!),
    offsetOf(u!),
    offsetOf(gate),
    offsetOf(factor),
    tf.util.sizeFromShape(shape),
    1 / beta,
    limitRight - limitLeft,
    limitLeft,
    (limitRight - limitLeft) / beta,
  ] as const;
  if (masked === undefined) {
    functions.gate(...common);
    return [gate, factor];
  }
  functions.maskedGate(...common, offsetOf(weight!), offsetOf(masked));
  return [masked, gate, factor];
}

function sigmoidSumKernel({ inputs, backend, attrs }: KernelArguments): tf.TensorInfo[] {
  const { backend: wasm, memory, offsetOf } = wasmHeapOf(backend)!;
  const { scores } = inputs as Record<string, tf.TensorInfo>;
  const shape = [...scores!.shape];
  const sum = wasm.makeOutput([], 'float32');
  const derivative = wasm.makeOutput(shape, 'float32');
  const { shift } = attrs as unknown as { shift: number };
  functionsFor(memory)!.sigmoidSum(
    offsetOf(scores!),
    offsetOf(derivative),
    offsetOf(sum),
    tf.util.sizeFromShape(shape),
    shift,
  );
  return [sum, derivative];
}

const kernelFunctions: Record<string, (args: KernelArguments) => tf.TensorInfo | tf.TensorInfo[]> = {
  [FUSED_GATE_KERNELS.uniformNoise]: uniformNoiseKernel,
  [FUSED_GATE_KERNELS.hardConcreteGate]: hardConcreteGateKernel,
  [FUSED_GATE_KERNELS.sigmoidSum]: sigmoidSumKernel,
};

/** Whether the passes can run on the active backend; registers their kernels the first time. */
function ready(tensors: readonly tf.Tensor[]): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  if (tensors.some((tensor) => tensor.dtype !== 'float32' || tensor.size === 0)) return false;
  if (tensors.some((tensor) => !tf.util.arraysEqual(tensor.shape, tensors[0]!.shape))) return false;
  const heap = wasmHeapOf();
  if (heap === undefined || functionsFor(heap.memory) === null) return false;
  for (const [kernelName, kernelFunc] of Object.entries(kernelFunctions)) {
    if (tf.getKernel(kernelName, 'wasm') === undefined)
      tf.registerKernel({
        kernelName,
        backendName: 'wasm',
        kernelFunc: kernelFunc as unknown as tf.KernelFunc,
      });
  }
  return true;
}

/**
 * Uniform noise float32(offset + span·U) of a given shape, U the next draws of `random` in [0, 1),
 * generated in WebAssembly on the `wasm` backend: the same values, bit for bit, as
 * `offset + span * random.next()` in a JavaScript loop, and `random` is left where that loop would
 * leave it. Returns `undefined` elsewhere (another backend, no SIMD, an empty shape, or a random
 * source other than `createRandom`'s xoshiro128**): draw in JavaScript then.
 *
 * @example
 * ```ts
 * const u = fusedUniformNoise([784, 300], createRandom(1), 1e-6, 1 - 2e-6); // U(ε, 1 − ε)
 * ```
 */
export function fusedUniformNoise(
  shape: readonly number[],
  random: unknown,
  offset: number,
  span: number,
): tf.Tensor | undefined {
  if (!isXoshiro128(random) || tf.util.sizeFromShape([...shape]) === 0) return undefined;
  if (!ready([])) return undefined;
  const attrs = { shape: [...shape], random, offset, span } as unknown as tf.NamedAttrMap;
  return tf.engine().runKernel(FUSED_GATE_KERNELS.uniformNoise, {}, attrs) as tf.Tensor;
}

/**
 * The hard-concrete parameters b (temperature), l and r (the stretched interval).
 *
 * @example
 * ```ts
 * const parameters: HardConcreteGateParameters = { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 };
 * ```
 */
export interface HardConcreteGateParameters {
  beta: number;
  limitLeft: number;
  limitRight: number;
}

/**
 * The stochastic hard-concrete gate M = min(1, ReLU((r − l)·σ((log u − log(1 − u) + S)/b) + l))
 * (Louizos et al. 2017; Sec. 4 of Movement Pruning) as one fused pass on `wasm`, differentiable in S
 * with the gradient of Eq. (3): ∂L/∂S = ∂L/∂M · (r − l)/b · S̄(1 − S̄) · 1{0 < Z ≤ 1}. Within 1e-6 of
 * the TF.js op chain (values and gradients; see the tests). Returns `undefined` where it cannot run
 * (another backend, no SIMD, dtypes other than float32, shapes that differ, empty tensors).
 *
 * @example
 * ```ts
 * const gate = fusedHardConcreteGate(scores, u, { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
 * ```
 */
export function fusedHardConcreteGate(
  scores: tf.Tensor,
  u: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor | undefined {
  if (!ready([scores, u])) return undefined;
  const attrs = { ...parameters } as unknown as tf.NamedAttrMap;
  const gate = tf.customGrad((s, save) => {
    const [value, factor] = tf
      .engine()
      .runKernel(FUSED_GATE_KERNELS.hardConcreteGate, { scores: s as tf.Tensor, u }, attrs) as tf.Tensor[];
    (save as tf.GradSaveFunc)([factor!]);
    return { value: value!, gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) }; // Eq. (3)
  });
  return gate(scores);
}

/**
 * Σ σ(S − shift) as a scalar, differentiable in S (∂/∂S = σ(1 − σ)), as one fused pass on `wasm`:
 * the λ Σ σ(S) penalty of soft movement pruning (shift 0) and the expected L0 norm of hard-concrete
 * gates (shift b·log(−l/r)). The sum is accumulated in float64 and rounded once, so it is closer
 * to the exact sum than wasm's float32 `tf.sum(tf.sigmoid(...))` (within 1e-6 relative, against
 * ~1e-4 for the op chain on 235k scores). Returns `undefined` where it
 * cannot run (another backend, no SIMD, a dtype other than float32, an empty tensor).
 *
 * @example
 * ```ts
 * const penalty = fusedSigmoidSum(scores, 0); // Σ σ(S)
 * ```
 */
export function fusedSigmoidSum(scores: tf.Tensor, shift: number): tf.Scalar | undefined {
  if (!ready([scores])) return undefined;
  const attrs = { shift } as unknown as tf.NamedAttrMap;
  const sum = tf.customGrad((s, save) => {
    const [value, derivative] = tf
      .engine()
      .runKernel(FUSED_GATE_KERNELS.sigmoidSum, { scores: s as tf.Tensor }, attrs) as tf.Tensor[];
    (save as tf.GradSaveFunc)([derivative!]);
    return { value: value!, gradFunc: (dy, saved) => tf.mul(dy, saved[0]!) }; // ∂σ/∂S = σ(1 − σ)
  });
  return sum(scores) as tf.Scalar;
}

/**
 * The deterministic hard-concrete gates M̂ = min(1, ReLU((r − l)σ(S) + l)) of score tensors (Sec. 4
 * of Movement Pruning) and the number of open gates (M̂ > 0) in each, from one fused pass per tensor
 * on `wasm` (within 1e-6 of the op chain; the counts agree wherever M̂ is not within 1e-6 of 0).
 * Returns `undefined` where it cannot run (another backend, no SIMD, a dtype other than float32, an
 * empty tensor).
 *
 * @example
 * ```ts
 * const result = fusedHardConcreteTestMasks([scores], { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
 * if (result) console.log(result.counts[0], 'gates open');
 * ```
 */
export function fusedHardConcreteTestMasks(
  scores: readonly tf.Tensor[],
  parameters: HardConcreteGateParameters,
): { masks: tf.Tensor[]; counts: number[] } | undefined {
  if (scores.length === 0 || !scores.every((tensor) => ready([tensor]))) return undefined;
  const { backend, memory, offsetOf } = wasmHeapOf()!;
  const functions = functionsFor(memory)!;
  const span = parameters.limitRight - parameters.limitLeft;
  const outputs = scores.map((tensor) => backend.makeOutput([...tensor.shape], 'float32'));
  const counts = scores.map((tensor, index) =>
    functions.testGate(offsetOf(tensor), offsetOf(outputs[index]!), tensor.size, span, parameters.limitLeft),
  );
  return { masks: outputs.map((output) => tf.engine().makeTensorFromTensorInfo(output)), counts };
}

/**
 * W ⊙ M for the stochastic hard-concrete gate M of {@link fusedHardConcreteGate}, as one fused pass
 * on `wasm` that also leaves what the backward pass needs: ∂L/∂W = ∂L/∂(W ⊙ M) ⊙ M and
 * ∂L/∂S = ∂L/∂(W ⊙ M) ⊙ W ⊙ (r − l)/b · S̄(1 − S̄) · 1{0 < Z ≤ 1} (Eq. 3 of Movement Pruning). Saves
 * the separate product with W and one multiplication of the backward pass. Returns `undefined`
 * where it cannot run (as {@link fusedHardConcreteGate}).
 *
 * @example
 * ```ts
 * const masked = fusedHardConcreteMaskedWeight(weight, scores, u, { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
 * ```
 */
export function fusedHardConcreteMaskedWeight(
  weight: tf.Tensor,
  scores: tf.Tensor,
  u: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor | undefined {
  if (!ready([weight, scores, u])) return undefined;
  const attrs = { ...parameters } as unknown as tf.NamedAttrMap;
  const op = tf.customGrad((w, s, save) => {
    const [masked, gate, weightedFactor] = tf
      .engine()
      .runKernel(
        FUSED_GATE_KERNELS.hardConcreteGate,
        { scores: s as tf.Tensor, u, weight: w as tf.Tensor },
        attrs,
      ) as tf.Tensor[];
    (save as tf.GradSaveFunc)([gate!, weightedFactor!]);
    return {
      value: masked!,
      // ∂L/∂W = dy ⊙ M; ∂L/∂S = dy ⊙ W ⊙ f (Eq. 3)
      gradFunc: (dy, saved) => [tf.mul(dy, saved[0]!), tf.mul(dy, saved[1]!)],
    };
  });
  return op(weight, scores);
}
