/**
 * The element-wise work of soft movement pruning and L0 regularisation as single WebAssembly SIMD
 * passes over the `wasm` backend's heap, built at run time like the fused Adam step:
 *
 * - the hard-concrete noise u = ε + (1 − 2ε)·U, U from the run's xoshiro128** stream, generated in
 *   WebAssembly from the generator's state (the same float32 values, bit for bit, as drawing them in
 *   JavaScript; the state is handed back so the next JavaScript draw continues the stream);
 * - the hard-concrete gate M = min(1, ReLU((r − l)·σ((log u − log(1 − u) + S)/b) + l)) with the
 *   factor of its gradient in S, (r − l)/b·S̄(1 − S̄)·1{0 < Z ≤ 1} (Eq. 3 of Movement Pruning), in one
 *   pass instead of about twelve kernels (TF.js's wasm `Log`, `Log1p` and `Sigmoid` are scalar loops);
 * - Σ σ(S − c) with its derivative σ(1 − σ), the λ Σ σ(S) penalty of soft movement pruning and the
 *   expected L0 norm of the hard-concrete gates (c = b·log(−l/r)), in one pass.
 *
 * log and exp are polynomial (wasm-simd-math.ts), so values differ from TF.js's op chains by a few
 * float32 ulp; the tests and the conformance suite state the tolerances.
 */

import * as tf from '@tensorflow/tfjs-core';
import { isXoshiro128, type RandomSource } from './random';
import {
  address,
  buildModule,
  byteBounds,
  F32,
  get,
  I32,
  i32Const,
  increment,
  instantiate,
  loopWhileBelow,
  memarg,
  op,
  set,
  simd,
  simdOp,
  V128,
  whileBelow,
} from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';
import { simdMathOp, splatF32, vAdd, vDiv, vLog, vMax, vMin, vMul, vSigmoid, vSub } from './wasm-simd-math';

/** Kernel names under which the passes are registered for `wasm`. */
export const FUSED_GATE_KERNELS = {
  uniformNoise: 'FinepruneUniformNoise',
  hardConcreteGate: 'FinepruneHardConcreteGate',
  sigmoidSum: 'FinepruneSigmoidSum',
} as const;

const F64 = 0x7c;

/** Scalar opcodes of the generator (WebAssembly core numbering), beside wasm-binary.ts's `op`. */
const scalarOp = {
  i32Xor: 0x73,
  i32Rotl: 0x77,
  f64Const: 0x44,
  f64Add: 0xa0,
  f64Mul: 0xa2,
  f32DemoteF64: 0xb6,
  f64ConvertI32U: 0xb8,
  f64PromoteF32: 0xbb,
} as const;

function f64Const(value: number): number[] {
  return [scalarOp.f64Const, ...new Uint8Array(new Float64Array([value]).buffer)];
}

/** How one element group is read and written: four lanes, or one element in lane 0 (the tail). */
type Lanes = 'simd' | 'tail';

function vLoad(base: number, cursor: number, lanes: Lanes): number[] {
  return [
    ...address(base, cursor),
    ...simd(lanes === 'simd' ? simdOp.v128Load : simdOp.v128Load32Zero),
    ...memarg(),
  ];
}

/** Stores the v128 that `value` leaves at `base + cursor` (all four lanes, or lane 0). */
function vStore(base: number, cursor: number, lanes: Lanes, value: number[]): number[] {
  return lanes === 'simd'
    ? [...address(base, cursor), ...value, ...simd(simdOp.v128Store), ...memarg()]
    : [...address(base, cursor), ...value, ...simd(simdMathOp.v128Store32Lane), ...memarg(), 0];
}

const splatLocal = (local: number) => [...get(local), ...simd(simdOp.f32x4Splat)];

/** Runs `body(lanes)` over n float32 elements: groups of four, then the tail one by one. */
function overElements(
  n: number,
  cursor: number,
  simdEnd: number,
  end: number,
  body: (lanes: Lanes) => number[],
) {
  return [
    ...byteBounds(n, end, simdEnd),
    ...loopWhileBelow(cursor, simdEnd, 16, body('simd')),
    ...loopWhileBelow(cursor, end, 4, body('tail')),
  ];
}

