/**
 * Natural logarithm, exponential and logistic sigmoid on four float32 lanes, as WebAssembly SIMD
 * instruction sequences for the fused kernels (WebAssembly has no transcendental instructions, and
 * TF.js's wasm `Log`, `Exp` and `Sigmoid` are scalar loops). Each builder reads its argument from a
 * v128 local, uses the scratch locals it is given and leaves the result on the stack.
 *
 * Accuracy (measured against float64 in wasm-simd-math.test.ts): log within 2 ulp on positive
 * normal numbers (2.6 ulp right next to 1); exp within 2 ulp on [−87, 88] (arguments outside are clamped there, so exp never
 * overflows to ∞ and never returns a subnormal); sigmoid within 4e-7 relative.
 */

import { f32Const, get, i32Const, set, simd, simdOp } from './wasm-binary';

/** The SIMD opcodes these sequences add to {@link simdOp} (WebAssembly fixed-width SIMD numbering). */
export const simdMathOp = {
  v128Const: 0x0c,
  i8x16Shuffle: 0x0d,
  f64x2ExtractLane: 0x21,
  i32x4Splat: 0x11,
  v128Or: 0x50,
  v128Bitselect: 0x52,
  v128Store32Lane: 0x5a,
  f64x2PromoteLowF32x4: 0x5f,
  i32x4Shl: 0xab,
  i32x4ShrU: 0xad,
  i32x4Add: 0xae,
  f32x4Pmin: 0xea,
  f32x4Pmax: 0xeb,
  f64x2Add: 0xf0,
  f32x4ConvertI32x4S: 0xfa,
} as const;

/** A float32 constant in all four lanes. */
export function splatF32(value: number): number[] {
  return [...f32Const(value), ...simd(simdOp.f32x4Splat)];
}

/** An int32 constant in all four lanes. */
export function splatI32(value: number): number[] {
  return [...i32Const(value), ...simd(simdMathOp.i32x4Splat)];
}

/** `a ∘ b` for two instruction sequences that each leave one v128. */
function binary(code: number, a: number[], b: number[]): number[] {
  return [...a, ...b, ...simd(code)];
}

export const vAdd = (a: number[], b: number[]) => binary(simdOp.f32x4Add, a, b);
export const vSub = (a: number[], b: number[]) => binary(simdOp.f32x4Sub, a, b);
export const vMul = (a: number[], b: number[]) => binary(simdOp.f32x4Mul, a, b);
export const vDiv = (a: number[], b: number[]) => binary(simdOp.f32x4Div, a, b);
/**
 * min(a, b) and max(a, b) as the "pseudo" forms (b < a ? b : a, a < b ? b : a): one instruction on
 * x64 where the IEEE forms take several; a NaN in `a` comes through, so pass the data as `a`.
 */
export const vMin = (a: number[], b: number[]) => binary(simdMathOp.f32x4Pmin, a, b);
export const vMax = (a: number[], b: number[]) => binary(simdMathOp.f32x4Pmax, a, b);

/** Horner's scheme: c₀ + x(c₁ + x(c₂ + …)) for the coefficients from c₀ up, x in a local. */
function horner(x: number, coefficients: readonly number[]): number[] {
  let code = splatF32(coefficients[coefficients.length - 1]!);
  for (let index = coefficients.length - 2; index >= 0; index -= 1)
    code = vAdd(vMul(code, get(x)), splatF32(coefficients[index]!));
  return code;
}

// ln 2 split so that k·LN2_HIGH is exact for |k| < 2⁹ (Cody & Waite's reduction).
const LN2_HIGH = 0.693359375;
const LN2_LOW = -2.1219444e-4;

/** Scratch v128 locals of {@link vLog}. */
export interface LogLocals {
  exponent: number;
  mantissa: number;
  t: number;
  t2: number;
}

/**
 * ln x for positive normal x in local `x`: x = m·2ᵉ with m in [√½, √2), then
 * ln m = 2 artanh t = 2(t + t³/3 + … + t⁹/9) with t = (m − 1)/(m + 1), |t| ≤ 0.172, and
 * ln x = e·ln 2 + ln m.
 */
