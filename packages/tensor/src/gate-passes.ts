/**
 * The WebAssembly functions of the fused L0 and soft-movement passes (see fused-gates.ts), written
 * as instructions with wasm-binary.ts and wasm-simd-math.ts and instantiated once per memory.
 */

import {
  address,
  byteBounds,
  F32,
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
  V128,
  whileBelow,
} from './wasm-binary';
import { moduleFunctions } from './fused-module';
import { simdMathOp, splatF32, vAdd, vDiv, vLog, vMax, vMin, vMul, vSigmoid, vSub } from './wasm-simd-math';
import { xoshiroStep } from './wasm-xoshiro';

const F64 = 0x7c;

/** Scalar opcodes of the generator (WebAssembly core numbering), beside wasm-binary.ts's `op`. */
const scalarOp = {
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
  const draw = [
    ...xoshiroStep([s0, s1, s2, s3], t, result),
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

/** The exported functions of the module (byte offsets, counts and float32 scalars). */
export type GateFunctions = {
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

/** The passes bound to `memory` (cached); `null` where WebAssembly SIMD is missing. */
export const functionsFor = moduleFunctions<GateFunctions>(() => [
  noiseFunction(),
  gateFunction(false),
  gateFunction(true),
  testGateFunction(),
  sigmoidSumFunction(),
]);
