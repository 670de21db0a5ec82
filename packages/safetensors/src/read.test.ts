import { createRandom, FinepruneError } from '@fineprune/tensor';
import { describe, expect, it } from 'vitest';
import { decodeFloat32, decodeFloat32With, decodeInt32, decodeInt32With } from './decode';
import { dtypeInfo } from './dtypes';
import { encodeSafetensors } from './encode';
import { readSafetensors } from './read';

/** 8-byte little-endian header length, the header text, then the data bytes. */
function handFile(
  header: string,
  data: readonly number[] | Uint8Array = [],
  headerLength?: number,
): Uint8Array {
  const text = new TextEncoder().encode(header);
  const length = headerLength ?? text.byteLength;
  const out = new Uint8Array(8 + text.byteLength + data.length);
  let rest = length;
  for (let index = 0; index < 8; index += 1) {
    out[index] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  out.set(text, 8);
  out.set(data, 8 + text.byteLength);
  return out;
}

function errorOf(fn: () => unknown): FinepruneError {
  try {
    fn();
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a FinepruneError, but nothing was thrown');
}

/** Asserts a CHECKPOINT_CORRUPT error whose message matches `pattern`. */
function expectCorrupt(bytes: Uint8Array, pattern: RegExp, options?: { maxHeaderBytes?: number }): void {
  const error = errorOf(() => readSafetensors(bytes, options));
  expect(error.code).toBe('CHECKPOINT_CORRUPT');
  expect(error.message).toMatch(pattern);
  expect(error.fix.length).toBeGreaterThan(0);
}

// A file written by hand. Data layout (offsets into the data buffer):
//   u8    U8   [3]     [0, 3)    00 07 FF
//   a     F32  [2]     [3, 11)   1.5 = 0x3FC00000, -2 = 0xC0000000 (unaligned on purpose)
//   h     F16  [2, 4]  [11, 27)  1, 2^-24, 1023·2^-24, 65504, +Inf, -Inf, -2, -0
//   b     BF16 [3]     [27, 33)  1 (0x3F80), -3 (0xC040), 3.140625 (0x4049)
//   i64   I64  [3]     [33, 57)  1, -1, 2147483647
//   i32   I32  [2]     [57, 65)  -5, 7
//   s     F32  []      [65, 69)  0.25 = 0x3E800000 (a scalar)
//   empty F32  [0, 3]  [69, 69)  no elements
const HAND_HEADER =
  '{"h":{"dtype":"F16","shape":[2,4],"data_offsets":[11,27]},' +
  '"__metadata__":{"format":"pt","note":"hand made"},' +
  '"a":{"dtype":"F32","shape":[2],"data_offsets":[3,11]},' +
  '"i64":{"dtype":"I64","shape":[3],"data_offsets":[33,57]},' +
  '"b":{"dtype":"BF16","shape":[3],"data_offsets":[27,33]},' +
  '"u8":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},' +
  '"i32":{"dtype":"I32","shape":[2],"data_offsets":[57,65]},' +
  '"s":{"dtype":"F32","shape":[],"data_offsets":[65,69]},' +
  '"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[69,69]}}     ';
// biome-ignore format: one line per tensor
const HAND_DATA = [
  0x00, 0x07, 0xff,
  0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0,
  0x00, 0x3c, 0x01, 0x00, 0xff, 0x03, 0xff, 0x7b, 0x00, 0x7c, 0x00, 0xfc, 0x00, 0xc0, 0x00, 0x80,
  0x80, 0x3f, 0x40, 0xc0, 0x49, 0x40,
  0x01, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0,
  0xfb, 0xff, 0xff, 0xff, 0x07, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x80, 0x3e,
];

describe('readSafetensors on a hand-written file', () => {
  const bytes = handFile(HAND_HEADER, HAND_DATA);

  it('reads names, dtypes, shapes, offsets and metadata', () => {
    const file = readSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt', note: 'hand made' });
    expect(file.dataOffset).toBe(8 + new TextEncoder().encode(HAND_HEADER).byteLength);
    // Ordered by data offset.
    expect([...file.tensors.keys()]).toEqual(['u8', 'a', 'h', 'b', 'i64', 'i32', 's', 'empty']);
    const h = file.tensors.get('h')!;
    expect(h.dtype).toBe('F16');
    expect(h.shape).toEqual([2, 4]);
    expect(h.dataOffsets).toEqual([11, 27]);
    expect(h.byteOffset).toBe(file.dataOffset + 11);
    expect(h.byteLength).toBe(16);
    expect(h.size).toBe(8);
    expect(h.bytes().byteLength).toBe(16);
    expect(file.tensors.get('s')!.shape).toEqual([]);
    expect(file.tensors.get('empty')!.size).toBe(0);
  });

  it('decodes every dtype to the hand-derived values, on both byte-order paths', () => {
    const file = readSafetensors(bytes);
    const get = (name: string) => file.tensors.get(name)!;
    for (const littleEndian of [true, false]) {
      const float = (name: string) => Array.from(decodeFloat32With(get(name), littleEndian));
      const int = (name: string) => Array.from(decodeInt32With(get(name), littleEndian));
      expect(int('u8')).toEqual([0, 7, 255]);
      expect(float('a')).toEqual([1.5, -2]);
      const h = float('h');
      expect(h).toEqual([1, 2 ** -24, 1023 * 2 ** -24, 65504, Infinity, -Infinity, -2, -0]);
      expect(Object.is(h[7], -0)).toBe(true);
      expect(float('b')).toEqual([1, -3, 3.140625]);
      expect(int('i64')).toEqual([1, -1, 2147483647]);
      expect(int('i32')).toEqual([-5, 7]);
      expect(float('s')).toEqual([0.25]);
      expect(float('empty')).toEqual([]);
      // Integers convert to float32 only when exact (|v| ≤ 2^24): 2147483647 is not.
      expect(float('i32')).toEqual([-5, 7]);
      expect(float('u8')).toEqual([0, 7, 255]);
      expect(() => float('i64')).toThrow(/2147483647 at index 2, which float32 cannot represent exactly/);
    }
    expect(decodeFloat32(get('a'))).toBeInstanceOf(Float32Array);
    expect(decodeInt32(get('i64'))).toBeInstanceOf(Int32Array);
  });

  it('returns copies, and views that respect a non-zero byteOffset of the input', () => {
    const padded = new Uint8Array(bytes.byteLength + 1);
    padded.set(bytes, 1);
    const file = readSafetensors(padded.subarray(1));
    const a = decodeFloat32(file.tensors.get('a')!);
    expect(Array.from(a)).toEqual([1.5, -2]);
    a[0] = 99; // a copy: the file is unchanged
    expect(Array.from(decodeFloat32(file.tensors.get('a')!))).toEqual([1.5, -2]);
    expect(Array.from(file.tensors.get('u8')!.bytes())).toEqual([0, 7, 255]);
    // A Node Buffer at an odd offset of a shared pool (its slice() is a view, not a copy).
    const pooled = Buffer.concat([Buffer.alloc(3, 0xee), Buffer.from(bytes), Buffer.alloc(5, 0xee)]).subarray(
      3,
      3 + bytes.byteLength,
    );
    const fromBuffer = readSafetensors(pooled);
    expect(Array.from(decodeFloat32(fromBuffer.tensors.get('a')!))).toEqual([1.5, -2]);
    expect(Array.from(decodeInt32(fromBuffer.tensors.get('i32')!))).toEqual([-5, 7]);
    expect(Array.from(decodeFloat32(fromBuffer.tensors.get('h')!)).slice(0, 2)).toEqual([1, 2 ** -24]);
    // An ArrayBuffer works too.
    expect(readSafetensors(bytes.slice().buffer).tensors.size).toBe(8);
  });

  it('refuses integers that do not fit the target type', () => {
    const header =
      '{"big":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},' +
      '"u32":{"dtype":"U32","shape":[1],"data_offsets":[16,20]},' +
      '"flag":{"dtype":"BOOL","shape":[2],"data_offsets":[20,22]},' +
      '"i":{"dtype":"I32","shape":[1],"data_offsets":[22,26]}}';
    // biome-ignore format: one line per tensor
    const data = [
      0x05, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x80, 0, 0, 0, 0, // 5, 2^31
      0x00, 0x00, 0x00, 0x80, // 2^31
      0x01, 0x02, // true, then an invalid byte 2
      0x01, 0x00, 0x00, 0x01, // 2^24 + 1
    ];
    const file = readSafetensors(handFile(header, data));
    const big = errorOf(() => decodeInt32(file.tensors.get('big')!));
    expect(big.code).toBe('INVALID_DATA');
    expect(big.message).toMatch(/"big".*2147483648 at index 1/);
    expect(errorOf(() => decodeInt32(file.tensors.get('u32')!)).message).toMatch(/2147483648 at index 0/);
    expect(errorOf(() => decodeInt32(file.tensors.get('flag')!)).message).toMatch(/byte 2 at index 1/);
    expect(errorOf(() => decodeFloat32(file.tensors.get('i')!)).message).toMatch(/16777217.*2\^24/);
    expect(Array.from(decodeInt32(file.tensors.get('i')!))).toEqual([16777217]);
    const float = readSafetensors(bytes).tensors.get('a')!;
    expect(errorOf(() => decodeInt32(float)).code).toBe('INVALID_ARGUMENT');
  });
});

describe('readSafetensors defensive checks', () => {
  const valid = encodeSafetensors({
    w: { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    b: { dtype: 'F16', shape: [2], data: new Float32Array([0.5, -0.5]) },
  });

  it('accepts the valid file', () => {
    expect([...readSafetensors(valid).tensors.keys()]).toEqual(['w', 'b']);
  });

  it('refuses every truncation of a valid file', () => {
    for (let cut = 0; cut < valid.byteLength; cut += 1) {
      const error = errorOf(() => readSafetensors(valid.subarray(0, cut)));
      expect(error.code).toBe('CHECKPOINT_CORRUPT');
      expect(error.message).toMatch(/fewer than the 8-byte|past the end|truncated/);
    }
  });

  it('refuses absurd or impossible header lengths', () => {
    expectCorrupt(new Uint8Array(7), /7 bytes, fewer than the 8-byte header length/);
    expectCorrupt(new Uint8Array(0), /0 bytes/);
    expectCorrupt(handFile('{}', [], 0), /header length field at offset 0 is 0/);
    // 2^60 = 1152921504606846976: beyond 2^53.
    const huge = valid.slice();
    new DataView(huge.buffer).setBigUint64(0, 2n ** 60n, true);
    expectCorrupt(huge, /1152921504606846976, beyond 2\^53/);
    // 2^40: representable, but above the 100 MiB default bound.
    new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
    expectCorrupt(huge, /1099511627776 bytes, more than maxHeaderBytes \(104857600\)/);
    // Just past the end of the file.
    const past = valid.slice();
    new DataView(past.buffer).setBigUint64(0, BigInt(valid.byteLength - 8 + 1), true);
    expectCorrupt(
      past,
      new RegExp(
        `header ends at byte ${valid.byteLength + 1}, past the end of the ${valid.byteLength}-byte file`,
      ),
    );
    expectCorrupt(valid, /more than maxHeaderBytes \(16\)/, { maxHeaderBytes: 16 });
  });

  it('refuses headers that are not UTF-8 JSON objects', () => {
    const notUtf8 = handFile('{"a":1}');
    notUtf8[10] = 0xff;
    expectCorrupt(notUtf8, /not valid UTF-8/);
    expectCorrupt(handFile('{"w":{"dtype":"F32",'), /not valid JSON/);
    expectCorrupt(handFile('[1,2]'), /header is an array, not a JSON object/);
    expectCorrupt(handFile('null'), /header is null/);
    expectCorrupt(handFile('"text"'), /header is the string "text"/);
    expectCorrupt(handFile('\ufeff{}'), /not valid JSON/); // a byte-order mark is not JSON
  });

  it('refuses malformed entries, naming the tensor', () => {
    const entry = (body: string, data: number[] = [0, 0, 0, 0]) => handFile(`{"t":${body}}`, data);
    expectCorrupt(entry('5'), /Tensor "t" .* is a number, not an object/);
    expectCorrupt(entry('{"shape":[1],"data_offsets":[0,4]}'), /"t" .*has no "dtype"/);
    expectCorrupt(entry('{"dtype":"F32","data_offsets":[0,4]}'), /"t" .*has no "shape"/);
    expectCorrupt(entry('{"dtype":"F32","shape":[1]}'), /"t" .*has no "data_offsets"/);
    expectCorrupt(entry('{"dtype":32,"shape":[1],"data_offsets":[0,4]}'), /dtype that is a number/);
    expectCorrupt(
      entry('{"dtype":"F4","shape":[1],"data_offsets":[0,4]}'),
      /dtype "F4", which this reader does not support/,
    );
    expectCorrupt(entry('{"dtype":"F32","shape":"1","data_offsets":[0,4]}'), /shape that is the string/);
    expectCorrupt(
      entry('{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}'),
      /dimension 0 is not a non-negative safe integer/,
    );
    expectCorrupt(entry('{"dtype":"F32","shape":[1,1.5],"data_offsets":[0,4]}'), /dimension 1 is not/);
    expectCorrupt(entry('{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}'), /dimension 0 is not/);
    expectCorrupt(
      entry('{"dtype":"F32","shape":[9007199254740993],"data_offsets":[0,4]}'),
      /dimension 0 is not/,
    );
    expectCorrupt(
      entry('{"dtype":"F32","shape":[1073741824,1073741824,1073741824],"data_offsets":[0,4]}'),
      /element count exceeds 2\^53/,
    );
    expectCorrupt(entry('{"dtype":"F32","shape":[1],"data_offsets":[0]}'), /data_offsets \[0\], not two/);
    expectCorrupt(entry('{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}'), /not two non-negative/);
    expectCorrupt(entry('{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}'), /not two non-negative/);
    expectCorrupt(entry('{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}'), /not two non-negative/);
    expectCorrupt(entry('{"dtype":"F32","shape":[1],"data_offsets":"0,4"}'), /not two non-negative/);
    expectCorrupt(entry('{"dtype":"F32","shape":[0],"data_offsets":[4,0]}'), /\[4, 0\] with begin after end/);
  });

  it('refuses out-of-range offsets and wrong byte lengths', () => {
    expectCorrupt(
      handFile('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', [0, 0, 0, 0]),
      /"t" .*ends at data offset 8, past the end of the data buffer \(4 bytes\): the file is truncated/,
    );
    expectCorrupt(
      handFile('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,6]}}', [0, 0, 0, 0, 0, 0]),
      /"t" .*has 6 bytes \(data_offsets \[0, 6\]\) but its shape \[2\] of F32 needs 8/,
    );
    expectCorrupt(
      handFile('{"t":{"dtype":"BF16","shape":[3, 2],"data_offsets":[0,8]}}', new Array(8).fill(0)),
      /shape \[3, 2\] of BF16 needs 12/,
    );
  });

  it('refuses overlapping ranges, holes and unindexed trailing bytes', () => {
    const zeros = new Array(12).fill(0);
    expectCorrupt(
      handFile(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
        zeros,
      ),
      /"b" \(data_offsets \[4, 12\]\) overlaps tensor "a" \(data_offsets \[0, 8\]\)/,
    );
    expectCorrupt(
      handFile(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
        zeros,
      ),
      /hole: bytes 4 to 8 belong to no tensor \(before tensor "b"\)/,
    );
    expectCorrupt(
      handFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', zeros.slice(0, 8)),
      /hole: bytes 0 to 4/,
    );
    expectCorrupt(
      handFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', zeros.slice(0, 6)),
      /2 bytes after the last tensor's end \(data offset 4\)/,
    );
    // The same range twice is an overlap too.
    expectCorrupt(
      handFile(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}',
        zeros.slice(0, 4),
      ),
      /overlaps/,
    );
  });

  it('refuses metadata that is not an object of strings', () => {
    expectCorrupt(handFile('{"__metadata__":{"epoch":3}}'), /__metadata__ value for "epoch" is a number/);
    expectCorrupt(handFile('{"__metadata__":["pt"]}'), /__metadata__ is an array/);
    expect(readSafetensors(handFile('{"__metadata__":{"format":"pt"}}')).metadata).toEqual({ format: 'pt' });
    expect(readSafetensors(handFile('{}')).tensors.size).toBe(0);
  });

  it('treats "__proto__" as an ordinary name', () => {
    const file = readSafetensors(
      handFile(
        '{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
        [9],
      ),
    );
    expect(Array.from(decodeInt32(file.tensors.get('__proto__')!))).toEqual([9]);
    expect(Object.getOwnPropertyDescriptor(file.metadata, '__proto__')?.value).toBe('x');
  });

  it('checks its arguments', () => {
    expect(errorOf(() => readSafetensors('abc' as never)).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => readSafetensors(valid, { maxHeaderBytes: 0 })).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => readSafetensors(valid, { maxHeaderBytes: Number.NaN })).code).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('stops deep nesting, too many tensors or metadata entries in one scan, before parsing', () => {
    // 4 million nested brackets inside a 100 MiB header: refused at the 9th level, character 12 of `{"a":[[[[…`.
    const deep = errorOf(() => readSafetensors(handFile(`{"a":${'['.repeat(4_000_000)}`)));
    expect(deep.code).toBe('CHECKPOINT_CORRUPT');
    expect(deep.message).toContain('nests deeper than 8 levels (at header character 12)');
    // 200,001 empty tensors: more than the default 100,000.
    const entries = Array.from(
      { length: 200_001 },
      (_, index) => `"t${index}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`,
    );
    const many = handFile(`{${entries.join(',')}}`);
    const tooMany = errorOf(() => readSafetensors(many));
    expect(tooMany.message).toContain('has more than 100001 top-level entries');
    expect(tooMany.fix).toContain('raise maxTensors');
    expect(readSafetensors(many, { maxTensors: 200_001 }).tensors.size).toBe(200_001);
    expect(errorOf(() => readSafetensors(many, { maxTensors: 200_000 })).message).toContain(
      'has 200001 tensors, more than maxTensors (200000)',
    );
    // Metadata entries: 3 within a limit of 3, 4 beyond it (the exact check after the scan).
    const metadata = (count: number) =>
      handFile(
        `{"__metadata__":{${Array.from({ length: count }, (_, index) => `"k${index}":"v"`).join(',')}}}`,
      );
    expect(readSafetensors(metadata(3), { maxMetadataEntries: 3 }).metadata).toEqual({
      k0: 'v',
      k1: 'v',
      k2: 'v',
    });
    expect(errorOf(() => readSafetensors(metadata(4), { maxMetadataEntries: 3 })).message).toContain(
      'has 4 entries, more than maxMetadataEntries (3)',
    );
    expect(errorOf(() => readSafetensors(metadata(20_000))).message).toContain(
      'with more than 10000 entries',
    );
  });

  it('quotes at most 120 characters of a name in a message', () => {
    const name = 'n'.repeat(10_000_000);
    const error = errorOf(() =>
      readSafetensors(handFile(`{"${name}":{"dtype":"F99","shape":[],"data_offsets":[0,0]}}`)),
    );
    expect(error.message).toContain('… (10000000 characters)');
    expect(error.message.length).toBeLessThan(600);
    expect(String(error.details?.name).length).toBe(200);
  });

  it('survives 2,000 random mutations with a valid parse or a FinepruneError', () => {
    const base = encodeSafetensors(
      {
        w: { dtype: 'F32', shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        h: { dtype: 'F16', shape: [3], data: [0.5, 1e-6, 7] },
        z: { dtype: 'BF16', shape: [2], data: [1, -1] },
        ids: { dtype: 'I64', shape: [2], data: [3, -4] },
        mask: { dtype: 'BOOL', shape: [3], data: [1, 0, 1] },
        n: { dtype: 'U8', shape: [1], data: [200] },
      },
      { format: 'pt' },
    );
    const headerEnd = readSafetensors(base).dataOffset;
    const random = createRandom(2024);
    const pick = (n: number) => Math.floor(random.next() * n);
    let parsed = 0;
    let refused = 0;
    const other: string[] = [];
    for (let trial = 0; trial < 2000; trial += 1) {
      let bytes = base.slice();
      const kind = pick(5);
      if (kind === 0) {
        bytes = bytes.subarray(0, pick(bytes.byteLength));
      } else if (kind === 1) {
        // Flip bits in the header (where structure lives) half of the time, else in the data.
        for (let flips = 1 + pick(3); flips > 0; flips -= 1) {
          const at = random.next() < 0.5 ? pick(headerEnd) : headerEnd + pick(bytes.byteLength - headerEnd);
          bytes[at] = bytes[at]! ^ (1 << pick(8));
        }
      } else if (kind === 2) {
        // Replace one header character with a JSON-significant one.
        const symbols = '{}[]",:0123456789-.e ';
        bytes[8 + pick(headerEnd - 8)] = symbols.charCodeAt(pick(symbols.length));
      } else if (kind === 3) {
        new DataView(bytes.buffer).setUint32(pick(2) * 4, random.nextUint32(), true);
      } else {
        const longer = new Uint8Array(bytes.byteLength + 1 + pick(16));
        longer.set(bytes);
        for (let at = bytes.byteLength; at < longer.byteLength; at += 1) longer[at] = pick(256);
        bytes = longer;
      }
      try {
        const file = readSafetensors(bytes);
        for (const tensor of file.tensors.values()) {
          if (dtypeInfo(tensor.dtype).kind === 'float') decodeFloat32(tensor);
          else decodeInt32(tensor);
        }
        parsed += 1;
      } catch (error) {
        if (FinepruneError.is(error)) refused += 1;
        else other.push(`${trial}: ${String(error)}`);
      }
    }
    expect(other).toEqual([]);
    console.info(`fuzz: ${parsed} parsed, ${refused} refused`);
    // Both outcomes occur, so the mutations really exercise the checks.
    expect(parsed).toBeGreaterThan(60);
    expect(refused).toBeGreaterThan(500);
  });
});