/**
 * noise(out, n, s0, s1, s2, s3, offset, span) → (s0, s1, s2, s3): n draws of xoshiro128**
 * (Blackman & Vigna 2018), each stored as float32(offset + span·U/2³²) computed in float64, as
 * `offset + span * random.next()` is in JavaScript.
 */
function noiseFunction() {
  const [out, n, s0, s1, s2, s3, offset, span] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [cursor, end, result, t] = [8, 9, 10, 11];
  const xorInto = (target: number, other: number) => [
    ...get(target),
    ...get(other),
    scalarOp.i32Xor,
    ...set(target),
  ];
  const draw = [
    // result = rotl(s1·5, 7)·9; t = s1 << 9
    ...get(s1),
    ...i32Const(5),
    op.i32Mul,
    ...i32Const(7),
    scalarOp.i32Rotl,
    ...i32Const(9),
    op.i32Mul,
    ...set(result),
    ...get(s1),
    ...i32Const(9),
    op.i32Shl,
    ...set(t),
    ...xorInto(s2, s0),
    ...xorInto(s3, s1),
    ...xorInto(s1, s2),
    ...xorInto(s0, s3),
    ...xorInto(s2, t),
    ...get(s3),
    ...i32Const(11),
    scalarOp.i32Rotl,
    ...set(s3),
    // out[i] = float32(offset + span·(result/2³²))
    ...address(out, cursor),
    ...get(offset),
    ...get(span),
    ...get(result),
    scalarOp.f64ConvertI32U,
    ...f64Const(2 ** -32),
    scalarOp.f64Mul,
    scalarOp.f64Mul,
    scalarOp.f64Add,
    scalarOp.f32DemoteF64,
    op.f32Store,
    ...memarg(),
    ...increment(cursor, 4),
  ];
  return {
    name: 'noise',
    params: [I32, I32, I32, I32, I32, I32, F64, F64],
    results: [I32, I32, I32, I32],
    locals: [I32, I32, I32, I32],
    body: [
      ...get(n),
      ...i32Const(2),
      op.i32Shl,
      ...set(end),
      ...whileBelow(cursor, end, draw),
      ...get(s0),
      ...get(s1),
      ...get(s2),
      ...get(s3),
    ],
  };
}

/**
 * gate(scores, u, gateOut, factorOut, n, 1/b, r − l, l, (r − l)/b): the hard-concrete gate and the
 * factor of its gradient in S (Sec. 4 and Eq. 3 of Movement Pruning). Multiplies by 1/b where the
 * op chain divides by b (at most 1 ulp apart; a division costs ~3× a multiplication here).
 */
function gateFunction(withWeight: boolean) {
  const [scores, u, gateOut, factorOut, n, inverseBeta, span, left, factorScale] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8,
  ];
  // maskedGate only: the weight W and the output W ⊙ M; factorOut then receives W ⊙ f.
  const [weight, maskedOut] = [9, 10];
  const first = withWeight ? 11 : 9;
  const [cursor, simdEnd, end] = [first, first + 1, first + 2];
  const [x, exponent, mantissa, t, t2, k, stretched, z] = [3, 4, 5, 6, 7, 8, 9, 10].map(
    (offset) => first + offset,
  ) as [number, number, number, number, number, number, number, number];
  // Two passes, each a shorter dependency chain per element group, so that the processor overlaps
  // more groups: first L = log(u/(1 − u)) = log u − log(1 − u) into factorOut, then the rest.
  const logits = (lanes: Lanes) => [
    ...vLoad(u, cursor, lanes),
    ...set(x),
    ...vDiv(get(x), vSub(splatF32(1), get(x))),
    ...set(x),
    ...vStore(factorOut, cursor, lanes, vLog(x, { exponent, mantissa, t, t2 })),
  ];
  const gates = (lanes: Lanes) => [
    // S̄ = σ((L + S)/b)
    ...vMul(vAdd(vLoad(factorOut, cursor, lanes), vLoad(scores, cursor, lanes)), splatLocal(inverseBeta)),
    ...set(x),
    ...vSigmoid(x, { reduced: t, k }),
    ...set(stretched),
    // Z = (r − l)S̄ + l
    ...vAdd(vMul(get(stretched), splatLocal(span)), splatLocal(left)),
    ...set(z),
    // M = min(1, ReLU(Z)) (kept in x)
    ...vMin(vMax(get(z), splatF32(0)), splatF32(1)),
    ...set(x),
    ...vStore(gateOut, cursor, lanes, get(x)),
    ...(withWeight ? vStore(maskedOut, cursor, lanes, vMul(vLoad(weight, cursor, lanes), get(x))) : []),
    // f = (r − l)·S̄(1 − S̄)/b where 0 < Z ≤ 1, else 0 (times W for maskedGate)
    ...vStore(factorOut, cursor, lanes, [
      ...vMul(vMul(get(stretched), vSub(splatF32(1), get(stretched))), splatLocal(factorScale)),
      ...[...get(z), ...splatF32(0), ...simd(simdOp.f32x4Gt)],
      ...[...get(z), ...splatF32(1), ...simd(simdOp.f32x4Le)],
      ...simd(simdOp.v128And),
      ...simd(simdOp.v128And),
      ...(withWeight ? [...vLoad(weight, cursor, lanes), ...simd(simdOp.f32x4Mul)] : []),
    ]),
  ];
  return {
    name: withWeight ? 'maskedGate' : 'gate',
    params: [I32, I32, I32, I32, I32, F32, F32, F32, F32, ...(withWeight ? [I32, I32] : [])],
    results: [],
    locals: [I32, I32, I32, ...Array(8).fill(V128)],
    body: [
      ...overElements(n, cursor, simdEnd, end, logits),
      ...i32Const(0),
      ...set(cursor),
      ...overElements(n, cursor, simdEnd, end, gates),
    ],
  };
}

