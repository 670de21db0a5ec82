/**
 * One Adam step as a single pass over the wasm heap, for the `wasm` backend.
 *
 * On @tensorflow/tfjs-backend-wasm 4.22 an Adam update costs twelve kernels per variable, and its
 * `Sqrt` is a scalar loop (~1.4 ns per element on this project's machines, against ~0.2 ns for the
 * SIMD binary ops), so Adam on the 266k weights of the benchmark MLP takes ~1 ms of a 10 ms training
 * step. This module builds (at run time, from the bytes written out below) a tiny WebAssembly
 * function that imports the backend's own `WebAssembly.Memory` and performs the whole update with
 * 128-bit SIMD on the tensors where they lie: no copy in or out, one kernel instead of twelve.
 *
 * It evaluates exactly the same float32 operations in the same order as the op chain of
 * `adam()` in @fineprune/core — m' = m·β₁ + g·(1−β₁); v' = v·β₂ + (g·g)·(1−β₂);
 * u = (m'·η̂) / (√v' + ε̂) [+ w·λ]; w' = w − u — each IEEE-754 rounded to float32 (WebAssembly has no
 * fused multiply-add), so its results are bit-identical to the op chain's on wasm.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  address,
  byteBounds,
  F32,
  type FunctionSpec,
  get,
  I32,
  loopWhileBelow,
  memarg,
  op,
  simd,
  simdOp,
} from './wasm-binary';
import { moduleFunctions } from './fused-module';
import { ErrorCodes, FinepruneError } from './errors';
import { WASM_HEAP_LIMIT_BYTES, wasmHeapOf } from './wasm-heap';

/** The name under which the fused update is registered as a TF.js kernel for `wasm`. */
export const FUSED_ADAM_KERNEL = 'FinepruneFusedAdam';

/** The scalars of one Adam step (each is rounded to float32, as TF.js rounds scalar operands). */
export interface FusedAdamScalars {
  beta1: number;
  beta2: number;
  /** The bias-corrected step size α·√(1−β₂ᵗ)/(1−β₁ᵗ). */
  stepSize: number;
  /** ε scaled like the step size: ε·√(1−β₂ᵗ). */
  epsilonHat: number;
  /** Decoupled weight decay times the learning rate (AdamW); 0 for plain Adam. */
  decay: number;
}

/**
 * Parameters (locals 0–14): byte offsets w, m, v, g, outW, outM, outV, the element count n, then the
 * float32 scalars β₁, 1−β₁, β₂, 1−β₂, η̂, ε̂, λ. Locals 15 (i32): the byte cursor; 16 (i32): the byte
 * end of the SIMD part; 17 (i32): the byte end.
 */
const P = {
  w: 0,
  m: 1,
  v: 2,
  g: 3,
  outW: 4,
  outM: 5,
  outV: 6,
  n: 7,
  beta1: 8,
  oneMinusBeta1: 9,
  beta2: 10,
  oneMinusBeta2: 11,
  stepSize: 12,
  epsilonHat: 13,
  decay: 14,
  cursor: 15,
  simdEnd: 16,
  end: 17,
} as const;

