import { createRandom } from '@fineprune/tensor';
import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToFloat32,
  float8E4M3BitsToFloat32,
  float8E5M2BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './half';

describe('float16', () => {
  it('encodes known values (hand-derived from the binary16 layout: bias 15, 10 mantissa bits)', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00); // exponent 15, mantissa 0
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff); // (2 − 2^-10)·2^15, the largest finite
    expect(float32ToFloat16Bits(65519)).toBe(0x7bff); // below the tie 65520 → rounds down
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // the tie with 2^16 goes to even (up) → Inf
    expect(float32ToFloat16Bits(-1e6)).toBe(0xfc00);
    expect(float32ToFloat16Bits(2 ** -14)).toBe(0x0400); // the smallest normal
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // the smallest subnormal
    // 1e-8 is 0.168 units of 2^-24, below the half unit: rounds to +0.
    expect(float32ToFloat16Bits(1e-8)).toBe(0x0000);
    expect(float32ToFloat16Bits(-1e-8)).toBe(0x8000);
    expect(float32ToFloat16Bits(-0)).toBe(0x8000);
    expect(float32ToFloat16Bits(0)).toBe(0x0000);
    expect(float32ToFloat16Bits(Number.POSITIVE_INFINITY)).toBe(0x7c00);
    expect(float32ToFloat16Bits(Number.NaN)).toBe(0x7e00);
  });

  it('rounds ties to even, for normals and subnormals', () => {
    // 1 + 2^-11 lies halfway between 0x3C00 (even) and 0x3C01 → 0x3C00.
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3·2^-11 lies halfway between 0x3C01 and 0x3C02 (even) → 0x3C02.
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // Just above a tie rounds up: 1 + 2^-11 + 2^-20 → 0x3C01.
    expect(float32ToFloat16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    // Subnormals: 0.5 unit → 0 (even), 1.5 units → 2, 2.5 units → 2, 1023.5 units → 1024 = 0x0400.
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000);
    expect(float32ToFloat16Bits(3 * 2 ** -25)).toBe(0x0002);
    expect(float32ToFloat16Bits(5 * 2 ** -25)).toBe(0x0002);
    expect(float32ToFloat16Bits(2047 * 2 ** -25)).toBe(0x0400);
    expect(float32ToFloat16Bits(2 ** -25 * 1.0001)).toBe(0x0001);
  });

  it('decodes known values', () => {
    expect(float16BitsToFloat32(0x3c00)).toBe(1);
    expect(float16BitsToFloat32(0x7bff)).toBe(65504);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16BitsToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(float16BitsToFloat32(0xfc00)).toBe(Number.NEGATIVE_INFINITY);
    expect(Object.is(float16BitsToFloat32(0x8000), -0)).toBe(true);
    expect(float16BitsToFloat32(0x7e01)).toBeNaN();
  });

  it('round-trips every one of the 65536 bit patterns (NaNs stay NaN)', () => {
    for (let bits = 0; bits < 65536; bits += 1) {
      const value = float16BitsToFloat32(bits);
      if (Number.isNaN(value))
        expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(value)))).toBe(true);
      else if (float32ToFloat16Bits(value) !== bits) expect(float32ToFloat16Bits(value)).toBe(bits);
    }
  });

  it('picks the nearest float16 (ties to even) for random float32 values', () => {
    const random = createRandom(11);
    const check = new Float32Array(1);
    for (let trial = 0; trial < 20000; trial += 1) {
      // Magnitudes from 2^-26 to 2^16, both signs, as float32.
      check[0] = (random.next() < 0.5 ? -1 : 1) * 2 ** (random.next() * 42 - 26);
      const x = check[0]!;
      const bits = float32ToFloat16Bits(x);
      const error = Math.abs(float16BitsToFloat32(bits) - x);
      for (const neighbour of [bits - 1, bits + 1]) {
        if ((neighbour & 0x7fff) > 0x7c00 || neighbour < 0 || neighbour > 0xffff) continue;
        const other = Math.abs(float16BitsToFloat32(neighbour) - x);
        expect(error <= other).toBe(true);
        if (error === other) expect(bits & 1).toBe(0);
      }
    }
  });
});

describe('bfloat16', () => {
  it('encodes known values and rounds ties to even', () => {
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(-2)).toBe(0xc000);
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // halfway 0x3F80 (even) / 0x3F81
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // halfway 0x3F81 / 0x3F82 (even)
    expect(float32ToBfloat16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(float32ToBfloat16Bits(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds to Inf
    expect(float32ToBfloat16Bits(Number.NEGATIVE_INFINITY)).toBe(0xff80);
    expect(float32ToBfloat16Bits(Number.NaN) & 0x7fc0).toBe(0x7fc0);
  });

  it('round-trips every one of the 65536 bit patterns', () => {
    for (let bits = 0; bits < 65536; bits += 1) {
      const value = bfloat16BitsToFloat32(bits);
      if (Number.isNaN(value)) continue;
      if (float32ToBfloat16Bits(value) !== bits) expect(float32ToBfloat16Bits(value)).toBe(bits);
    }
    expect(bfloat16BitsToFloat32(0x4049)).toBe(3.140625); // (1 + 73/128)·2
  });
});

describe('float8', () => {
  it('decodes e4m3fn (bias 7, no Inf, S.1111.111 NaN)', () => {
    expect(float8E4M3BitsToFloat32(0x38)).toBe(1);
    expect(float8E4M3BitsToFloat32(0x7e)).toBe(448);
    expect(float8E4M3BitsToFloat32(0xfe)).toBe(-448);
    expect(float8E4M3BitsToFloat32(0x78)).toBe(256); // exponent 15 is finite in e4m3fn
    expect(float8E4M3BitsToFloat32(0x01)).toBe(2 ** -9);
    expect(float8E4M3BitsToFloat32(0x7f)).toBeNaN();
  });

  it('decodes e5m2 (bias 15, IEEE-style Inf/NaN)', () => {
    expect(float8E5M2BitsToFloat32(0x3c)).toBe(1);
    expect(float8E5M2BitsToFloat32(0x7b)).toBe(57344);
    expect(float8E5M2BitsToFloat32(0x7c)).toBe(Number.POSITIVE_INFINITY);
    expect(float8E5M2BitsToFloat32(0xfc)).toBe(Number.NEGATIVE_INFINITY);
    expect(float8E5M2BitsToFloat32(0x7d)).toBeNaN();
    expect(float8E5M2BitsToFloat32(0x01)).toBe(2 ** -16);
  });
});