/**
 * testGate(scores, out, n, r − l, l) → count: the deterministic gate M̂ = min(1, ReLU((r − l)σ(S) + l))
 * (Sec. 4 of Movement Pruning) and the number of its entries above 0.
 */
function testGateFunction() {
  const [scores, out, n, span, left] = [0, 1, 2, 3, 4];
  const [cursor, simdEnd, end, count] = [5, 6, 7, 8];
  const [x, k, reduced, gate, counts] = [9, 10, 11, 12, 13];
  const open = [...get(gate), ...splatF32(0), ...simd(simdOp.f32x4Gt)]; // −1 in lanes with M̂ > 0
  const body = (lanes: Lanes) => [
    ...vLoad(scores, cursor, lanes),
    ...set(x),
    ...vSigmoid(x, { reduced, k }),
    ...set(x),
    ...vMin(vMax(vAdd(vMul(get(x), splatLocal(span)), splatLocal(left)), splatF32(0)), splatF32(1)),
    ...set(gate),
    ...vStore(out, cursor, lanes, get(gate)),
    ...(lanes === 'simd'
      ? [...get(counts), ...open, ...simd(simdOp.i32x4Sub), ...set(counts)]
      : [...get(count), ...open, ...simd(simdOp.i32x4ExtractLane), 0, op.i32Sub, ...set(count)]),
  ];
  const lane = (index: number) => [...get(counts), ...simd(simdOp.i32x4ExtractLane), index];
  return {
    name: 'testGate',
    params: [I32, I32, I32, F32, F32],
    results: [I32],
    locals: [I32, I32, I32, I32, ...Array(5).fill(V128)],
    body: [
      ...overElements(n, cursor, simdEnd, end, body),
      ...get(count),
      ...lane(0),
      op.i32Add,
      ...lane(1),
      op.i32Add,
      ...lane(2),
      op.i32Add,
      ...lane(3),
      op.i32Add,
    ],
  };
}

/**
 * sigmoidSum(scores, derivativeOut, sumOut, n, c): Σ σ(S − c) into sumOut, accumulated in float64
 * (two f64x2 lanes pairs and a scalar tail) and rounded once, and σ(1 − σ) per element.
 */
