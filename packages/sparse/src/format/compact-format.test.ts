import { describe, expect, it } from 'vitest';
import {
  pruneByMagnitude,
  rejection,
  rejectionCode,
  resealed,
  seededValues,
  unsealed,
} from '../../test/compact-support';
import { compressedRowsFromDense } from '../layout/compressed-rows';
import { channelRows, channelView } from './channel-rows';
import { encodeCompactModel, planCompactModel } from './encode';
import { readCompactModel } from './read';

const tensors = (list: Parameters<typeof encodeCompactModel>[0]['tensors']) => ({
  model: { kind: 'tensors' as const },
  tensors: list,
});

// A TF.js kernel [inputs 4, outputs 3] (channels last), four kept weights:
//   W = [[0.5, 0, 0], [0, 0, -1.5], [0, 2, 0], [0.25, 0, 0]]
const SMALL = Float32Array.from([0.5, 0, 0, 0, 0, -1.5, 0, 2, 0, 0.25, 0, 0]);

describe('the compact export: layouts', () => {
  it('stores the small kernel as a bitmap, with the bytes derived by hand', async () => {
    const bytes = await encodeCompactModel(tensors([{ name: 'w', shape: [4, 3], values: SMALL }]), {
      allowLarger: true,
    });
    const { header, data } = unsealed(bytes);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('FPSPARSE');
    // float32: dense 12·4 = 48; bitmap ⌈12/8⌉ = 2 + 4·4 = 18; delta (2,0,2)(1,2)(1,1) = 7 + 16 = 23.
    expect(header.tensors).toEqual([
      {
        name: 'w',
        shape: [4, 3],
        layout: 'bitmap',
        values: 'float32',
        channelAxis: 1,
        nonzeros: 4,
        offset: 0,
        byteLength: 18,
      },
    ]);
    // Bits channel by channel (bit c·4 + k): c0 k0 → 0, c0 k3 → 3, c1 k2 → 6, c2 k1 → 9.
    expect([...data.subarray(0, 2)]).toEqual([0b01001001, 0b00000010]);
    expect([...new Float32Array(data.slice(2).buffer)]).toEqual([0.5, 0.25, 2, -1.5]);
  });

  it('codes index gaps as varints (delta) when that is smallest', async () => {
    const values = new Float32Array(300);
    values[5] = 1;
    values[200] = -2;
    values[299] = 3;
    const bytes = await encodeCompactModel(tensors([{ name: 'w', shape: [300, 1], values }]));
    const { header, data } = unsealed(bytes);
    // Count 3, gaps 5, 194 (two bytes: 194 ≥ 128 → 0xC2 0x01), 98: 5 index bytes + 12 value bytes.
    expect(header.tensors[0]).toMatchObject({ layout: 'delta', nonzeros: 3, indexBytes: 5, byteLength: 17 });
    expect([...data.subarray(0, 5)]).toEqual([3, 5, 0xc2, 0x01, 98]);
  });

  it('keeps a fully kept matrix dense, and vectors as float32 whatever the value encoding', async () => {
    const kernel = seededValues(12, 1);
    const bias = Float32Array.from([0.1, -0.2, 0.3]);
    const plan = planCompactModel(
      tensors([
        { name: 'kernel', shape: [4, 3], values: kernel },
        { name: 'bias', shape: [3], values: bias },
      ]),
      { values: 'int8' },
    );
    // int8: dense 3·4 scales + 12 codes = 24; bitmap 2 + 12 + 12 = 26; delta 3 + 12·1 + 12 + 12 = 39.
    expect(
      plan.tensors.map((tensor) => [tensor.entry.layout, tensor.entry.values, tensor.entry.byteLength]),
    ).toEqual([
      ['dense', 'int8', 24],
      ['vector', 'float32', 12],
    ]);
    expect(plan.tensors[0]!.candidates).toEqual({ dense: 24, bitmap: 26, delta: 39 });
    const read = await readCompactModel(
      await encodeCompactModel(
        { model: plan.model, tensors: plan.tensors.map((tensor) => tensor.input) },
        { values: 'int8', allowLarger: true },
      ),
    );
    expect([...read.tensor('bias').dense()]).toEqual([...bias]);
  });

  it('picks the smallest candidate at every kept fraction, each candidate sized as the README states', () => {
    for (const kept of [0, 0.01, 0.03, 0.1, 0.3, 0.5, 0.9, 1]) {
      for (const values of ['float32', 'float16', 'int8'] as const) {
        const weights = seededValues(64 * 48, 7);
        pruneByMagnitude(weights, kept);
        const [planned] = planCompactModel(tensors([{ name: 'w', shape: [64, 48], values: weights }]), {
          values,
        }).tensors;
        const rows = compressedRowsFromDense(weights, [64, 48]);
        const n = rows.inputIndices.length;
        const b = values === 'float32' ? 4 : values === 'float16' ? 2 : 1;
        const scales = values === 'int8' ? 4 * 48 : 0;
        let deltas = 0;
        for (let channel = 0; channel < 48; channel += 1) {
          deltas += 1; // counts ≤ 64 take one byte
          let previous = -1;
          for (let entry = rows.rowPointers[channel]!; entry < rows.rowPointers[channel + 1]!; entry += 1) {
            deltas += rows.inputIndices[entry]! - previous - 1 < 128 ? 1 : 2;
            previous = rows.inputIndices[entry]!;
          }
        }
        const expected = {
          dense: scales + 64 * 48 * b,
          bitmap: 384 + scales + n * b,
          delta: deltas + scales + n * b,
        };
        expect(planned!.candidates, `${kept} ${values}`).toEqual(expected);
        expect(planned!.entry.byteLength).toBe(Math.min(...Object.values(expected)));
      }
    }
  });
});