/** The body of one update function; `withDecay` adds the AdamW term. */
function updateBody(withDecay: boolean): number[] {
  const at = (base: number) => address(base, P.cursor);
  const vload = (base: number) => [...at(base), ...simd(simdOp.v128Load), ...memarg()];
  const splat = (local: number) => [...get(local), ...simd(simdOp.f32x4Splat)];
  const fload = (base: number) => [...at(base), op.f32Load, ...memarg()];

  // One lane group (SIMD) or one element (scalar) of the update: m' stored, v' stored, w' stored.
  const step = (mode: 'simd' | 'scalar') => {
    const load = mode === 'simd' ? vload : fload;
    const scalar = mode === 'simd' ? splat : get;
    const pick = (vector: number, single: number) => (mode === 'simd' ? simd(vector) : [single]);
    const mul = pick(simdOp.f32x4Mul, op.f32Mul);
    const add = pick(simdOp.f32x4Add, op.f32Add);
    const sub = pick(simdOp.f32x4Sub, op.f32Sub);
    const div = pick(simdOp.f32x4Div, op.f32Div);
    const sqrt = pick(simdOp.f32x4Sqrt, op.f32Sqrt);
    const store = mode === 'simd' ? [...simd(simdOp.v128Store), ...memarg()] : [op.f32Store, ...memarg()];
    // m' = m·β₁ + g·(1−β₁)
    const firstMoment = [
      ...load(P.m),
      ...scalar(P.beta1),
      ...mul,
      ...load(P.g),
      ...scalar(P.oneMinusBeta1),
      ...mul,
      ...add,
    ];
    // v' = v·β₂ + (g·g)·(1−β₂)
    const secondMoment = [
      ...load(P.v),
      ...scalar(P.beta2),
      ...mul,
      ...load(P.g),
      ...load(P.g),
      ...mul,
      ...scalar(P.oneMinusBeta2),
      ...mul,
      ...add,
    ];
    // u = (m'·η̂) / (√v' + ε̂) [+ w·λ];  w' = w − u.  m' and v' are read back from the outputs.
    const update = [
      ...load(P.outM),
      ...scalar(P.stepSize),
      ...mul,
      ...load(P.outV),
      ...sqrt,
      ...scalar(P.epsilonHat),
      ...add,
      ...div,
      ...(withDecay ? [...load(P.w), ...scalar(P.decay), ...mul, ...add] : []),
    ];
    return [
      ...at(P.outM),
      ...firstMoment,
      ...store,
      ...at(P.outV),
      ...secondMoment,
      ...store,
      ...at(P.outW),
      ...load(P.w),
      ...update,
      ...sub,
      ...store,
    ];
  };

  return [
    ...byteBounds(P.n, P.end, P.simdEnd),
    ...loopWhileBelow(P.cursor, P.simdEnd, 16, step('simd')),
    ...loopWhileBelow(P.cursor, P.end, 4, step('scalar')),
  ];
}

function updateFunctions(): FunctionSpec[] {
  const params = [...Array(8).fill(I32), ...Array(7).fill(F32)];
  return [false, true].map((withDecay) => ({
    name: withDecay ? 'adamw' : 'adam',
    params,
    results: [],
    locals: [I32, I32, I32],
    body: updateBody(withDecay),
  }));
}

// ---------------------------------------------------------------------------------------------

type UpdateFunction = (
  w: number,
  m: number,
  v: number,
  g: number,
  outW: number,
  outM: number,
  outV: number,
  n: number,
  beta1: number,
  oneMinusBeta1: number,
  beta2: number,
  oneMinusBeta2: number,
  stepSize: number,
  epsilonHat: number,
  decay: number,
) => void;

type UpdateFunctions = { adam: UpdateFunction; adamw: UpdateFunction };

/** The update functions bound to `memory` (cached); `null` where WebAssembly SIMD is missing. */
const functionsFor = moduleFunctions<UpdateFunctions>(updateFunctions);