function sigmoidSumFunction() {
  const [scores, derivativeOut, sumOut, n, shift] = [0, 1, 2, 3, 4];
  const [cursor, simdEnd, end] = [5, 6, 7];
  const total = 8;
  const [x, k, reduced, p, lowSums, highSums] = [9, 10, 11, 12, 13, 14];
  // lanes 2, 3 of p moved to lanes 0, 1 (i8x16.shuffle with byte indices 8…15, 8…15)
  const highHalf = [
    ...get(p),
    ...get(p),
    ...simd(simdMathOp.i8x16Shuffle),
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
  ];
  const accumulate = (sums: number, value: number[]) => [
    ...get(sums),
    ...value,
    ...simd(simdMathOp.f64x2PromoteLowF32x4),
    ...simd(simdMathOp.f64x2Add),
    ...set(sums),
  ];
  const lane = (sums: number, index: number) => [...get(sums), ...simd(simdMathOp.f64x2ExtractLane), index];
  const body = (lanes: Lanes) => [
    ...vSub(vLoad(scores, cursor, lanes), splatLocal(shift)),
    ...set(x),
    ...vSigmoid(x, { reduced, k }),
    ...set(p),
    ...vStore(derivativeOut, cursor, lanes, vMul(get(p), vSub(splatF32(1), get(p)))),
    ...(lanes === 'simd'
      ? [...accumulate(lowSums, get(p)), ...accumulate(highSums, highHalf)]
      : [
          ...get(total),
          ...get(p),
          ...simd(simdOp.f32x4ExtractLane),
          0,
          scalarOp.f64PromoteF32,
          scalarOp.f64Add,
          ...set(total),
        ]),
  ];
  return {
    name: 'sigmoidSum',
    params: [I32, I32, I32, I32, F32],
    results: [],
    locals: [I32, I32, I32, F64, ...Array(6).fill(V128)],
    body: [
      ...overElements(n, cursor, simdEnd, end, body),
      ...get(sumOut),
      ...lane(lowSums, 0),
      ...lane(lowSums, 1),
      scalarOp.f64Add,
      ...lane(highSums, 0),
      ...lane(highSums, 1),
      scalarOp.f64Add,
      scalarOp.f64Add,
      ...get(total),
      scalarOp.f64Add,
      scalarOp.f32DemoteF64,
      op.f32Store,
      ...memarg(),
    ],
  };
}

type GateFunctions = {
  noise(
    out: number,
    n: number,
    s0: number,
    s1: number,
    s2: number,
    s3: number,
    offset: number,
    span: number,
  ): number[];
  gate(
    scores: number,
    u: number,
    gateOut: number,
    factorOut: number,
    n: number,
    inverseBeta: number,
    span: number,
    left: number,
    factorScale: number,
  ): void;
  maskedGate(
    scores: number,
    u: number,
    gateOut: number,
    factorOut: number,
    n: number,
    inverseBeta: number,
    span: number,
    left: number,
    factorScale: number,
    weight: number,
    maskedOut: number,
  ): void;
  sigmoidSum(scores: number, derivativeOut: number, sumOut: number, n: number, shift: number): void;
  testGate(scores: number, out: number, n: number, span: number, left: number): number;
};

const instances = new WeakMap<WebAssembly.Memory, GateFunctions | null>();

/** The passes bound to `memory` (cached); `null` where WebAssembly SIMD is missing. */
function functionsFor(memory: WebAssembly.Memory): GateFunctions | null {
  if (!instances.has(memory)) {
    const bytes = buildModule([
      noiseFunction(),
      gateFunction(false),
      gateFunction(true),
      testGateFunction(),
      sigmoidSumFunction(),
    ]);
    instances.set(memory, instantiate<GateFunctions>(bytes, memory) ?? null);
  }
  return instances.get(memory)!;
}

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

// ---------------------------------------------------------------------------------------------
// Routed: the fused pass on wasm, the TF.js op chain (or JavaScript loop) everywhere else.

/**
 * Uniform noise float32(offset + span·U), U the next draws of `random` in [0, 1): generated in
 * WebAssembly on `wasm` when `random` is `createRandom`'s generator ({@link fusedUniformNoise}),
 * else by a JavaScript loop over `random.next()` — the same values either way.
 *
 * @example
 * ```ts
 * const u = uniformNoiseTensor([784, 300], createRandom(1), 1e-6, 1 - 2e-6);
 * ```
 */
export function uniformNoiseTensor(
  shape: readonly number[],
  random: { next(): number },
  offset: number,
  span: number,
): tf.Tensor {
  const fused = fusedUniformNoise(shape, random, offset, span);
  if (fused !== undefined) return fused;
  const values = new Float32Array(tf.util.sizeFromShape([...shape]));
  for (let index = 0; index < values.length; index += 1) values[index] = offset + span * random.next();
  return tf.tensor(values, [...shape], 'float32');
}

