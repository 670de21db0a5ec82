import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseWasmBackend, setBackend } from './backend';
import { createRandom } from './random';
import { type SelectionHint, thresholdMaskTensors, topCountMaskTensors, topCountMasks } from './select';
import { wasmThreadsInUse } from './wasm-threads';

/** Masks from the tensor route, read back, or undefined when it declined. */
async function direct(arrays: Float32Array[], keep: number, hint?: SelectionHint) {
  const tensors = arrays.map((array) => tf.tensor1d(array));
  const masks = topCountMaskTensors(tensors, keep, hint);
  const values = masks && (await Promise.all(masks.map(async (mask) => (await mask.data()) as Float32Array)));
  tf.dispose([...tensors, ...(masks ?? [])]);
  return values;
}

function scores(seed: number, length: number, quantum = 0): Float32Array {
  const random = createRandom(seed);
  return new Float32Array(length).map(() => {
    const value = (random.next() - 0.5) * 2;
    return quantum > 0 ? Math.round(value / quantum) * quantum : value;
  });
}

// One thread: the single-threaded SIMD build; two: the multi-threaded build over a shared memory.
describe.each([1, 2])('topCountMaskTensors on wasm, %i thread(s)', (threads) => {
  beforeAll(async () => {
    releaseWasmBackend();
    await setBackend('wasm', { wasmThreads: threads });
    expect(wasmThreadsInUse()).toBe(threads);
  });
  afterAll(() => releaseWasmBackend());

  it('gives exactly the masks of topCountMasks, locally and globally, with and without ties', async () => {
    const cases: Float32Array[][] = [
      [scores(1, 235_200)],
      [scores(2, 30_000), scores(3, 1_000), scores(4, 17)],
      [scores(5, 40_000, 0.125)], // 17 distinct values: the threshold has thousands of ties
      [new Float32Array(20_000), new Float32Array(5_000).fill(-0)], // ±0 tie everywhere
    ];
    for (const arrays of cases) {
      const n = arrays.reduce((sum, array) => sum + array.length, 0);
      for (const keep of [1, Math.round(0.1 * n), Math.round(0.03 * n), n - 1]) {
        const got = await direct(arrays, keep);
        expect(got, `n ${n}: the wasm route runs`).toBeDefined();
        expect(got, `n ${n}, keep ${keep}`).toEqual(topCountMasks(arrays, keep));
      }
    }
  });

  it('stays exact with a hint carried across drifting scores, and with a wrong hint', async () => {
    const base = scores(6, 50_000);
    const hint: SelectionHint = {};
    const random = createRandom(7);
    for (let step = 0; step < 12; step += 1) {
      // Scores move a little each step, as learned scores do; every 5th step they jump.
      const drift = step % 5 === 4 ? 0.5 : 0.002;
      for (let index = 0; index < base.length; index += 1) base[index]! += (random.next() - 0.5) * drift;
      const keep = 5_000 + step * 100;
      expect(await direct([base], keep, hint), `step ${step}`).toEqual(topCountMasks([base], keep));
    }
    expect(hint.threshold).toBeTypeOf('number');
    // A hint that brackets nothing near the threshold is only a wasted scan.
    const wrong: SelectionHint = { lo: 100, hi: 101, threshold: 100.5 };
    expect(await direct([base], 4_321, wrong)).toEqual(topCountMasks([base], 4_321));
  });

  it('declines (undefined) small inputs, keep 0 or all, NaN scores, and other backends, without leaking', async () => {
    const before = tf.memory().numTensors;
    expect(await direct([scores(8, 1_000)], 10)).toBeUndefined();
    const big = scores(9, 20_000);
    expect(await direct([big], 0)).toBeUndefined();
    expect(await direct([big], 20_000)).toBeUndefined();
    big[12_345] = Number.NaN;
    expect(await direct([big], 2_000)).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
    await setBackend('cpu');
    expect(await direct([scores(10, 20_000)], 2_000)).toBeUndefined();
    await setBackend('wasm');
  });

  it('does not leak tensors over repeated selections', async () => {
    const tensor = tf.tensor1d(scores(11, 60_000));
    const hint: SelectionHint = {};
    const before = tf.memory().numTensors;
    for (let step = 0; step < 20; step += 1) tf.dispose(topCountMaskTensors([tensor], 6_000, hint));
    expect(tf.memory().numTensors).toBe(before);
    tensor.dispose();
  });

  it('frees a selection band over 64 MiB after each call, keeps a small one, and stays exact', async () => {
    const wasm = (
      tf.backend() as unknown as { wasm: { _malloc(bytes: number): number; _free(at: number): void } }
    ).wasm;
    const [malloc, free] = [wasm._malloc, wasm._free];
    const calls = { bands: [] as number[], freed: [] as number[] };
    const run = async (length: number) => {
      calls.bands = [];
      calls.freed = [];
      wasm._malloc = (bytes: number) => {
        const at = malloc(bytes);
        if (bytes >= length * 4) calls.bands.push(at >>> 0);
        return at;
      };
      wasm._free = (at: number) => {
        calls.freed.push(at >>> 0);
        free(at);
      };
      const values = [scores(21, length - 5), scores(22, 5)];
      try {
        const want = topCountMasks(values, Math.floor(length / 10));
        for (let call = 0; call < 2; call += 1) {
          const got = (await direct(values, Math.floor(length / 10)))!;
          // Exact, element by element (a loop: a deep equality of 16M floats exhausts the worker).
          let differing = 0;
          for (const [part, mask] of got.entries())
            for (let index = 0; index < mask.length; index += 1)
              if (mask[index] !== want[part]![index]) differing += 1;
          expect(differing).toBe(0);
        }
      } finally {
        wasm._malloc = malloc;
        wasm._free = free;
      }
      return { bands: calls.bands.length, freed: calls.bands.every((band) => calls.freed.includes(band)) };
    };
    // 2^24 + 8 scores: a 64 MiB + 32 B band, allocated and freed on each call.
    expect(await run(2 ** 24 + 8)).toEqual({ bands: 2, freed: true });
    // 1M scores: one band (or none, if an earlier test left a larger one), kept for the next call.
    const small = await run(2 ** 20);
    expect(small.bands).toBeLessThanOrEqual(1);
    expect(small.freed).toBe(small.bands === 0);
  });

  it('thresholdMaskTensors equals tf.greater (NaN, ±0, ±Infinity, ties at the cut, ragged sizes) and counts the ones', async () => {
    const random = createRandom(12);
    const specials = [Number.NaN, 0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.25, 0.1];
    for (const size of [1, 3, 4, 7, 1_001, 30_000]) {
      const values = new Float32Array(size).map(() =>
        random.next() < 0.2 ? specials[Math.floor(random.next() * specials.length)]! : random.next() - 0.5,
      );
      for (const cut of [0.1, 0, -0, -1, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, 1 / 3]) {
        const tensor = tf.tensor1d(values);
        const before = tf.memory().numTensors;
        const result = thresholdMaskTensors([tensor], cut);
        expect(result, 'the wasm route runs').toBeDefined();
        const reference = tf.tidy(() => tf.cast(tf.greater(tensor, cut), 'float32'));
        const want = (await reference.data()) as Float32Array;
        expect(await result!.masks[0]!.data(), `size ${size}, cut ${cut}`).toEqual(want);
        expect(result!.counts[0]).toBe(want.reduce((sum, value) => sum + value, 0));
        tf.dispose([...result!.masks, reference]);
        expect(tf.memory().numTensors).toBe(before);
        tensor.dispose();
      }
    }
    const ints = tf.zeros([4], 'int32');
    expect(thresholdMaskTensors([ints], 0)).toBeUndefined();
    ints.dispose();
  });
});