function fusedAdamKernel({
  inputs,
  backend,
  attrs,
}: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo[] {
  const { backend: wasm, memory, offsetOf } = wasmHeapOf(backend)!;
  const functions = functionsFor(memory)!;
  const { variable, m, v, gradient } = inputs as Record<string, tf.TensorInfo>;
  const scalars = attrs as unknown as FusedAdamScalars;
  const shape = [...variable!.shape];
  const outW = wasm.makeOutput(shape, 'float32');
  const outM = wasm.makeOutput(shape, 'float32');
  const outV = wasm.makeOutput(shape, 'float32');
  // Offsets are read after the outputs are allocated; the heap may have grown, but offsets stay.
  const update = scalars.decay > 0 ? functions.adamw : functions.adam;
  update(
    offsetOf(variable!),
    offsetOf(m!),
    offsetOf(v!),
    offsetOf(gradient!),
    offsetOf(outW),
    offsetOf(outM),
    offsetOf(outV),
    tf.util.sizeFromShape(shape),
    scalars.beta1,
    1 - scalars.beta1,
    scalars.beta2,
    1 - scalars.beta2,
    scalars.stepSize,
    scalars.epsilonHat,
    scalars.decay,
  );
  return [outW, outM, outV];
}

/**
 * One fused Adam step on the `wasm` backend (or on another backend that registers a kernel named
 * {@link FUSED_ADAM_KERNEL}, as `@fineprune/backend-webgpu` does): returns the new variable, first and second moments
 * (float32 tensors the caller owns), bit-identical to the TF.js op chain
 * `m' = m·β₁ + g·(1−β₁)`, `v' = v·β₂ + g²·(1−β₂)`, `w' = w − (m'·η̂/(√v' + ε̂) + w·λ)`.
 * Returns `undefined` when it cannot run here (another backend without the kernel, no WebAssembly SIMD, a dtype other
 * than float32, or shapes that differ): the caller then runs the op chain.
 *
 * @param variable - w, the current value
 * @param m - the first-moment slot
 * @param v - the second-moment slot
 * @param gradient - g
 * @param scalars - β₁, β₂, the bias-corrected step size η̂, ε̂ and the decay λ (AdamW; 0 for Adam)
 * @returns `[w', m', v']`, or `undefined` when the fused kernel is not available
 *
 * @example
 * ```ts
 * const next = fusedAdamStep(w, m, v, g, { beta1: 0.9, beta2: 0.999, stepSize: 1e-3, epsilonHat: 1e-8, decay: 0 });
 * if (next) { w.assign(next[0]); m.assign(next[1]); v.assign(next[2]); tf.dispose(next); }
 * ```
 */
export function fusedAdamStep(
  variable: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  gradient: tf.Tensor,
  scalars: FusedAdamScalars,
): [tf.Tensor, tf.Tensor, tf.Tensor] | undefined {
  const backend = tf.getBackend();
  if (variable.size === 0) return undefined;
  const tensors = [variable, m, v, gradient];
  if (
    tensors.some((tensor) => tensor.dtype !== 'float32' || !tf.util.arraysEqual(tensor.shape, variable.shape))
  )
    return undefined;
  if (backend !== 'wasm') {
    // Another backend may register its own kernel under this name (the WebGPU backend does).
    return tf.getKernel(FUSED_ADAM_KERNEL, backend) === undefined
      ? undefined
      : runFusedAdam(variable, m, v, gradient, scalars);
  }
  const heap = wasmHeapOf();
  if (heap === undefined || functionsFor(heap.memory) === null) return undefined;
  if (tf.getKernel(FUSED_ADAM_KERNEL, 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: FUSED_ADAM_KERNEL,
      backendName: 'wasm',
      kernelFunc: fusedAdamKernel as unknown as tf.KernelFunc,
    });
  }
  return runFusedAdam(variable, m, v, gradient, scalars);
}

