/**
 * Bit-exact conversions between float32 and the 16- and 8-bit float formats of safetensors. The
 * float16 ones live in `@fineprune/tensor/float16` (the compact sparse export uses them too).
 */

import { float32Bits, float32FromBits } from '@fineprune/tensor/float16';

export {
  float16BitsToFloat32,
  float16Lookup,
  float32BitsToFloat16Bits,
  float32ToFloat16Bits,
} from '@fineprune/tensor/float16';

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
