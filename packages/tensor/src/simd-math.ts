/**
 * Vector math for fineprune's fused wasm kernels, as WebAssembly SIMD instruction sequences
 * (f32x4, four lanes) written with {@link ./wasm-binary}: exp by range reduction, erf by the
 * Abramowitz & Stegun rational approximation that TF.js's own `Erf` kernels use, and the small
 * helpers (splatted constants, horizontal sums and maxima, loops over a row) the kernels share.
 *
 * Measured accuracy (simd-math.test.ts evaluates these sequences in a real module and compares them
 * with float64 `Math.exp` and a float64 erf series):
 * - {@link expVector}: max relative error 1.2e-7 (≤ 1 float32 ulp) on [−87, 0] and on [0, 88];
 *   0 below −87.336 (where e^x is below float32's smallest normal number).
 * - {@link erfVector}: max absolute error 4.4e-7 on [−6, 6] (the approximation's own bound is 1.5e-7,
 *   Abramowitz & Stegun 7.1.26; the rest is float32 rounding).
 */

import {
  address,
  f32Const,
  type FunctionSpec,
  get,
  I32,
  i32Const,
  loopWhileBelow,
  memarg,
  set,
  simd,
  simdOp,
  V128,
} from './wasm-binary';

/** Allocates a function's extra locals after its parameters; `types` lists them for `FunctionSpec.locals`. */
export class Locals {
  readonly types: number[] = [];
  constructor(private readonly parameterCount: number) {}
  /** A new local of `type`; returns its index. */
  add(type: number): number {
    this.types.push(type);
    return this.parameterCount + this.types.length - 1;
  }
  i32(): number {
    return this.add(I32);
  }
  v128(): number {
    return this.add(V128);
  }
  /** `count` new i32 locals. */
  i32s<N extends number>(count: N): LocalTuple<N> {
    return Array.from({ length: count }, () => this.i32()) as LocalTuple<N>;
  }
  /** `count` new v128 locals. */
  v128s<N extends number>(count: N): LocalTuple<N> {
    return Array.from({ length: count }, () => this.v128()) as LocalTuple<N>;
  }
}

/** A tuple of `N` local indices (N up to 8). */
export type LocalTuple<N extends number> = N extends 1
  ? [number]
  : N extends 2
    ? [number, number]
    : N extends 3
      ? [number, number, number]
      : N extends 4
        ? [number, number, number, number]
        : N extends 5
          ? [number, number, number, number, number]
          : N extends 6
            ? [number, number, number, number, number, number]
            : [number, number, number, number, number, number, number, number];

/** `i8x16.shuffle` of the two vectors on the stack by float lanes (0–3 the first, 4–7 the second). */
export function shuffleLanes(lanes: [number, number, number, number]): number[] {
  return [...simd(0x0d), ...lanes.flatMap((lane) => [4 * lane, 4 * lane + 1, 4 * lane + 2, 4 * lane + 3])];
}

/** `f32x4.splat(value)`: a constant in all four lanes. */
export function splat(value: number): number[] {
  return [...f32Const(value), ...simd(simdOp.f32x4Splat)];
}

/** `i32x4.splat(value)`. */
function splatInteger(value: number): number[] {
  return [...i32Const(value), ...simd(simdOp.i32x4Splat)];
}

/** The four lanes of vector local `vector` combined with the scalar op `combine` (lane 0 first). */
export function horizontal(vector: number, combine: number): number[] {
  const lane = (index: number) => [...get(vector), ...simd(simdOp.f32x4ExtractLane), index];
  return [...lane(0), ...lane(1), combine, ...lane(2), combine, ...lane(3), combine];
}

/** `v128.load` of the four floats at `base + cursor` (byte locals). */
export function load(base: number, cursor: number): number[] {
  return [...address(base, cursor), ...simd(simdOp.v128Load), ...memarg()];
}

/** Stores the vector `value` (instructions that leave one v128) at `base + cursor`. */
export function store(base: number, cursor: number, value: number[]): number[] {
  return [...address(base, cursor), ...value, ...simd(simdOp.v128Store), ...memarg()];
}

/** `f32x4` binary op `code` of the vectors left by `left` and `right`. */
export function binary(code: number, left: number[], right: number[]): number[] {
  return [...left, ...right, ...simd(code)];
}