/**
 * The stochastic hard-concrete gate M = min(1, ReLU((r − l)·σ((log u − log(1 − u) + S)/b) + l)),
 * differentiable in S: {@link fusedHardConcreteGate} on `wasm`, the TF.js op chain elsewhere.
 *
 * @example
 * ```ts
 * const gate = hardConcreteGateTensor(scores, u, { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
 * ```
 */
export function hardConcreteGateTensor(
  scores: tf.Tensor,
  u: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor {
  const fused = fusedHardConcreteGate(scores, u, parameters);
  if (fused !== undefined) return fused;
  const { beta, limitLeft, limitRight } = parameters;
  return tf.tidy(() => {
    // S̄ = σ((log u − log(1 − u) + S)/b)
    const stretched = tf.sigmoid(tf.div(tf.add(tf.sub(tf.log(u), tf.log1p(tf.neg(u))), scores), beta));
    // Z = (r − l)S̄ + l; M = min(1, ReLU(Z))
    return tf.minimum(tf.relu(tf.add(tf.mul(stretched, limitRight - limitLeft), limitLeft)), 1);
  });
}

/**
 * The deterministic gate M̂ = min(1, ReLU((r − l)σ(S) + l)) by the TF.js op chain (any backend).
 *
 * @example
 * ```ts
 * const mask = hardConcreteTestMaskTensor(scores, { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
 * ```
 */
export function hardConcreteTestMaskTensor(
  scores: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor {
  const { limitLeft, limitRight } = parameters;
  // M̂ = min(1, ReLU((r − l)σ(S) + l))
  return tf.tidy(() =>
    tf.minimum(tf.relu(tf.add(tf.mul(tf.sigmoid(scores), limitRight - limitLeft), limitLeft)), 1),
  );
}

/**
 * M̂ of every score tensor and the number of open gates (M̂ > 0) in each: one fused pass per tensor
 * on `wasm` ({@link fusedHardConcreteTestMasks}), the op chain and one read-back elsewhere.
 *
 * @example
 * ```ts
 * const { masks, counts } = await hardConcreteTestMaskTensors([scores], parameters);
 * ```
 */
export async function hardConcreteTestMaskTensors(
  scores: readonly tf.Tensor[],
  parameters: HardConcreteGateParameters,
): Promise<{ masks: tf.Tensor[]; counts: number[] }> {
  const fused = fusedHardConcreteTestMasks(scores, parameters);
  if (fused !== undefined) return fused;
  const masks = scores.map((tensor) => hardConcreteTestMaskTensor(tensor, parameters));
  if (masks.length === 0) return { masks, counts: [] };
  const open = tf.tidy(() => tf.stack(masks.map((mask) => tf.sum(tf.cast(tf.greater(mask, 0), 'float32')))));
  const counts = Array.from(await open.data());
  open.dispose();
  return { masks, counts };
}

/**
 * Σ σ(S − shift), differentiable in S: {@link fusedSigmoidSum} on `wasm`, `tf.sum(tf.sigmoid(S −
 * shift))` elsewhere.
 *
 * @example
 * ```ts
 * const penalty = sigmoidSumTensor(scores, 0); // Σ σ(S)
 * ```
 */
export function sigmoidSumTensor(scores: tf.Tensor, shift: number): tf.Scalar {
  return (
    fusedSigmoidSum(scores, shift) ??
    tf.tidy(() => tf.sum(tf.sigmoid(shift === 0 ? scores : tf.sub(scores, shift))) as tf.Scalar)
  );
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

/**
 * W ⊙ M for the stochastic hard-concrete gate M, differentiable in W and S:
 * {@link fusedHardConcreteMaskedWeight} on `wasm`, `W ⊙ hardConcreteGateTensor(S, u)` elsewhere.
 *
 * @example
 * ```ts
 * const masked = hardConcreteMaskedWeightTensor(weight, scores, u, parameters);
 * ```
 */
export function hardConcreteMaskedWeightTensor(
  weight: tf.Tensor,
  scores: tf.Tensor,
  u: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor {
  return (
    fusedHardConcreteMaskedWeight(weight, scores, u, parameters) ??
    tf.tidy(() => tf.mul(weight, hardConcreteGateTensor(scores, u, parameters)))
  );
}
