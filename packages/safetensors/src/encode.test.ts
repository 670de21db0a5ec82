import { createRandom, FinepruneError } from '@fineprune/tensor';
import { describe, expect, it } from 'vitest';
import { decodeFloat32, decodeInt32 } from './decode';
import { dtypeInfo } from './dtypes';
import { encodeSafetensors, encodeSafetensorsWith, type SafetensorsInput } from './encode';
import { readSafetensors } from './read';

function errorOf(fn: () => unknown): FinepruneError {
  try {
    fn();
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a FinepruneError, but nothing was thrown');
}

function headerOf(bytes: Uint8Array): string {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(bytes.subarray(8, 8 + length));
}

describe('encodeSafetensors', () => {
  it('writes the exact bytes: sorted header keys, space padding, aligned data', () => {
    const bytes = encodeSafetensors(
      {
        b: { dtype: 'F32', shape: [1], data: [2] },
        a: { dtype: 'F16', shape: [2], data: [1, -2] },
      },
      { format: 'pt' },
    );
    const json =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},' +
      '"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    expect(json.length).toBe(138);
    const padded = 144; // the next multiple of 8: six spaces
    expect(headerOf(bytes)).toBe(`${json}      `);
    // b = 2.0 = 0x40000000 first (4-byte elements before 2-byte ones), then a = 0x3C00, 0xC000.
    expect(Array.from(bytes.subarray(8 + padded))).toEqual([0, 0, 0, 0x40, 0x00, 0x3c, 0x00, 0xc0]);
    expect(bytes.byteLength).toBe(8 + padded + 8);
  });

  it('pads a header whose length is not a multiple of 8 with spaces', () => {
    const bytes = encodeSafetensors({ x: { dtype: 'U8', shape: [1], data: [7] } });
    const json = '{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'; // 53 bytes → 56
    expect(json.length).toBe(53);
    expect(headerOf(bytes)).toBe(`${json}   `);
    expect(bytes[8 + 56]).toBe(7);
    expect(headerOf(encodeSafetensors({}))).toBe('{}      ');
    expect(readSafetensors(encodeSafetensors({})).tensors.size).toBe(0);
  });

  it('is deterministic whatever the insertion order, also for integer-like names', () => {
    const one = encodeSafetensors(
      {
        a: { dtype: 'F32', shape: [1], data: [1] },
        '10': { dtype: 'I32', shape: [1], data: [2] },
        '9': { dtype: 'U8', shape: [2], data: [3, 4] },
      },
      { z: '1', a: '2' },
    );
    const two = encodeSafetensors(
      {
        '9': { dtype: 'U8', shape: [2], data: [3, 4] },
        a: { dtype: 'F32', shape: [1], data: [1] },
        '10': { dtype: 'I32', shape: [1], data: [2] },
      },
      { a: '2', z: '1' },
    );
    expect(two).toEqual(one);
    // Code-unit order: "10" < "9" < "a"; metadata keys sorted too.
    const header = headerOf(one);
    const at = (name: string) => header.indexOf(`"${name}":{"dtype"`);
    expect(at('10')).toBeGreaterThan(0);
    expect(at('10')).toBeLessThan(at('9'));
    expect(at('9')).toBeLessThan(at('a'));
    expect(header.startsWith('{"__metadata__":{"a":"2","z":"1"},')).toBe(true);
  });

  it('aligns every tensor to its element size', () => {
    const file = readSafetensors(
      encodeSafetensors({
        u: { dtype: 'U8', shape: [3], data: [1, 2, 3] },
        h: { dtype: 'F16', shape: [3], data: [1, 2, 3] },
        f: { dtype: 'F32', shape: [1], data: [1] },
        l: { dtype: 'I64', shape: [1], data: [1] },
        k: { dtype: 'BOOL', shape: [1], data: [1] },
      }),
    );
    expect(file.dataOffset % 8).toBe(0);
    for (const tensor of file.tensors.values()) {
      expect(tensor.byteOffset % dtypeInfo(tensor.dtype).bytes).toBe(0);
    }
  });

  it('round-trips exactly for F32 and integers, within the rounding of F16 (2^-11) and BF16 (2^-8)', () => {
    const random = createRandom(5);
    const n = 1000;
    const values = new Float32Array(n);
    // Magnitudes in [2^-10, 2^10), inside float16's normal range, both signs.
    for (let index = 0; index < n; index += 1) {
      values[index] = (random.next() < 0.5 ? -1 : 1) * 2 ** (random.next() * 20 - 10);
    }
    const special = new Float32Array([Number.NaN, Infinity, -Infinity, -0, 1e-45, 3.4028234663852886e38]);
    const ints = Int32Array.from({ length: 50 }, () => random.nextUint32() | 0);
    const bytes = encodeSafetensors(
      {
        f32: { dtype: 'F32', shape: [10, 100], data: values },
        special: { dtype: 'F32', shape: [6], data: special },
        f16: { dtype: 'F16', shape: [n], data: values },
        bf16: { dtype: 'BF16', shape: [n], data: values },
        i32: { dtype: 'I32', shape: [5, 10], data: ints },
        i64: { dtype: 'I64', shape: [3], data: [-2147483648, 0, 2147483647] },
        big: { dtype: 'I64', shape: [2], data: new BigInt64Array([-3n, 2n ** 40n]) },
        u8: { dtype: 'U8', shape: [3], data: new Uint8Array([0, 128, 255]) },
        flags: { dtype: 'BOOL', shape: [2], data: [1, 0] },
      },
      { format: 'pt' },
    );
    const file = readSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt' });
    const get = (name: string) => file.tensors.get(name)!;
    expect(get('f32').shape).toEqual([10, 100]);
    expect(decodeFloat32(get('f32'))).toEqual(values);
    const back = decodeFloat32(get('special'));
    expect(Number.isNaN(back[0])).toBe(true);
    expect(Array.from(back.subarray(1))).toEqual(Array.from(special.subarray(1)));
    expect(Object.is(back[3], -0)).toBe(true);
    const f16 = decodeFloat32(get('f16'));
    const bf16 = decodeFloat32(get('bf16'));
    for (let index = 0; index < n; index += 1) {
      const x = values[index]!;
      // Round to nearest: relative error ≤ half an ulp = 2^-11 (float16, p = 11) and 2^-8 (bfloat16, p = 8).
      expect(Math.abs(f16[index]! - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -11);
      expect(Math.abs(bf16[index]! - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
    }
    expect(decodeInt32(get('i32'))).toEqual(ints);
    expect(Array.from(decodeInt32(get('i64')))).toEqual([-2147483648, 0, 2147483647]);
    expect(Array.from(new BigInt64Array(get('big').bytes().slice().buffer))).toEqual([-3n, 2n ** 40n]);
    expect(Array.from(decodeInt32(get('u8')))).toEqual([0, 128, 255]);
    expect(Array.from(decodeInt32(get('flags')))).toEqual([1, 0]);
  });

  it('stores the known F16 and BF16 encodings', () => {
    const file = readSafetensors(
      encodeSafetensors({
        h: { dtype: 'F16', shape: [7], data: [1, 65504, 1e-8, 3 * 2 ** -25, Infinity, 1 + 2 ** -11, -0] },
        b: { dtype: 'BF16', shape: [3], data: [1, 1 + 2 ** -8, 1 + 3 * 2 ** -8] },
      }),
    );
    const halves = (name: string) =>
      Array.from(new Uint16Array(file.tensors.get(name)!.bytes().slice().buffer));
    // Hand-derived in half.test.ts: 1 → 0x3C00, 65504 → 0x7BFF, 1e-8 → 0, 1.5 subnormal units → 2 (even),
    // Infinity → 0x7C00, the tie 1 + 2^-11 → 0x3C00 (even), -0 → 0x8000.
    expect(halves('h')).toEqual([0x3c00, 0x7bff, 0, 2, 0x7c00, 0x3c00, 0x8000]);
    expect(halves('b')).toEqual([0x3f80, 0x3f80, 0x3f82]);
  });

  it('refuses finite values a float dtype would store as Infinity, or saturates them when asked', () => {
    // F16: 65519 rounds down to 65504 (0x7BFF); 65520, the tie with 2^16, and 1e6 would become Infinity.
    const error = errorOf(() =>
      encodeSafetensors({ h: { dtype: 'F16', shape: [3], data: [65519, 1e6, 65520] } }),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('holds 1000000 at index 1, beyond the largest finite F16 value (65504)');
    expect(error.fix).toContain("overflow: 'saturate'");
    expect(
      errorOf(() => encodeSafetensors({ h: { dtype: 'F16', shape: [1], data: [-65520] } })).details,
    ).toMatchObject({
      index: 0,
      value: -65520,
    });
    // BF16 overflows from (2 − 2^-8)·2^127, F32 (from doubles) from where Math.fround gives Infinity.
    expect(errorOf(() => encodeSafetensors({ b: { dtype: 'BF16', shape: [1], data: [3.4e38] } })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(errorOf(() => encodeSafetensors({ f: { dtype: 'F32', shape: [1], data: [1e39] } })).code).toBe(
      'INVALID_ARGUMENT',
    );
    const saturated = readSafetensors(
      encodeSafetensors(
        {
          h: { dtype: 'F16', shape: [4], data: [65520, -1e6, Infinity, 3] },
          b: { dtype: 'BF16', shape: [1], data: [-3.4e38] },
          f: { dtype: 'F32', shape: [1], data: [1e39] },
        },
        undefined,
        { overflow: 'saturate' },
      ),
    );
    const halves = (name: string) =>
      Array.from(new Uint16Array(saturated.tensors.get(name)!.bytes().slice().buffer));
    // ±65504 is 0x7BFF / 0xFBFF; an infinite input stays Infinity (0x7C00); 3 is 0x4200.
    expect(halves('h')).toEqual([0x7bff, 0xfbff, 0x7c00, 0x4200]);
    expect(halves('b')).toEqual([0xff7f]); // −(2 − 2^-7)·2^127
    expect(Array.from(decodeFloat32(saturated.tensors.get('f')!))).toEqual([(2 - 2 ** -23) * 2 ** 127]);
  });

  it('writes the same bytes on the big-endian code path', () => {
    const tensors: Record<string, SafetensorsInput> = {
      f: { dtype: 'F32', shape: [3], data: [1.5, -2, 1e-3] },
      h: { dtype: 'F16', shape: [3], data: [0.1, 7, 3e-7] },
      b: { dtype: 'BF16', shape: [2], data: [0.1, -7] },
      i: { dtype: 'I32', shape: [2], data: [-1, 5] },
      l: { dtype: 'I64', shape: [1], data: [-7] },
    };
    expect(encodeSafetensorsWith(tensors, undefined, false)).toEqual(
      encodeSafetensorsWith(tensors, undefined, true),
    );
  });

  it('refuses bad tensors with INVALID_ARGUMENT or SHAPE_MISMATCH, naming the tensor', () => {
    const one = (input: unknown, name = 't') =>
      errorOf(() => encodeSafetensors({ [name]: input as SafetensorsInput }));
    const expectError = (error: FinepruneError, code: string, pattern: RegExp) => {
      expect(error.code).toBe(code);
      expect(error.message).toMatch(pattern);
      expect(error.fix.length).toBeGreaterThan(0);
    };
    const ok = { dtype: 'F32', shape: [1], data: [1] };
    expectError(one(ok, ''), 'INVALID_ARGUMENT', /cannot be named ""/);
    expectError(one(ok, '__metadata__'), 'INVALID_ARGUMENT', /cannot be named "__metadata__"/);
    expectError(one(ok, 'bad\ud800name'), 'INVALID_ARGUMENT', /lone UTF-16 surrogate/);
    expectError(
      one({ ...ok, dtype: 'F64' }),
      'INVALID_ARGUMENT',
      /dtype "F64", which encodeSafetensors\(\) does not write/,
    );
    for (const dimension of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1.5]) {
      expectError(
        one({ ...ok, shape: [1, dimension] }),
        'INVALID_ARGUMENT',
        /"t" .*dimension 1 is not a non-negative integer/,
      );
    }
    expectError(one({ ...ok, shape: 3 }), 'INVALID_ARGUMENT', /no shape array/);
    expectError(one({ ...ok, data: undefined }), 'INVALID_ARGUMENT', /no data array/);
    expectError(
      one({ ...ok, shape: [2, 2] }),
      'SHAPE_MISMATCH',
      /"t" has 1 values but its shape \[2, 2\] needs 4/,
    );
    expectError(
      one({ dtype: 'I32', shape: [2], data: [1, 1.5] }),
      'INVALID_ARGUMENT',
      /value 1.5 at index 1/,
    );
    expectError(one({ dtype: 'I32', shape: [1], data: [2 ** 31] }), 'INVALID_ARGUMENT', /value 2147483648/);
    expectError(one({ dtype: 'U8', shape: [1], data: [256] }), 'INVALID_ARGUMENT', /value 256 at index 0/);
    expectError(one({ dtype: 'BOOL', shape: [1], data: [2] }), 'INVALID_ARGUMENT', /value 2 at index 0/);
    expectError(
      one({ dtype: 'I64', shape: [1], data: [2 ** 53] }),
      'INVALID_ARGUMENT',
      /value 9007199254740992/,
    );
    expectError(one({ dtype: 'F32', shape: [1], data: ['1'] }), 'INVALID_ARGUMENT', /value 1 at index 0/);
    expectError(
      one({ dtype: 'F32', shape: [1], data: new BigInt64Array(1) }),
      'INVALID_ARGUMENT',
      /BigInt64Array/,
    );
    expectError(one(null), 'INVALID_ARGUMENT', /"t" is null/);
    expect(errorOf(() => encodeSafetensors(null as never)).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => encodeSafetensors({}, { epoch: 3 } as never)).message).toMatch(
      /"epoch" is a number/,
    );
    expect(errorOf(() => encodeSafetensors({}, [] as never)).code).toBe('INVALID_ARGUMENT');
  });
});