export const add = (left: number[], right: number[]) => binary(simdOp.f32x4Add, left, right);
export const sub = (left: number[], right: number[]) => binary(simdOp.f32x4Sub, left, right);
export const mul = (left: number[], right: number[]) => binary(simdOp.f32x4Mul, left, right);
export const div = (left: number[], right: number[]) => binary(simdOp.f32x4Div, left, right);

/** A polynomial c₀·tⁿ + c₁·tⁿ⁻¹ + … + cₙ in Horner form, t a vector local. */
export function horner(t: number, coefficients: readonly number[]): number[] {
  let code = splat(coefficients[0]!);
  for (const coefficient of coefficients.slice(1)) code = add(mul(code, get(t)), splat(coefficient));
  return code;
}

// Cephes expf: e^x = 2ⁿ·e^r with n = round(x·log₂e), r = x − n·ln 2 (ln 2 split in two for exactness).
const LOG2E = Math.LOG2E;
const LN2_HIGH = 0.693359375;
/** 1.5·2²³: adding it rounds a float32 below 2²² to an integer held in the low mantissa bits. */
const ROUNDING = 12582912;
const LN2_LOW = -2.1219444e-4;
const EXP_POLYNOMIAL = [
  1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
];
/** Below this, e^x is under float32's smallest normal number and the result is 0. */
export const EXP_LOWEST = -87.33654;
/** Inputs above this are clamped (e^88 ≈ 1.65e38). */
export const EXP_HIGHEST = 88;

/** Temporaries {@link expVector} needs. */
export interface ExpLocals {
  x: number;
  n: number;
  r: number;
}

/** Three v128 locals for {@link expVector}. */
export function expLocals(locals: Locals): ExpLocals {
  return { x: locals.v128(), n: locals.v128(), r: locals.v128() };
}

/**
 * e^x of the vector that `value` leaves, leaving the result (Cephes expf: 2ⁿ·p(r), |r| ≤ ½ ln 2,
 * p of degree 7). Max relative error 1.2e-7 against float64 on [−87, 88]; 0 below {@link EXP_LOWEST}.
 */
export function expVector(value: number[], t: ExpLocals): number[] {
  // pmax/pmin (one instruction each on x86, unlike f32x4.max/min's NaN and −0 handling)
  const clamp = binary(
    simdOp.f32x4Pmin,
    binary(simdOp.f32x4Pmax, value, splat(EXP_LOWEST)),
    splat(EXP_HIGHEST),
  );
  // 2ⁿ as float32 bits: the low bits of t = x·log₂e + 1.5·2²³ hold n, so (bits(t) << 23) + bits(1.0)
  const power = [
    ...get(t.n),
    ...i32Const(23),
    ...simd(simdOp.i32x4Shl),
    ...splatInteger(0x3f800000),
    ...simd(simdOp.i32x4Add),
  ];
  const polynomial = add(add(mul(mul(horner(t.r, EXP_POLYNOMIAL), get(t.r)), get(t.r)), get(t.r)), splat(1));
  return [
    ...clamp,
    ...set(t.x),
    ...add(mul(get(t.x), splat(LOG2E)), splat(ROUNDING)),
    ...set(t.n), // t (n in its low mantissa bits)
    ...sub(get(t.n), splat(ROUNDING)),
    ...set(t.r), // n, rounded to nearest
    ...sub(sub(get(t.x), mul(get(t.r), splat(LN2_HIGH))), mul(get(t.r), splat(LN2_LOW))),
    ...set(t.r), // r = x − n·ln 2
    // 2ⁿ zeroed where x was clamped at the bottom (x ≤ EXP_LOWEST), before the product: multiplying
    // p by 2⁻¹²⁶ would make a subnormal, which x86 processors handle ~100× slower
    ...mul(polynomial, [
      ...power,
      ...binary(simdOp.f32x4Gt, get(t.x), splat(EXP_LOWEST)),
      ...simd(simdOp.v128And),
    ]),
  ];
}

// Abramowitz & Stegun 7.1.26: erf(a) ≈ 1 − (a₁t + a₂t² + a₃t³ + a₄t⁴ + a₅t⁵)·e^(−a²), t = 1/(1 + p·a), a ≥ 0.
const ERF_P = 0.3275911;
const ERF_A = [1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592];

