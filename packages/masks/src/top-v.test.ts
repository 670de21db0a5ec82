import * as tf from '@tensorflow/tfjs-core';
import {
  createPrunableParameter,
  FinepruneError,
  type PluginContext,
  type PrunableModel,
} from '@fineprune/core';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { keptCount, topV } from './top-v';

const context = { step: 0, model: {} as PrunableModel, random: createRandom(1) } satisfies PluginContext;

function parameter(name: string, values: number[], shape: number[]) {
  return createPrunableParameter({
    name,
    group: name,
    kind: 'dense',
    weight: tf.tidy(() => tf.variable(tf.tensor(values, shape))),
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`topV on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('keeps the exact count per matrix (local), with ties to the lowest index', async () => {
      await withLeakGuard(async () => {
        const a = parameter('a', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [2, 5]);
        const b = parameter('b', [0, 0, 0, 0], [4]);
        // a: 10 entries, sparsity 0.3 → keep 7; scores 5,1,1,1,1,1,1,1,1,9 → 9,5 then ties (value 1) from index 1 on: 1..5.
        const scoresA = tf.tensor([5, 1, 1, 1, 1, 1, 1, 1, 1, 9], [2, 5]);
        // b: 4 entries → keep 4 − round(1.2) = 3; all scores equal → the first three.
        const scoresB = tf.tensor([2, 2, 2, 2], [4]);
        const masks = await topV({ scope: 'local' }).compute(
          [
            { parameter: a, scores: scoresA },
            { parameter: b, scores: scoresB },
          ],
          0.3,
          context,
        );
        expect(Array.from(await masks[0]!.data())).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 0, 1]);
        expect(masks[0]!.shape).toEqual([2, 5]);
        expect(Array.from(await masks[1]!.data())).toEqual([1, 1, 1, 0]);
        tf.dispose([...masks, scoresA, scoresB, a.weight, a.mask, b.weight, b.mask]);
      });
    });

    it('ranks across matrices with global scope and keeps round((1 − v)·N) in total', async () => {
      await withLeakGuard(async () => {
        const a = parameter('a', [0, 0, 0, 0], [4]);
        const b = parameter('b', [0, 0, 0, 0, 0, 0], [6]);
        const scoresA = tf.tensor([0.1, 0.9, 0.5, 0.5], [4]);
        const scoresB = tf.tensor([0.8, 0.5, 0.2, 0.05, 0.7, 0.6], [6]);
        // N = 10, sparsity 0.5 → keep 5: 0.9, 0.8, 0.7, 0.6, then one of the three 0.5 ties → a[2] (earliest).
        const masks = await topV({ scope: 'global' }).compute(
          [
            { parameter: a, scores: scoresA },
            { parameter: b, scores: scoresB },
          ],
          0.5,
          context,
        );
        expect(Array.from(await masks[0]!.data())).toEqual([0, 1, 1, 0]);
        expect(Array.from(await masks[1]!.data())).toEqual([1, 0, 0, 0, 1, 1]);
        tf.dispose([...masks, scoresA, scoresB, a.weight, a.mask, b.weight, b.mask]);
      });
    });

    it('keeps exactly the requested count on large random scores with many ties', async () => {
      const random = createRandom(7);
      const sizes = [784 * 30, 30 * 10, 10];
      const parameters = sizes.map((size, index) => parameter(`p${index}`, new Array(size).fill(0), [size]));
      // Scores drawn from 17 levels so that ties are everywhere.
      const scores = sizes.map((size) =>
        tf.tensor(Float32Array.from({ length: size }, () => Math.floor(random.next() * 17))),
      );
      for (const sparsity of [0, 0.1, 0.5, 0.9, 0.999]) {
        const inputs = parameters.map((p, index) => ({ parameter: p, scores: scores[index]! }));
        const global = await topV({ scope: 'global' }).compute(inputs, sparsity, context);
        const total = sizes.reduce((sum, size) => sum + size, 0);
        const keptGlobal = global.reduce((sum, mask) => sum + (tf.sum(mask).arraySync() as number), 0);
        expect(keptGlobal).toBe(keptCount(total, sparsity));
        // At 0.999 the 10-entry matrix keeps 10 − round(9.99) = 0 alone: EMPTY_MASK (tested below).
        const local =
          sparsity < 0.999 ? await topV({ scope: 'local' }).compute(inputs, sparsity, context) : [];
        for (const [index, mask] of local.entries()) {
          expect(tf.sum(mask).arraySync()).toBe(keptCount(sizes[index]!, sparsity));
        }
        // Global selection: the smallest kept score is ≥ the largest dropped score.
        let smallestKept = Number.POSITIVE_INFINITY;
        let largestDropped = Number.NEGATIVE_INFINITY;
        for (const [index, mask] of global.entries()) {
          const values = scores[index]!.dataSync();
          const bits = mask.dataSync();
          for (let i = 0; i < values.length; i += 1) {
            if (bits[i] === 1) smallestKept = Math.min(smallestKept, values[i]!);
            else largestDropped = Math.max(largestDropped, values[i]!);
          }
        }
        if (sparsity > 0) expect(smallestKept).toBeGreaterThanOrEqual(largestDropped);
        tf.dispose([...global, ...local]);
      }
      tf.dispose([...scores, ...parameters.flatMap((p) => [p.weight, p.mask])]);
    });

    it('refuses a sparsity that keeps no weight (EMPTY_MASK): of a matrix with local scope, of the group with global', async () => {
      await withLeakGuard(async () => {
        const big = parameter('big', new Array(1000).fill(0), [1000]);
        const small = parameter('small', new Array(10).fill(0), [10]);
        const scoresBig = tf.tensor(Array.from({ length: 1000 }, (_, index) => index));
        const scoresSmall = tf.tensor(Array.from({ length: 10 }, (_, index) => index));
        const inputs = [
          { parameter: big, scores: scoresBig },
          { parameter: small, scores: scoresSmall },
        ];
        // local, v = 0.96: big keeps 1000 − 960 = 40, small keeps 10 − round(9.6) = 0
        const local = await Promise.resolve(topV({ scope: 'local' }).compute(inputs, 0.96, context)).catch(
          (error: FinepruneError) => error,
        );
        expect(local).toMatchObject({ code: 'EMPTY_MASK', details: { mask: 'topV', total: 10 } });
        expect((local as FinepruneError).message).toMatch(
          /topV: at sparsity 0\.96 the mask of "small" \(10 weights\) would keep none of them/,
        );
        // 10 − round(10·v) ≥ 1 ⇔ v < 0.95
        expect((local as FinepruneError).fix).toMatch(/below 0\.95 /);
        // global, the same v keeps round(0.04 · 1010) = 40 weights of the group: fine
        const global = await topV({ scope: 'global' }).compute(inputs, 0.96, context);
        const kept = global.reduce(
          (sum, mask) => sum + Array.from(mask.dataSync()).reduce((a, b) => a + b, 0),
          0,
        );
        expect(kept).toBe(40);
        // global, v = 0.999999 (the value): 1010 − round(1009.99899) = 0 for the whole group
        await expect(topV({ scope: 'global' }).compute(inputs, 0.999999, context)).rejects.toMatchObject({
          code: 'EMPTY_MASK',
          message: expect.stringMatching(/the mask of the group of 2 parameters \(1010 weights\)/),
        });
        tf.dispose([...global, scoresBig, scoresSmall, big.weight, big.mask, small.weight, small.mask]);
      });
    });

    it('rejects a sparsity outside [0, 1) and an unknown scope', async () => {
      const a = parameter('a', [1, 2], [2]);
      const scores = tf.tensor([1, 2]);
      await expect(topV().compute([{ parameter: a, scores }], 1, context)).rejects.toMatchObject({
        code: 'INVALID_SPARSITY',
      });
      await expect(topV().compute([{ parameter: a, scores }], -0.5, context)).rejects.toBeInstanceOf(
        FinepruneError,
      );
      expect(() => topV({ scope: 'everywhere' as never })).toThrow(/scope must be/);
      tf.dispose([a.weight, a.mask, scores]);
    });
  });
}