function runFusedAdam(
  variable: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  gradient: tf.Tensor,
  scalars: FusedAdamScalars,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const outputs = tf.engine().runKernel(FUSED_ADAM_KERNEL, { variable, m, v, gradient }, {
    ...scalars,
  } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return [outputs[0]!, outputs[1]!, outputs[2]!];
}

/** Elements of m and v staged through the heap per pass of {@link fusedAdamStepHostSlots} (2 × 4 MiB). */
const HOST_SLOT_WINDOW = 1 << 20;

/** The wasm backend's reference count of a tensor's data (`BackendWasm.refCount`). */
interface ReferenceCounts {
  refCount?(dataId: unknown): number;
}

/**
 * {@link fusedAdamStep} with the moments m and v kept in JavaScript memory instead of the wasm heap,
 * which holds at most 4 GiB: at BERT-base scale the Adam slots of the weights and of the scores are
 * 1.36 GB, which with the weights, masks, scores, gradients and activations does not fit. The
 * variable is updated in place, so a step allocates nothing in the heap but a window of 2 × 1M
 * floats through which the moments pass (the variables stay where they are, and the heap does not
 * fragment from step to step); `m` and `v` are updated in place too. Bit-identical to
 * {@link fusedAdamStep}: the same SIMD pass runs on each window. Returns false, changing nothing,
 * where it cannot run: another backend, no SIMD, a shape or dtype mismatch, or a variable whose data
 * another tensor shares (a clone taken on wasm, which must keep its values); the caller then runs
 * the op chain on tensors made from `m` and `v`.
 *
 * @param variable - w, updated in place
 * @param m - the first moment, `variable.size` floats, updated in place
 * @param v - the second moment, updated in place
 * @param gradient - g
 * @param scalars - as for {@link fusedAdamStep}
 * @returns true when the step was done
 * @throws FinepruneError `WASM_HEAP_EXHAUSTED` when the heap has no room for the window
 *
 * @example
 * ```ts
 * const m = new Float32Array(w.size), v = new Float32Array(w.size);
 * const done = fusedAdamStepHostSlots(w, m, v, g, { beta1: 0.9, beta2: 0.999, stepSize: 1e-3, epsilonHat: 1e-8, decay: 0 });
 * ```
 */
export function fusedAdamStepHostSlots(
  variable: tf.Variable,
  m: Float32Array,
  v: Float32Array,
  gradient: tf.Tensor,
  scalars: FusedAdamScalars,
): boolean {
  if (tf.getBackend() !== 'wasm' || variable.size === 0) return false;
  if (
    m.length !== variable.size ||
    v.length !== variable.size ||
    [variable, gradient].some(
      (tensor) => tensor.dtype !== 'float32' || !tf.util.arraysEqual(tensor.shape, variable.shape),
    )
  )
    return false;
  const heap = wasmHeapOf();
  const wasm = heap?.backend.wasm;
  const functions = heap && functionsFor(heap.memory);
  if (!heap || !functions || wasm?._malloc === undefined || wasm._free === undefined) return false;
  if ((heap.backend as ReferenceCounts).refCount?.(variable.dataId) !== 1) return false;
  const n = m.length;
  const window = Math.min(n, HOST_SLOT_WINDOW);
  // Allocate before any view of the heap is made: an allocation may grow (and so move) the buffer.
  // Emscripten returns the address as a signed i32; above 2 GiB it reads negative.
  const scratch = wasm._malloc(8 * window) >>> 0;
  if (scratch === 0) {
    throw new FinepruneError({
      code: ErrorCodes.WASM_HEAP_EXHAUSTED,
      message: `The wasm heap (${heap.memory.buffer.byteLength} bytes, at most ${WASM_HEAP_LIMIT_BYTES}) has no room for the ${8 * window}-byte window of the Adam step.`,
      fix: 'Train a smaller model or batch on wasm, or use a backend whose memory is not a 32-bit heap.',
      details: { heapBytes: heap.memory.buffer.byteLength, limitBytes: WASM_HEAP_LIMIT_BYTES },
    });
  }
  const update = scalars.decay > 0 ? functions.adamw : functions.adam;
  const w = heap.offsetOf(variable);
  const g = heap.offsetOf(gradient);
  try {
    const values = new Float32Array(heap.memory.buffer);
    const mAt = scratch / 4;
    const vAt = mAt + window;
    for (let begin = 0; begin < n; begin += window) {
      const count = Math.min(window, n - begin);
      values.set(m.subarray(begin, begin + count), mAt);
      values.set(v.subarray(begin, begin + count), vAt);
      // The same SIMD pass as fusedAdamStep, in place: each element is read before it is written.
      update(
        w + 4 * begin,
        scratch,
        scratch + 4 * window,
        g + 4 * begin,
        w + 4 * begin,
        scratch,
        scratch + 4 * window,
        count,
        scalars.beta1,
        1 - scalars.beta1,
        scalars.beta2,
        1 - scalars.beta2,
        scalars.stepSize,
        scalars.epsilonHat,
        scalars.decay,
      );
      m.set(values.subarray(mAt, mAt + count), begin);
      v.set(values.subarray(vAt, vAt + count), begin);
    }
  } finally {
    wasm._free(scratch);
  }
  return true;
}
