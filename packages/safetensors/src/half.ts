/**
 * Bit-exact conversions between float32 and the 16- and 8-bit float formats of safetensors.
 */

const scratch = new DataView(new ArrayBuffer(4));

/** The IEEE 754 binary32 bits of `value` rounded to float32. */
function float32Bits(value: number): number {
  scratch.setFloat32(0, value);
  return scratch.getUint32(0);
}

function float32FromBits(bits: number): number {
  scratch.setUint32(0, bits >>> 0);
  return scratch.getFloat32(0);
}

/** 2^-24, the smallest float16 subnormal (IEEE 754-2008 binary16: emin = -14, p = 11). */
const FLOAT16_SUBNORMAL_UNIT = 2 ** -24;

/**
 * Float32 bits → float16 bits, round to nearest, ties to even; integer-only, for bulk use.
 * @internal
 */
export function float32BitsToFloat16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const magnitude = bits & 0x7fffffff;
  if (magnitude >= 0x7f800000) return magnitude === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00;
  // 65520 = 65504 + 2^4 is the tie between the largest float16 (odd mantissa) and 2^16: it rounds up.
  if (magnitude >= 0x477ff000) return sign | 0x7c00;
  if (magnitude >= 0x38800000) {
    // Normal: rebias the exponent (127 → 15) and drop 13 mantissa bits, round half to even.
    const truncated = (magnitude >>> 13) - (112 << 10);
    const dropped = magnitude & 0x1fff;
    const roundUp = dropped > 0x1000 || (dropped === 0x1000 && (truncated & 1) === 1) ? 1 : 0;
    return sign | (truncated + roundUp);
  }
  // Subnormal result (|x| < 2^-14): |x| = m · 2^(e−150) with the implicit bit in m, so |x| / 2^-24 =
  // m · 2^(e−126): shift m right by 126 − e ≥ 14 and round half to even.
  const exponent = magnitude >>> 23;
  if (exponent < 102) return sign; // |x| < 2^-25, under half the smallest subnormal (m < 2^24)
  const mantissa = (magnitude & 0x7fffff) | 0x800000;
  const shift = 126 - exponent;
  const quotient = mantissa >>> shift;
  const remainder = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  const roundUp = remainder > half || (remainder === half && (quotient & 1) === 1) ? 1 : 0;
  return sign | (quotient + roundUp); // 1024 is the smallest normal 0x0400, as it should be
}

/**
 * Float32 bits → bfloat16 bits, round to nearest, ties to even; NaN stays a quiet NaN.
 * @internal
 */
export function float32BitsToBfloat16Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  // Round half to even on the 16 dropped bits (bfloat16 = float32 with a 7-bit mantissa).
  // Non-NaN sums stay below 2^32 (the largest is 0xFF800000 + 0x8000), so >>> 16 is exact.
  return (((bits >>> 0) + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The IEEE 754 binary16 bits of `value`, rounded to nearest, ties to even. The value is first
 * rounded to float32 (as it would be stored in a `Float32Array`). Magnitudes of 65520 and more
 * become ±Infinity (0x7C00); NaN becomes the quiet NaN 0x7E00 with the sign kept.
 *
 * @param value - any number
 * @returns an integer in [0, 0xFFFF]
 *
 * @example
 * ```ts
 * float32ToFloat16Bits(1); // 0x3C00
 * float32ToFloat16Bits(65504); // 0x7BFF, the largest finite float16
 * float32ToFloat16Bits(1e-8); // 0: below half of the smallest subnormal 2^-24
 * ```
 */
export function float32ToFloat16Bits(value: number): number {
  return float32BitsToFloat16Bits(float32Bits(value));
}

/**
 * The value of IEEE 754 binary16 bits, exactly (every float16 is a float32).
 *
 * @param bits - an integer in [0, 0xFFFF]
 * @returns the number (NaN for NaN patterns)
 *
 * @example
 * ```ts
 * float16BitsToFloat32(0x3C00); // 1
 * float16BitsToFloat32(0x0001); // 2^-24 ≈ 5.96e-8
 * float16BitsToFloat32(0x7C00); // Infinity
 * ```
 */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  // IEEE 754 binary16: bias 15, 10 mantissa bits; exponent 0 is subnormal, 31 is Inf/NaN.
  if (exponent === 0) return sign * mantissa * FLOAT16_SUBNORMAL_UNIT;
  if (exponent === 31) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/**
 * The bfloat16 bits of `value` (the top 16 bits of its float32), rounded to nearest, ties to even.
 * Overflow becomes ±Infinity; NaN stays a quiet NaN with the sign kept.
 *
 * @param value - any number
 * @returns an integer in [0, 0xFFFF]
 *
 * @example
 * ```ts
 * float32ToBfloat16Bits(1); // 0x3F80
 * float32ToBfloat16Bits(-2); // 0xC000
 * ```
 */
export function float32ToBfloat16Bits(value: number): number {
  return float32BitsToBfloat16Bits(float32Bits(value));
}

/**
 * The value of bfloat16 bits, exactly.
 *
 * @param bits - an integer in [0, 0xFFFF]
 * @returns the number
 *
 * @example
 * ```ts
 * bfloat16BitsToFloat32(0x3F80); // 1
 * ```
 */
export function bfloat16BitsToFloat32(bits: number): number {
  return float32FromBits((bits & 0xffff) << 16);
}

/**
 * The value of float8 e4m3fn bits (OCP 8-bit floating point spec: bias 7, 3 mantissa bits, no
 * infinities, S.1111.111 is NaN), exactly.
 *
 * @param bits - an integer in [0, 0xFF]
 * @returns the number; the largest magnitude is 448
 *
 * @example
 * ```ts
 * float8E4M3BitsToFloat32(0x38); // 1
 * float8E4M3BitsToFloat32(0x7E); // 448
 * ```
 */
export function float8E4M3BitsToFloat32(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exponent = (bits >>> 3) & 0xf;
  const mantissa = bits & 0x7;
  if (exponent === 15 && mantissa === 7) return Number.NaN;
  // Subnormals: 2^(1-7) · m/8 = m · 2^-9.
  if (exponent === 0) return sign * mantissa * 2 ** -9;
  return sign * (1 + mantissa / 8) * 2 ** (exponent - 7);
}

/**
 * The value of float8 e5m2 bits (OCP 8-bit floating point spec: bias 15, 2 mantissa bits, IEEE-style
 * infinities and NaNs), exactly.
 *
 * @param bits - an integer in [0, 0xFF]
 * @returns the number
 *
 * @example
 * ```ts
 * float8E5M2BitsToFloat32(0x3C); // 1
 * float8E5M2BitsToFloat32(0x7C); // Infinity
 * ```
 */
export function float8E5M2BitsToFloat32(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exponent = (bits >>> 2) & 0x1f;
  const mantissa = bits & 0x3;
  if (exponent === 31) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  // Subnormals: 2^(1-15) · m/4 = m · 2^-16.
  if (exponent === 0) return sign * mantissa * 2 ** -16;
  return sign * (1 + mantissa / 4) * 2 ** (exponent - 15);
}

let float16Table: Float32Array | undefined;

/** All 65536 float16 values, built on first use (256 KiB). @internal */
export function float16Lookup(): Float32Array {
  if (float16Table === undefined) {
    const table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits += 1) table[bits] = float16BitsToFloat32(bits);
    float16Table = table;
  }
  return float16Table;
}
