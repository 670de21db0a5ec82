import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { FinepruneError } from './errors';
import { withLeakGuard } from './leak-guard';
import { createRandom, type RandomSource } from './random';
import { kthLargest, kthLargestOfTensors, readFloat32, topCountMasks } from './select';
import { SimdSelector } from './select-simd';

/** Sort-based reference: the k-th largest of the concatenation, with -0 reported as 0. */
function referenceKth(arrays: readonly Float32Array[], k: number): number {
  const all = arrays.flatMap((array) => [...array]).sort((a, b) => b - a);
  const value = all[k - 1]!;
  return value === 0 ? 0 : value;
}

/** Reference masks: order by (score desc, array index asc, element index asc) and keep the first `keep`. */
function referenceMasks(arrays: readonly Float32Array[], keep: number): Float32Array[] {
  const entries = arrays.flatMap((array, arrayIndex) =>
    [...array].map((score, index) => ({ score, arrayIndex, index })),
  );
  entries.sort((a, b) => b.score - a.score || a.arrayIndex - b.arrayIndex || a.index - b.index);
  const masks = arrays.map((array) => new Float32Array(array.length));
  for (const entry of entries.slice(0, keep)) masks[entry.arrayIndex]![entry.index] = 1;
  return masks;
}

/** Scores with negatives, +0, -0, duplicates, tiny and huge magnitudes and infinities. */
function awkwardScores(random: RandomSource, length: number): Float32Array {
  const specials = [0, -0, 1, -1, 0.5, 1e-40, -1e-40, 3.4e38, -3.4e38, Number.POSITIVE_INFINITY, -Infinity];
  const array = new Float32Array(length);
  for (let index = 0; index < length; index += 1) {
    const draw = random.next();
    if (draw < 0.2) array[index] = specials[Math.floor(random.next() * specials.length)]!;
    else if (draw < 0.5)
      array[index] = Math.round((random.next() - 0.5) * 8) / 4; // many duplicates
    else array[index] = (random.next() - 0.5) * 10 ** Math.floor(random.next() * 8 - 4);
  }
  return array;
}

function ones(masks: readonly Float32Array[]): number {
  let count = 0;
  for (const mask of masks) for (const value of mask) count += value;
  return count;
}

function expectFinepruneError(fn: () => unknown, code: string): FinepruneError {
  try {
    fn();
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).code).toBe(code);
    return error as FinepruneError;
  }
  throw new Error(`expected ${code}`);
}

describe('kthLargest', () => {
  it('matches a sort on random single arrays for every k at the edges and random k inside', () => {
    const random = createRandom(1);
    for (let trial = 0; trial < 40; trial += 1) {
      const array = awkwardScores(random, 1 + Math.floor(random.next() * 300));
      const ks = new Set([1, array.length, 1 + Math.floor(random.next() * array.length)]);
      for (const k of ks) expect(kthLargest(array, k)).toBe(referenceKth([array], k));
    }
  });

  it('matches a sort over several arrays (some empty) as one concatenation', () => {
    const random = createRandom(2);
    for (let trial = 0; trial < 30; trial += 1) {
      const arrays = Array.from({ length: 1 + Math.floor(random.next() * 5) }, () =>
        awkwardScores(random, Math.floor(random.next() * 100)),
      );
      const n = arrays.reduce((sum, array) => sum + array.length, 0);
      if (n === 0) continue;
      for (const k of new Set([1, n, 1 + Math.floor(random.next() * n)])) {
        expect(kthLargest(arrays, k)).toBe(referenceKth(arrays, k));
      }
    }
  });

  it('is exact on plain uniform scores of a realistic size', () => {
    const random = createRandom(3);
    const array = new Float32Array(200_000).map(() => random.next() * 2 - 1);
    for (const fraction of [0.01, 0.1, 0.5, 0.9]) {
      const k = Math.round(array.length * fraction);
      expect(kthLargest(array, k)).toBe(referenceKth([array], k));
    }
  });

  it('treats -0 and +0 as one value and never returns -0', () => {
    const scores = new Float32Array([-0, 0, -0, 0, -1, 2]);
    for (let k = 2; k <= 5; k += 1) expect(Object.is(kthLargest(scores, k), 0)).toBe(true);
    expect(Object.is(kthLargest(new Float32Array([-0]), 1), 0)).toBe(true);
    expect(kthLargest(scores, 6)).toBe(-1);
  });

  it('works on subarray views (non-zero byte offsets)', () => {
    const buffer = new Float32Array([100, 5, 3, 9, -100]);
    const view = buffer.subarray(1, 4);
    expect(kthLargest(view, 1)).toBe(9);
    expect(kthLargest(view, 3)).toBe(3);
  });

  it('rejects k outside [1, n] and non-integers with INVALID_ARGUMENT', () => {
    const scores = new Float32Array([1, 2, 3]);
    for (const k of [0, 4, 1.5, Number.NaN, -1])
      expectFinepruneError(() => kthLargest(scores, k), 'INVALID_ARGUMENT');
    expectFinepruneError(() => kthLargest([], 1), 'INVALID_ARGUMENT');
    expectFinepruneError(
      () => kthLargest([new Float32Array(2), [1] as unknown as Float32Array], 1),
      'INVALID_ARGUMENT',
    );
  });

  it('rejects NaN with NON_FINITE naming the input and index', () => {
    const single = expectFinepruneError(
      () => kthLargest(new Float32Array([1, 2, Number.NaN, 4]), 1),
      'NON_FINITE',
    );
    expect(single.message).toContain('index 2');
    const arrays = [new Float32Array([1, 2]), new Float32Array([3, -Number.NaN, 5])];
    const several = expectFinepruneError(() => kthLargest(arrays, 2), 'NON_FINITE');
    expect(several.message).toContain('input 1, index 1');
    expect(several.details).toMatchObject({ arrayIndex: 1, index: 1 });
    // NaN payloads next to the infinities' bit patterns are caught too.
    const bits = new Uint32Array([0x7f800001, 0xff800001]);
    for (const pattern of bits) {
      const scores = new Float32Array(new Uint32Array([0x3f800000, pattern]).buffer);
      expectFinepruneError(() => kthLargest(scores, 1), 'NON_FINITE');
    }
    // Infinities alone are ordered, not rejected.
    expect(kthLargest(new Float32Array([Number.NEGATIVE_INFINITY, 1, Number.POSITIVE_INFINITY]), 1)).toBe(
      Infinity,
    );
  });
});