describe('the compact export: exactness', () => {
  it('float32 round-trips every kept value bit for bit, channels last or first, any rank', async () => {
    let seed = 10;
    for (const kept of [0, 0.01, 0.1, 0.5, 1]) {
      for (const [shape, channelAxis] of [
        [[37, 11], 1],
        [[11, 37], 0],
        [[3, 3, 5, 7], 3],
        [[7, 5, 3], 0],
      ] as Array<[number[], number]>) {
        const size = shape.reduce((a, b) => a * b, 1);
        seed += 1;
        const values = seededValues(size, seed);
        pruneByMagnitude(values, kept);
        // An explicitly kept zero is stored too (a mask, not the zeros, decides).
        const mask = Float32Array.from(values, (value) => (value !== 0 ? 1 : 0));
        if (kept > 0) mask[size - 1] = 1;
        values[size - 1] = 0;
        const read = await readCompactModel(
          await encodeCompactModel(tensors([{ name: 'w', shape, values, mask, channelAxis }]), {
            allowLarger: true,
          }),
        );
        const tensor = read.tensor('w');
        expect(tensor.dense()).toEqual(values);
        const expectedRows = channelRows(values, shape, channelView(shape, channelAxis), mask);
        const rows = tensor.rows();
        if (tensor.entry.layout !== 'dense') {
          expect(rows.rowPointers).toEqual(expectedRows.rowPointers);
          expect(rows.inputIndices).toEqual(expectedRows.inputIndices);
          expect(rows.values).toEqual(expectedRows.values);
        } else {
          expect(rows).toEqual(channelRows(values, shape, channelView(shape, channelAxis)));
        }
      }
    }
  });

  it('int8 stays within half a scale step per weight (s_c = max|w_c| / 127), keeps zeros and signs', async () => {
    const shape = [96, 40];
    const values = seededValues(96 * 40, 3, 0.5);
    pruneByMagnitude(values, 0.1);
    const decoded = (
      await readCompactModel(
        await encodeCompactModel(tensors([{ name: 'w', shape, values }]), { values: 'int8' }),
      )
    )
      .tensor('w')
      .dense();
    for (let channel = 0; channel < 40; channel += 1) {
      let largest = 0;
      for (let input = 0; input < 96; input += 1)
        largest = Math.max(largest, Math.abs(values[input * 40 + channel]!));
      const step = Math.fround(largest / 127);
      for (let input = 0; input < 96; input += 1) {
        const index = input * 40 + channel;
        expect(Math.abs(decoded[index]! - values[index]!)).toBeLessThanOrEqual(step / 2 + 1e-7 * largest);
        if (values[index] === 0) expect(decoded[index]).toBe(0);
        else expect(Math.sign(decoded[index]!)).toBe(Math.sign(values[index]!));
      }
    }
  });

  it('float16 rounds each value to nearest (relative error ≤ 2⁻¹¹) and refuses what it cannot hold', async () => {
    const values = Float32Array.from([1, 0.5, 65504, 1 + 2 ** -11, -3.25, 0.001]);
    const decoded = (
      await readCompactModel(
        await encodeCompactModel(tensors([{ name: 'w', shape: [3, 2], values }]), {
          values: 'float16',
          allowLarger: true,
        }),
      )
    )
      .tensor('w')
      .dense();
    expect([...decoded.subarray(0, 4)]).toEqual([1, 0.5, 65504, 1]); // the tie 1 + 2⁻¹¹ goes to even
    for (let index = 0; index < values.length; index += 1)
      expect(Math.abs(decoded[index]! - values[index]!)).toBeLessThanOrEqual(
        2 ** -11 * Math.abs(values[index]!),
      );
    const error = await rejection(
      encodeCompactModel(tensors([{ name: 'big', shape: [1, 2], values: Float32Array.from([1, 70000]) }]), {
        values: 'float16',
      }),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('"big" holds 70000');
  });
});

describe('the compact export: what it refuses to write', () => {
  it('is never larger than the model it came from unless allowed', async () => {
    const dense = seededValues(64 * 32, 5);
    const input = tensors([{ name: 'w', shape: [64, 32], values: dense }]);
    const error = await rejection(encodeCompactModel(input));
    expect(error.code).toBe('LARGER_THAN_SOURCE');
    expect(error.details).toMatchObject({ referenceBytes: 64 * 32 * 4 });
    expect((await encodeCompactModel(input, { allowLarger: true })).length).toBeGreaterThan(64 * 32 * 4);
    // A quantized source: int8 of an unpruned model is smaller than float32, but not than a 1-byte source.
    expect(await rejectionCode(encodeCompactModel(input, { values: 'int8', referenceBytes: 64 * 32 }))).toBe(
      'LARGER_THAN_SOURCE',
    );
    expect((await encodeCompactModel(input, { values: 'int8' })).length).toBeLessThan(64 * 32 * 4);
  });

  it('refuses non-finite values, bad masks, duplicate names and bad channel axes', async () => {
    const nan = Float32Array.from([1, Number.NaN, 0, 0]);
    expect(
      await rejectionCode(encodeCompactModel(tensors([{ name: 'w', shape: [2, 2], values: nan }]))),
    ).toBe('INVALID_ARGUMENT');
    const values = Float32Array.from([1, 0, 0, 0]);
    expect(
      await rejectionCode(
        encodeCompactModel(tensors([{ name: 'w', shape: [2, 2], values, mask: [1, 0.5, 0, 0] }])),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(
      await rejectionCode(
        encodeCompactModel(
          tensors([
            { name: 'w', shape: [2, 2], values },
            { name: 'w', shape: [2, 2], values },
          ]),
        ),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(
      await rejectionCode(
        encodeCompactModel(tensors([{ name: 'w', shape: [1, 2, 2], values, channelAxis: 1 }])),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(
      await rejectionCode(
        encodeCompactModel(tensors([{ name: 'w', shape: [2, 2], values }]), { values: 'int4' as never }),
      ),
    ).toBe('INVALID_ARGUMENT');
  });
});

describe('the compact export as untrusted input', () => {
  const base = async () => {
    const values = seededValues(64 * 20, 9);
    pruneByMagnitude(values, 0.1);
    return encodeCompactModel(
      tensors([
        { name: 'delta', shape: [64, 20], values },
        { name: 'bitmap', shape: [4, 3], values: SMALL },
        { name: 'dense', shape: [2, 2], values: Float32Array.from([1, 2, 3, 4]) },
        { name: 'bias', shape: [2], values: Float32Array.from([1, 2]) },
      ]),
      { allowLarger: true },
    );
  };
  const failure = async (bytes: Uint8Array | Promise<Uint8Array>) => {
    const error = await rejection(
      (async () => {
        const model = await readCompactModel(await bytes, { source: 'm.fpsparse', maxDenseBytes: 1e6 });
        for (const tensor of model.tensors) tensor.dense();
      })(),
    );
    expect(error.message.startsWith(`[${error.code}] m.fpsparse: `), error.message).toBe(true);
    return { code: error.code, entry: error.details?.entry, message: error.message };
  };

  it('reads back what it wrote, also from a Node.js Buffer at an odd offset of a shared pool', async () => {
    const bytes = await base();
    const model = await readCompactModel(bytes);
    expect(model.tensors.map((tensor) => tensor.entry.layout)).toEqual([
      'delta',
      'bitmap',
      'dense',
      'vector',
    ]);
    // Buffer.prototype.slice is a view: a reader that takes .slice(…).buffer reads the wrong bytes.
    const pooled = Buffer.concat([Buffer.from([7, 7, 7]), Buffer.from(bytes)]).subarray(3);
    const again = await readCompactModel(pooled);
    for (const tensor of model.tensors) expect(again.tensor(tensor.name).dense()).toEqual(tensor.dense());
  });

  it('detects damage and edits through the content hashes', async () => {
    const bytes = await base();
    const flipped = bytes.slice();
    flipped[flipped.length - 3]! ^= 1;
    expect(await failure(flipped)).toMatchObject({ code: 'CHECKPOINT_CORRUPT', entry: 'data' });
    // Edits of the ASCII header that keep its length: a tensor renamed, the hashes' key renamed.
    const length = new DataView(bytes.buffer).getUint32(8, true);
    const text = new TextDecoder().decode(bytes.subarray(12, 12 + length));
    const edited = (from: string, to: string) => {
      const copy = bytes.slice();
      copy.set(new TextEncoder().encode(text.replace(from, to)), 12);
      return copy;
    };
    expect(await failure(edited('"bitmap"', '"bitmaq"'))).toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
      entry: 'header',
    });
    expect(await failure(edited('"integrity":', '"integritx":'))).toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
      entry: 'integrity',
    });
  });

  it('refuses files cut short, foreign bytes and other versions', async () => {
    const bytes = await base();
    expect(await failure(bytes.subarray(0, bytes.length - 1))).toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    expect(await failure(bytes.subarray(0, 10))).toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    expect((await failure(new TextEncoder().encode('{"modelTopology": {}}'))).message).toContain(
      'not a compact sparse export',
    );
    const huge = bytes.slice();
    new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
    expect((await failure(huge)).message).toContain('header length 4294967295');
    const version = await resealed(bytes, (header) => {
      (header as { formatVersion: number }).formatVersion = 2;
    });
    expect(await failure(version)).toMatchObject({ code: 'CHECKPOINT_MISMATCH' });
  });

  // Edits sealed with fresh hashes, as someone who can edit the file can do: the structure checks
  // must stop each one.
  const edits: Array<[string, (header: any, data: Uint8Array) => void, string]> = [
    [
      'an offset that overlaps the previous tensor',
      (h) => {
        h.tensors[1].offset -= 1;
      },
      'starts at byte',
    ],
    [
      'a byteLength its layout does not imply',
      (h) => {
        h.tensors[2].byteLength += 4;
      },
      'layout needs',
    ],
    [
      'more nonzeros than entries',
      (h) => {
        h.tensors[1].nonzeros = 13;
      },
      'nonzeros',
    ],
    [
      'a bitmap setting more bits than its nonzeros',
      (h, d) => {
        d[h.tensors[1].offset]! |= 0x02;
      },
      'bitmap sets',
    ],
    [
      'a delta gap past the last position',
      (h, d) => {
        d[h.tensors[0].offset + 1] = 0x7f;
      },
      'gap past',
    ],
    [
      'a NaN value',
      (h, d) => void new DataView(d.buffer).setFloat32(h.tensors[2].offset, Number.NaN, true),
      'is NaN',
    ],
    [
      'a duplicate name',
      (h) => {
        h.tensors[3].name = 'dense';
      },
      'twice',
    ],
    [
      'a channel axis in the middle',
      (h) => {
        h.tensors[2].channelAxis = 5;
      },
      'channelAxis',
    ],
    [
      'a shape of 2^40 entries',
      (h) => {
        h.tensors[2].shape = [2 ** 20, 2 ** 20];
      },
      'entries',
    ],
    // 12,800 × 20 float32 is 1,024,000 bytes, past the 1e6 the reader is given; the delta bytes still fit.
    [
      'a shape past maxDenseBytes',
      (h) => {
        h.tensors[0].shape = [12_800, 20];
      },
      'maxDenseBytes',
    ],
    [
      'a negative dimension',
      (h) => {
        h.tensors[3].shape = [-2];
      },
      'sizes',
    ],
    [
      'a vector stored as int8',
      (h) => {
        h.tensors[3].values = 'int8';
      },
      'vector',
    ],
    [
      'an unknown layout',
      (h) => {
        h.tensors[0].layout = 'csr';
      },
      'layout',
    ],
    [
      'a model of unknown kind',
      (h) => {
        h.model = { kind: 'graph' };
      },
      'model kind',
    ],
    [
      'dataBytes that disagree',
      (h) => {
        h.dataBytes += 1;
      },
      'dataBytes',
    ],
    [
      'tensors that is not a list',
      (h) => {
        h.tensors = { 0: 1 };
      },
      'tensors',
    ],
  ];
  for (const [label, edit, words] of edits) {
    it(`refuses ${label}, naming the file and the entry`, async () => {
      const result = await failure(resealed(await base(), edit));
      expect(result.code).toBe('CHECKPOINT_CORRUPT');
      expect(result.message).toContain(words);
    });
  }

  it('refuses an int8 code of −128 and a non-finite int8 scale', async () => {
    const values = seededValues(12, 4);
    const bytes = await encodeCompactModel(tensors([{ name: 'q', shape: [4, 3], values }]), {
      values: 'int8',
      allowLarger: true,
    });
    const code = await resealed(bytes, (_h, d) => {
      d[12] = 0x80;
    });
    expect((await failure(code)).message).toContain('−128');
    const scale = await resealed(
      bytes,
      (_h, d) => void new DataView(d.buffer).setFloat32(0, Number.POSITIVE_INFINITY, true),
    );
    expect((await failure(scale)).message).toContain('scale of channel 0');
  });
});