export function vLog(x: number, locals: LogLocals): number[] {
  const { exponent, mantissa, t, t2 } = locals;
  return [
    // e = (bits >>> 23) − 127  (x > 0: no sign bit)
    ...binary(simdOp.i32x4Sub, [...get(x), ...i32Const(23), ...simd(simdMathOp.i32x4ShrU)], splatI32(127)),
    ...set(exponent),
    // m = 1.mantissa in [1, 2)
    ...binary(simdMathOp.v128Or, binary(simdOp.v128And, get(x), splatI32(0x7fffff)), splatI32(0x3f800000)),
    ...set(mantissa),
    // m ≥ √2 → m/2, e + 1 (the comparison's lanes are −1 where true)
    ...vMul(get(mantissa), splatF32(0.5)),
    ...get(mantissa),
    ...binary(simdOp.f32x4Ge, get(mantissa), splatF32(Math.SQRT2)),
    ...simd(simdMathOp.v128Bitselect),
    ...binary(simdOp.i32x4Sub, get(exponent), binary(simdOp.f32x4Ge, get(mantissa), splatF32(Math.SQRT2))),
    ...set(exponent),
    ...set(mantissa),
    // t = (m − 1)/(m + 1), t² = t·t
    ...vDiv(vSub(get(mantissa), splatF32(1)), vAdd(get(mantissa), splatF32(1))),
    ...set(t),
    ...vMul(get(t), get(t)),
    ...set(t2),
    // e·ln2_high + (e·ln2_low + 2t·(1 + t²/3 + t⁴/5 + t⁶/7 + t⁸/9))
    ...[...get(exponent), ...simd(simdMathOp.f32x4ConvertI32x4S)],
    ...set(exponent),
    ...vAdd(
      vMul(get(exponent), splatF32(LN2_HIGH)),
      vAdd(
        vMul(get(exponent), splatF32(LN2_LOW)),
        vMul(vMul(get(t), splatF32(2)), horner(t2, [1, 1 / 3, 1 / 5, 1 / 7, 1 / 9])),
      ),
    ),
  ];
}

/** Scratch v128 locals of {@link vExp}. */
export interface ExpLocals {
  reduced: number;
  k: number;
}

// 1.5·2²³: adding it rounds a float of magnitude < 2²² to an integer held in the low mantissa bits.
const ROUNDING_MAGIC = 12582912;
const ROUNDING_MAGIC_BITS = 0x4b400000;

/**
 * eʸ for y in local `y` (clamped to [−87, 88]): k = round(y/ln 2), r = y − k·ln 2 (|r| ≤ 0.347),
 * eʳ by its Taylor polynomial to degree 7, times 2ᵏ built in the exponent bits. The rounding adds
 * and subtracts 1.5·2²³ (whose sum's low bits are then k) instead of `nearest` and a saturating
 * conversion, which V8 emits as long sequences on x64. Overwrites `y`.
 */
export function vExp(y: number, locals: ExpLocals): number[] {
  const { reduced, k } = locals;
  return [
    ...vMin(vMax(get(y), splatF32(-87)), splatF32(88)),
    ...set(y),
    // k + 1.5·2²³, its float bits hold k in the low mantissa bits; `reduced` holds k as a float first
    ...vAdd(vMul(get(y), splatF32(Math.LOG2E)), splatF32(ROUNDING_MAGIC)),
    ...set(k),
    ...vSub(get(k), splatF32(ROUNDING_MAGIC)),
    ...set(reduced),
    ...vSub(vSub(get(y), vMul(get(reduced), splatF32(LN2_HIGH))), vMul(get(reduced), splatF32(LN2_LOW))),
    ...set(reduced),
    // eʳ ≈ Σ rⁱ/i!, i ≤ 7
    ...horner(reduced, [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040]),
    // 2ᵏ = (k + 127) << 23 as float bits, k = bits − bits(1.5·2²³)
    ...get(k),
    ...splatI32(127 - ROUNDING_MAGIC_BITS),
    ...simd(simdMathOp.i32x4Add),
    ...i32Const(23),
    ...simd(simdMathOp.i32x4Shl),
    ...simd(simdOp.f32x4Mul),
  ];
}

/** σ(x) = 1/(1 + e⁻ˣ) for x in local `x` (overwritten). */
export function vSigmoid(x: number, locals: ExpLocals): number[] {
  return [...vSub(splatF32(0), get(x)), ...set(x), ...vDiv(splatF32(1), vAdd(splatF32(1), vExp(x, locals)))];
}