describe('topCountMasks', () => {
  it('keeps exactly `keep` ones and matches the reference order, locally and globally', () => {
    const random = createRandom(4);
    for (let trial = 0; trial < 40; trial += 1) {
      const arrays = Array.from({ length: 1 + Math.floor(random.next() * 4) }, () =>
        awkwardScores(random, Math.floor(random.next() * 80)),
      );
      const n = arrays.reduce((sum, array) => sum + array.length, 0);
      for (const keep of new Set([0, n, Math.floor(random.next() * (n + 1))])) {
        const masks = topCountMasks(arrays, keep);
        expect(ones(masks)).toBe(keep);
        expect(masks).toEqual(referenceMasks(arrays, keep));
        // Local selection: one array at a time.
        const local = arrays[0]!;
        const localKeep = Math.floor(random.next() * (local.length + 1));
        expect(topCountMasks([local], localKeep)).toEqual(referenceMasks([local], localKeep));
      }
    }
  });

  it('breaks ties by lower array index, then lower element index', () => {
    expect(topCountMasks([new Float32Array([1, 2, 2]), new Float32Array([2, 3])], 3)).toEqual([
      new Float32Array([0, 1, 1]),
      new Float32Array([0, 1]),
    ]);
    const equal = [new Float32Array(5).fill(0.25), new Float32Array(4).fill(0.25)];
    for (let keep = 0; keep <= 9; keep += 1) {
      const masks = topCountMasks(equal, keep);
      expect(ones(masks)).toBe(keep);
      expect([...masks[0]!, ...masks[1]!]).toEqual(
        Array.from({ length: 9 }, (_, index) => (index < keep ? 1 : 0)),
      );
    }
    // -0 and +0 tie.
    expect(topCountMasks([new Float32Array([-0, 0, -0, 1])], 2)).toEqual([new Float32Array([1, 0, 0, 1])]);
  });

  it('keeps exactly `keep` of many ties on a large array', () => {
    const random = createRandom(5);
    const scores = new Float32Array(30_000).map(() => Math.floor(random.next() * 7));
    for (const keep of [1, 12_345, 29_999]) {
      const [mask] = topCountMasks([scores], keep);
      expect(ones([mask!])).toBe(keep);
      expect(mask).toEqual(referenceMasks([scores], keep)[0]);
    }
  });

  it('is exact on large inputs (the sampled bracket and SIMD scans) with ties, ±0, infinities and a sorted order', () => {
    // Node 20 has WebAssembly SIMD, so inputs of 16,384 scores or more take the SIMD route here.
    expect(SimdSelector.create(), 'WebAssembly SIMD is available').toBeDefined();
    const random = createRandom(21);
    const sorted = Float32Array.from({ length: 20_000 }, (_, index) => index / 7);
    const quantized = new Float32Array(40_000).map(() => Math.round(random.next() * 40) / 8);
    const cases: Float32Array[][] = [
      [awkwardScores(random, 50_000)],
      [awkwardScores(random, 17_000), awkwardScores(random, 0), awkwardScores(random, 9_000)],
      [sorted],
      [quantized],
      [new Float32Array(20_000)], // every score ties at 0
    ];
    for (const arrays of cases) {
      const n = arrays.reduce((sum, array) => sum + array.length, 0);
      for (const keep of [
        1,
        Math.floor(n * 0.03),
        Math.floor(n * 0.5),
        Math.floor(random.next() * n),
        n - 1,
      ]) {
        const masks = topCountMasks(arrays, keep);
        expect(ones(masks), `n ${n}, keep ${keep}`).toBe(keep);
        expect(masks, `n ${n}, keep ${keep}`).toEqual(referenceMasks(arrays, keep));
        expect(kthLargest(arrays, keep)).toBe(referenceKth(arrays, keep));
      }
    }
  });

  it('rejects a NaN hidden in a large input', () => {
    const scores = new Float32Array(40_000).map((_, index) => Math.sin(index));
    scores[31_337] = Number.NaN;
    const error = expectFinepruneError(() => topCountMasks([scores], 4_000), 'NON_FINITE');
    expect(error.message).toContain('index 31337');
  });

  it('returns all zeros for keep = 0 and all ones for keep = n', () => {
    const scores = [new Float32Array([3, 1]), new Float32Array([2])];
    expect(topCountMasks(scores, 0)).toEqual([new Float32Array(2), new Float32Array(1)]);
    expect(topCountMasks(scores, 3)).toEqual([new Float32Array([1, 1]), new Float32Array([1])]);
  });

  it('overwrites the `out` masks when given, and checks them', () => {
    const scores = [new Float32Array([3, 1, 2]), new Float32Array([5])];
    const out = [new Float32Array(3).fill(7), new Float32Array(1).fill(7)];
    expect(topCountMasks(scores, 2, out)).toBe(out);
    expect(out).toEqual([new Float32Array([1, 0, 0]), new Float32Array([1])]);
    topCountMasks(scores, 0, out);
    expect(out).toEqual([new Float32Array(3), new Float32Array(1)]);
    expectFinepruneError(() => topCountMasks(scores, 1, [new Float32Array(3)]), 'SHAPE_MISMATCH');
    expectFinepruneError(
      () => topCountMasks(scores, 1, [new Float32Array(3), new Float32Array(2)]),
      'SHAPE_MISMATCH',
    );
    expectFinepruneError(
      () => topCountMasks(scores, 1, [scores[0]!, new Float32Array(1)]),
      'INVALID_ARGUMENT',
    );
  });

  it('rejects NaN (whatever keep is) and keep outside [0, n]', () => {
    const scores = [new Float32Array([1, Number.NaN])];
    for (const keep of [0, 1, 2]) expectFinepruneError(() => topCountMasks(scores, keep), 'NON_FINITE');
    const clean = [new Float32Array([1, 2])];
    for (const keep of [-1, 3, 0.5])
      expectFinepruneError(() => topCountMasks(clean, keep), 'INVALID_ARGUMENT');
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`tensor selection on ${backend}`, () => {
    beforeAll(() => setBackend(backend));

    it('readFloat32 returns float32 values of any numeric dtype', async () => {
      await withLeakGuard(async () => {
        const floats = tf.tensor2d([
          [1.5, -2],
          [0, 4],
        ]);
        const ints = tf.tensor1d([3, -7], 'int32');
        const bools = tf.tensor1d([1, 0], 'bool');
        expect(await readFloat32(floats)).toEqual(new Float32Array([1.5, -2, 0, 4]));
        expect(await readFloat32(ints)).toEqual(new Float32Array([3, -7]));
        expect(await readFloat32(bools)).toEqual(new Float32Array([1, 0]));
        tf.dispose([floats, ints, bools]);
      });
    });

    it('kthLargestOfTensors selects over several tensors together', async () => {
      await withLeakGuard(async () => {
        const random = createRandom(6);
        const arrays = [awkwardScores(random, 50), awkwardScores(random, 70)];
        const tensors = [tf.tensor2d(arrays[0]!, [5, 10]), tf.tensor1d(arrays[1]!)];
        for (const k of [1, 17, 120])
          expect(await kthLargestOfTensors(tensors, k)).toBe(referenceKth(arrays, k));
        tf.dispose(tensors);
      });
    });
  });
}
