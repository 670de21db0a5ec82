import { describe, expect, it } from 'vitest';
import {
  firstNonFiniteFloat16,
  float16BitsToFloat32,
  float16FromFloat32,
  float32FromFloat16,
  float32ToFloat16Bits,
} from './float16';

// The scalar conversions are tested bit by bit in @fineprune/safetensors (src/half.test.ts), which
// re-exports them; here, the array forms.
describe('float16 arrays', () => {
  it('round-trips every float16 value exactly through float32', () => {
    const bits = Uint16Array.from({ length: 65536 }, (_, index) => index);
    const values = float32FromFloat16(bits);
    const again = float16FromFloat32(values);
    for (let index = 0; index < 65536; index += 1) {
      const exponent = (index >>> 10) & 0x1f;
      // NaN patterns all come back as the quiet NaN with the sign kept.
      if (exponent === 31 && (index & 0x3ff) !== 0) expect(again[index]! & 0x7e00).toBe(0x7e00);
      else expect(again[index]).toBe(index);
    }
  });

  it('rounds like the scalar conversion and finds the first overflow', () => {
    const values = Float32Array.from([1, -2, 65504, 1 + 2 ** -11, 65520, 1e-8]);
    const bits = float16FromFloat32(values);
    expect([...bits]).toEqual([...values].map(float32ToFloat16Bits));
    expect(float16BitsToFloat32(bits[3]!)).toBe(1); // a tie goes to the even neighbour
    expect(firstNonFiniteFloat16(bits)).toBe(4); // 65520 overflows to Infinity
    expect(firstNonFiniteFloat16(bits.subarray(0, 4))).toBe(-1);
  });

  it('reads a Float32Array that is a view into a larger buffer', () => {
    const buffer = new Float32Array([7, 1, -2, 7]);
    expect([...float16FromFloat32(buffer.subarray(1, 3))]).toEqual([0x3c00, 0xc000]);
  });
});