/** Temporaries {@link erfVector} needs (its own plus exp's). */
export interface ErfLocals extends ExpLocals {
  value: number;
  absolute: number;
  t: number;
}

/** The v128 locals for {@link erfVector}. */
export function erfLocals(locals: Locals): ErfLocals {
  return { ...expLocals(locals), value: locals.v128(), absolute: locals.v128(), t: locals.v128() };
}

/**
 * erf of the vector that `value` leaves, leaving the result: the Abramowitz & Stegun 7.1.26
 * approximation (as TF.js's cpu and wasm `Erf`), odd-extended by copying the sign of the input.
 * Max absolute error 4.4e-7 on [−6, 6] (float32 rounding on top of the formula's 1.5e-7).
 */
export function erfVector(value: number[], t: ErfLocals): number[] {
  const series = mul(horner(t.t, ERF_A), get(t.t)); // (((a₅t + a₄)t + a₃)t + a₂)t + a₁)·t
  const decay = expVector([...mul(get(t.absolute), get(t.absolute)), ...simd(simdOp.f32x4Neg)], t); // e^(−a²)
  return [
    ...value,
    ...set(t.value),
    ...get(t.value),
    ...simd(simdOp.f32x4Abs),
    ...set(t.absolute),
    ...div(splat(1), add(splat(1), mul(get(t.absolute), splat(ERF_P)))),
    ...set(t.t),
    ...sub(splat(1), mul(series, decay)),
    // copysign: the magnitude from 1 − series·e^(−a²), the sign bit from the input
    ...get(t.value),
    ...splatInteger(0x7fffffff),
    ...simd(simdOp.v128Bitselect),
  ];
}

/** Temporaries {@link tanhVector} needs (its own plus exp's). */
export interface TanhLocals extends ExpLocals {
  value: number;
  decay: number;
}

/** The v128 locals for {@link tanhVector}. */
export function tanhLocals(locals: Locals): TanhLocals {
  return { ...expLocals(locals), value: locals.v128(), decay: locals.v128() };
}

/**
 * tanh of the vector that `value` leaves, leaving the result: sign(u)·(1 − e)/(1 + e) with
 * e = e^(−2|u|) from {@link expVector}. Max absolute error 1.2e-7 on [−10, 10].
 */
export function tanhVector(value: number[], t: TanhLocals): number[] {
  const magnitude = [...get(t.value), ...simd(simdOp.f32x4Abs)];
  return [
    ...value,
    ...set(t.value),
    ...expVector(mul(magnitude, splat(-2)), t),
    ...set(t.decay),
    ...div(sub(splat(1), get(t.decay)), add(splat(1), get(t.decay))),
    // copysign: the magnitude from (1 − e)/(1 + e), the sign bit from the input
    ...get(t.value),
    ...splatInteger(0x7fffffff),
    ...simd(simdOp.v128Bitselect),
  ];
}

/**
 * `for (cursor = 0; cursor < end; cursor += 16) body` over byte locals: one pass over a row of
 * float32s four at a time (the row length is a multiple of 4).
 */
export function overRow(cursor: number, end: number, body: number[]): number[] {
  return [...i32Const(0), ...set(cursor), ...loopWhileBelow(cursor, end, 16, body)];
}

/**
 * An exported function `name(input₀, …, output, byteLength)` that writes, four floats at a time,
 * `output[i] = expression(input₀[i], …)` over `byteLength` bytes (a multiple of 16). `expression`
 * gets the instructions that load each input's vector and the function's local allocator.
 */
export function elementwiseFunction(
  name: string,
  inputCount: number,
  expression: (inputs: number[][], locals: Locals) => number[],
): FunctionSpec {
  const locals = new Locals(inputCount + 2);
  const [output, end] = [inputCount, inputCount + 1];
  const cursor = locals.i32();
  const inputs = Array.from({ length: inputCount }, (_, index) => load(index, cursor));
  const body = overRow(cursor, end, store(output, cursor, expression(inputs, locals)));
  return { name, params: Array(inputCount + 2).fill(I32), results: [], locals: locals.types, body };
}
