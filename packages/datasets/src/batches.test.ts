import '@tensorflow/tfjs-backend-cpu';
import { FinepruneError } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BatchOrder } from './batch-order';
import { type BatchSource, batches, evaluationBatches, toTensors } from './batches';
import type { Split } from './mnist';
import { PermutationDomain, seededPermutation } from './seeded-permutation';

/** 103 examples of 3 features; example i has features [i, i + 0.25, i + 0.5] and label i % 7. */
function toySplit(count = 103): Split {
  const featureSize = 3;
  const images = new Float32Array(count * featureSize);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    images.set([i, i + 0.25, i + 0.5], i * featureSize);
    labels[i] = i % 7;
  }
  return { images, labels, count, featureSize };
}

/** Example ids in batch `step`, read back from the x tensor (feature 0 is the id). */
function batchIds(source: BatchSource, step: number): number[] {
  const { x, y } = source.batch(step);
  const rows = x.arraySync();
  const labels = y.arraySync() as number[];
  tf.dispose([x, y]);
  rows.forEach((row, i) => {
    expect(row).toEqual([row[0]!, row[0]! + 0.25, row[0]! + 0.5]);
    expect(labels[i]).toBe(row[0]! % 7);
  });
  return rows.map((row) => row[0]!);
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

describe('seededPermutation', () => {
  it('is a permutation, deterministic, and depends on seed and stream', () => {
    const a = seededPermutation(1000, 7, 0);
    expect(Array.from(a).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(seededPermutation(1000, 7, 0)).toEqual(a);
    expect(seededPermutation(1000, 8, 0)).not.toEqual(a);
    expect(seededPermutation(1000, 7, 1)).not.toEqual(a);
    expect(seededPermutation(1000, -7, 0)).not.toEqual(a);
    expect(seededPermutation(1000, 7 + 2 ** 32, 0)).not.toEqual(a);
    expect(seededPermutation(0, 1).length).toBe(0);
    expectCode(() => seededPermutation(3, 1.5), 'INVALID_ARGUMENT');
  });

  it('is roughly uniform: each position sees each element about equally often', () => {
    const n = 5;
    const trials = 5000;
    const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    for (let s = 0; s < trials; s++) {
      const order = seededPermutation(n, 123, s);
      order.forEach((value, position) => {
        counts[position]![value]!++;
      });
    }
    for (const row of counts) for (const c of row) expect(Math.abs(c - trials / n)).toBeLessThan(120);
  });
});

describe('batches', () => {
  const split = toySplit();

  it('computes stepsPerEpoch with and without dropRemainder', () => {
    expect(batches(split, { batchSize: 10, seed: 0 }).stepsPerEpoch).toBe(10);
    expect(batches(split, { batchSize: 10, seed: 0, dropRemainder: false }).stepsPerEpoch).toBe(11);
    expect(batches(split, { batchSize: 103, seed: 0 }).stepsPerEpoch).toBe(1);
  });

  it('gives identical batches for the same seed, from any starting step', () => {
    const a = batches(split, { batchSize: 10, seed: 42 });
    const b = batches(split, { batchSize: 10, seed: 42 });
    const steps = [0, 1, 9, 10, 25, 31];
    const fromA = steps.map((s) => batchIds(a, s));
    const fromB = [...steps]
      .reverse()
      .map((s) => batchIds(b, s))
      .reverse();
    expect(fromB).toEqual(fromA);
    expect(batchIds(batches(split, { batchSize: 10, seed: 43 }), 0)).not.toEqual(fromA[0]);
  });

  it('visits every example exactly once per epoch (dropRemainder: false)', () => {
    const source = batches(split, { batchSize: 10, seed: 3, dropRemainder: false });
    for (let epoch = 0; epoch < 3; epoch++) {
      const seen: number[] = [];
      for (let s = 0; s < source.stepsPerEpoch; s++)
        seen.push(...batchIds(source, epoch * source.stepsPerEpoch + s));
      expect(seen.length).toBe(103);
      expect([...seen].sort((x, y) => x - y)).toEqual(Array.from({ length: 103 }, (_, i) => i));
    }
    const last = source.batch(source.stepsPerEpoch - 1);
    expect(last.x.shape).toEqual([3, 3]);
    tf.dispose([last.x, last.y]);
  });

  it('visits every example at most once per epoch and only the remainder is skipped (dropRemainder)', () => {
    const source = batches(split, { batchSize: 10, seed: 3 });
    const seen = new Set<number>();
    for (let s = 0; s < source.stepsPerEpoch; s++) for (const id of source.indices(s)) seen.add(id);
    expect(seen.size).toBe(100);
    const skipped = source.permutation(0).slice(100);
    for (const id of skipped) expect(seen.has(id)).toBe(false);
  });

  it('uses a different order in each epoch', () => {
    const source = batches(split, { batchSize: 10, seed: 5 });
    const orders = [0, 1, 2].map((epoch) => Array.from(source.permutation(epoch)).join());
    expect(new Set(orders).size).toBe(3);
    expect(source.epochOf(source.stepsPerEpoch * 2 + 1)).toBe(2);
    expect(Array.from(source.indices(source.stepsPerEpoch))).toEqual(
      Array.from(source.permutation(1).slice(0, 10)),
    );
  });

  it('delivers int32 labels or one-hot float32 rows', () => {
    const plain = batches(split, { batchSize: 4, seed: 1 }).batch(0);
    expect(plain.x.dtype).toBe('float32');
    expect(plain.x.shape).toEqual([4, 3]);
    expect(plain.y.dtype).toBe('int32');
    expect(plain.y.shape).toEqual([4]);
    const hot = batches(split, { batchSize: 4, seed: 1, oneHot: true, classes: 10 }).batch(0);
    expect(hot.y.dtype).toBe('float32');
    expect(hot.y.shape).toEqual([4, 10]);
    const labels = plain.y.arraySync() as number[];
    const rows = hot.y.arraySync() as number[][];
    rows.forEach((row, i) => {
      expect(row.reduce((a, b) => a + b, 0)).toBe(1);
      expect(row[labels[i]!]).toBe(1);
    });
    expect(batches(split, { batchSize: 4, seed: 1, oneHot: true }).classes).toBe(7);
    tf.dispose([plain.x, plain.y, hot.x, hot.y]);
  });

  it('rejects bad arguments with INVALID_ARGUMENT', () => {
    expectCode(() => batches(split, { batchSize: 0, seed: 0 }), 'INVALID_ARGUMENT');
    expectCode(() => batches(split, { batchSize: -1, seed: 0 }), 'INVALID_ARGUMENT');
    expectCode(() => batches(split, { batchSize: 104, seed: 0 }), 'INVALID_ARGUMENT');
    expectCode(() => batches(split, { batchSize: 2.5, seed: 0 }), 'INVALID_ARGUMENT');
    expectCode(() => batches(split, { batchSize: 10, seed: Number.NaN }), 'INVALID_ARGUMENT');
    expectCode(() => batches({ ...split, count: 50 }, { batchSize: 10, seed: 0 }), 'INVALID_ARGUMENT');
    const source = batches(split, { batchSize: 10, seed: 0 });
    expectCode(() => source.batch(1.5), 'INVALID_ARGUMENT');
    expectCode(() => source.batch(-1), 'INVALID_ARGUMENT');
    expectCode(() => source.batch(Number.NaN), 'INVALID_ARGUMENT');
    expectCode(() => batches(split, { batchSize: 10, seed: 0, classes: 5 }), 'INVALID_DATA');
  });

  it('leaks no tensors when batches are disposed', () => {
    const before = tf.memory().numTensors;
    const source = batches(split, { batchSize: 8, seed: 9, oneHot: true, classes: 7 });
    for (let s = 0; s < 30; s++) {
      const { x, y } = source.batch(s);
      tf.dispose([x, y]);
    }
    for (const { x, y } of evaluationBatches(split, 25)) tf.dispose([x, y]);
    const all = toTensors(split);
    tf.dispose([all.x, all.y]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('evaluationBatches and toTensors', () => {
  const split = toySplit();

  it('yields the split in order, the last chunk smaller', () => {
    const sizes: number[] = [];
    const ids: number[] = [];
    for (const { x, y } of evaluationBatches(split, 25)) {
      sizes.push(x.shape[0]);
      ids.push(...x.arraySync().map((row) => row[0]!));
      expect(y.dtype).toBe('int32');
      tf.dispose([x, y]);
    }
    expect(sizes).toEqual([25, 25, 25, 25, 3]);
    expect(ids).toEqual(Array.from({ length: 103 }, (_, i) => i));
    expectCode(() => evaluationBatches(split, 0), 'INVALID_ARGUMENT');
  });

  it('toTensors gives the whole split', () => {
    const { x, y } = toTensors(split);
    expect(x.shape).toEqual([103, 3]);
    expect(y.shape).toEqual([103]);
    expect(Array.from(y.dataSync()).slice(0, 8)).toEqual([0, 1, 2, 3, 4, 5, 6, 0]);
    tf.dispose([x, y]);
  });
});

describe('BatchOrder', () => {
  it('takes the examples BatchSource serves, step by step, without the split', () => {
    const split = toySplit();
    const source = batches(split, { batchSize: 10, seed: 4 });
    const order = new BatchOrder(split.count, { batchSize: 10, seed: 4 });
    expect(order.stepsPerEpoch).toBe(10);
    // Steps of three epochs: the features read back from the tensors are the order's indices.
    for (let step = 0; step < 30; step++) {
      // Step s: slice s mod 10 of epoch floor(s / 10)'s batches-domain permutation.
      const epoch = Math.floor(step / 10);
      const expected = seededPermutation(103, 4, epoch, PermutationDomain.batches).slice(
        (step % 10) * 10,
        (step % 10) * 10 + 10,
      );
      expect(Array.from(order.indices(step))).toEqual(Array.from(expected));
      expect(batchIds(source, step)).toEqual(Array.from(expected));
    }
    expect(order.epochOf(10)).toBe(1);
    expect(() => order.indices(-1)).toThrow(FinepruneError);
    expect(() => new BatchOrder(5, { batchSize: 6, seed: 0 })).toThrow(
      /batchSize must be an integer in 1..5/,
    );
  });
});
