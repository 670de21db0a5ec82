/**
 * Bit-exact conversions between float32 and IEEE 754 binary16 (float16), with no side effect on
 * import (the `@fineprune/tensor/float16` subpath): shared by the safetensors writer and reader and by
 * the compact sparse export of `@fineprune/sparse`.
 */

const scratch = new DataView(new ArrayBuffer(4));

/** The IEEE 754 binary32 bits of `value` rounded to float32. @internal */
export function float32Bits(value: number): number {
  scratch.setFloat32(0, value);
  return scratch.getUint32(0);
}

/** The float32 whose IEEE 754 binary32 bits are `bits`. @internal */
export function float32FromBits(bits: number): number {
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

/**
 * Float32 values → float16 bits, each rounded to nearest, ties to even (as
 * {@link float32ToFloat16Bits}); magnitudes of 65520 and more become ±Infinity, so callers that must
 * not lose values check the result with {@link firstNonFiniteFloat16}.
 *
 * @param values - the values
 * @returns one float16 bit pattern per value
 *
 * @example
 * ```ts
 * float16FromFloat32(Float32Array.from([1, -2])); // Uint16Array [0x3C00, 0xC000]
 * ```
 */
export function float16FromFloat32(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let index = 0; index < values.length; index += 1) out[index] = float32BitsToFloat16Bits(bits[index]!);
  return out;
}

/**
 * Float16 bits → float32 values, exactly (every float16 is a float32).
 *
 * @param bits - float16 bit patterns
 * @returns the values
 *
 * @example
 * ```ts
 * float32FromFloat16(Uint16Array.from([0x3c00, 0xc000])); // Float32Array [1, -2]
 * ```
 */
export function float32FromFloat16(bits: Uint16Array): Float32Array {
  const table = float16Lookup();
  const out = new Float32Array(bits.length);
  for (let index = 0; index < bits.length; index += 1) out[index] = table[bits[index]!]!;
  return out;
}

/**
 * The index of the first float16 bit pattern that is ±Infinity or NaN, or −1.
 *
 * @param bits - float16 bit patterns
 * @returns the index, or −1 when every value is finite
 *
 * @example
 * ```ts
 * firstNonFiniteFloat16(float16FromFloat32(Float32Array.from([1, 1e6]))); // 1 (1e6 overflows)
 * ```
 */
export function firstNonFiniteFloat16(bits: Uint16Array): number {
  for (let index = 0; index < bits.length; index += 1) if ((bits[index]! & 0x7c00) === 0x7c00) return index;
  return -1;
}
