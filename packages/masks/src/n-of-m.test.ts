import * as tf from '@tensorflow/tfjs-core';
import {
  createPrunableParameter,
  type PluginContext,
  type PrunableModel,
  Pruner,
  sgd,
} from '@fineprune/core';
import {
  errorOf,
  rejectionOf,
  testLearnedScores,
  testLinearSchedule,
  tinyBatches,
  tinyMlp,
} from '@fineprune/core/testing';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { maskFromConfig } from './from-config';
import { nOfM } from './n-of-m';

const context = { step: 0, model: {} as PrunableModel, random: createRandom(1) } satisfies PluginContext;

function parameter(name: string, shape: number[]) {
  return createPrunableParameter({
    name,
    group: name,
    kind: 'dense',
    weight: tf.tidy(() => tf.variable(tf.zeros(shape))),
  });
}

/** The entries of every group of `m` along `axis` (row-major), as [mask values, score values] pairs. */
function groups(mask: Float32Array, scores: Float32Array, shape: number[], axis: number, m: number) {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const size = shape[axis]!;
  const list: Array<{ kept: number[]; scores: number[] }> = [];
  for (let o = 0; o < outer; o += 1)
    for (let start = 0; start < size; start += m)
      for (let i = 0; i < inner; i += 1) {
        const offsets = Array.from({ length: m }, (_, k) => (o * size + start + k) * inner + i);
        list.push({ kept: offsets.map((at) => mask[at]!), scores: offsets.map((at) => scores[at]!) });
      }
  return list;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`nOfM on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('keeps exactly n of every m along the input dimension, the n best of each group', async () => {
      for (const [n, m, shape, axis] of [
        [2, 4, [16, 6], 0],
        [4, 8, [16, 6], 0],
        [2, 4, [3, 3, 8, 5], 2],
      ] as const) {
        await withLeakGuard(async () => {
          const weight = parameter('w', [...shape]);
          const scores = tf.randomNormal([...shape], 0, 1, 'float32', n * 10 + m);
          const [mask] = await nOfM({ n, m }).compute([{ parameter: weight, scores }], 1 - n / m, context);
          const all = groups(
            (await mask!.data()) as Float32Array,
            (await scores.data()) as Float32Array,
            [...shape],
            axis,
            m,
          );
          expect(all.length).toBe(shape.reduce((a, b) => a * b, 1) / m);
          for (const group of all) {
            expect(group.kept.filter((value) => value === 1).length).toBe(n);
            const keptScores = group.scores.filter((_, k) => group.kept[k] === 1);
            const droppedScores = group.scores.filter((_, k) => group.kept[k] === 0);
            expect(Math.min(...keptScores)).toBeGreaterThanOrEqual(Math.max(...droppedScores));
          }
          tf.dispose([mask!, scores, weight.weight, weight.mask]);
        });
      }
    });

    it('keeps exactly n of every m over random shapes, axes and tied scores (property test)', async () => {
      const random = createRandom(18);
      const pick = (values: readonly number[]) => values[Math.floor(random.next() * values.length)]!;
      for (let trial = 0; trial < 40; trial += 1) {
        const [n, m] = pick([0, 1, 2, 3]) === 0 ? [2, 4] : pick([0, 1]) === 0 ? [4, 8] : [1, 4];
        const rank = pick([2, 3, 4]);
        const shape = Array.from({ length: rank }, () => pick([1, 2, 3]));
        const axis = trial % 2 === 0 ? rank - 2 : pick(Array.from({ length: rank }, (_, index) => index));
        shape[axis] = m * pick([1, 2, 3]);
        const size = shape.reduce((a, b) => a * b, 1);
        // Scores on a coarse grid of 3 values: most groups hold ties at the cut.
        const values = Float32Array.from({ length: size }, () => Math.floor(random.next() * 3));
        await withLeakGuard(async () => {
          const weight = parameter('w', shape);
          const scores = tf.tensor(values, shape);
          const [mask] = await nOfM({ n, m, axis }).compute(
            [{ parameter: weight, scores }],
            1 - n / m,
            context,
          );
          const all = groups((await mask!.data()) as Float32Array, values, shape, axis, m);
          expect(all.length).toBe(size / m);
          for (const group of all) {
            expect(
              group.kept.reduce((a, b) => a + b, 0),
              `trial ${trial} [${shape}] axis ${axis}`,
            ).toBe(n);
            const kept = group.scores.filter((_, k) => group.kept[k] === 1);
            const dropped = group.scores.filter((_, k) => group.kept[k] === 0);
            expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...dropped));
          }
          tf.dispose([mask!, scores, weight.weight, weight.mask]);
        });
      }
    });

    it('stacks on the previous mask: 2:4 inside the rows that remain', async () => {
      await withLeakGuard(async () => {
        const weight = parameter('w', [8, 2]);
        // An earlier stage removed input rows 1, 2 and 5 (the best-scored ones).
        const previous = tf.tensor2d([1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1], [8, 2]);
        const scores = tf.tensor2d([
          [1, 4],
          [9, 9],
          [8, 9],
          [2, 3],
          [5, 1],
          [9, 9],
          [3, 2],
          [4, 5],
        ]);
        const stacked = nOfM({ n: 2, m: 4, withinPrevious: true });
        const [mask] = await stacked.compute(
          [{ parameter: weight, scores, previousMask: previous }],
          0.5,
          context,
        );
        // Rows 0–3: only rows 0 and 3 remain, both kept. Rows 4–7: 4, 6, 7 remain; the best two per
        // column are rows 4 and 7 (5 > 4 > 3) in column 0 and rows 7 and 6 (5 > 2 > 1) in column 1.
        expect(await mask!.array()).toEqual([
          [1, 1],
          [0, 0],
          [0, 0],
          [1, 1],
          [1, 0],
          [0, 0],
          [0, 1],
          [1, 1],
        ]);
        // Without stacking, the removed rows come back.
        const [fresh] = await nOfM({ n: 2, m: 4 }).compute(
          [{ parameter: weight, scores, previousMask: previous }],
          0.5,
          context,
        );
        expect(Array.from(await fresh!.data()).slice(2, 6)).toEqual([1, 1, 1, 1]);
        // At target 0 no group is patterned: the previous mask is kept as it is.
        const [none] = await stacked.compute(
          [{ parameter: weight, scores, previousMask: previous }],
          0,
          context,
        );
        expect(Array.from(await none!.data())).toEqual(Array.from(await previous.data()));
        expect(maskFromConfig(stacked.toConfig()).toConfig()).toEqual(stacked.toConfig());
        tf.dispose([mask!, fresh!, none!, previous, scores, weight.weight, weight.mask]);
      });
    });

    it('breaks ties by the lower index, as written out by hand', async () => {
      await withLeakGuard(async () => {
        const weight = parameter('w', [4, 2]);
        // Column 0 scores 4, 1, 3, 2 → rows 0 and 2; column 1 ties everywhere → rows 0 and 1.
        const scores = tf.tensor2d([
          [4, 1],
          [1, 1],
          [3, 1],
          [2, 1],
        ]);
        const [mask] = await nOfM({ n: 2, m: 4 }).compute([{ parameter: weight, scores }], 0.5, context);
        expect(await mask!.array()).toEqual([
          [1, 1],
          [0, 1],
          [1, 0],
          [0, 0],
        ]);
        tf.dispose([mask!, scores, weight.weight, weight.mask]);
      });
    });

    it('follows a rising target: the groups whose pattern removes the least score go first', async () => {
      await withLeakGuard(async () => {
        const weight = parameter('w', [4, 2]);
        // 2:4 removes 1 + 2 = 3 from column 0 and 5 + 6 = 11 from column 1: at half the final
        // sparsity (0.25), one of the two groups gets the pattern, column 0.
        const scores = tf.tensor2d([
          [9, 5],
          [1, 7],
          [8, 8],
          [2, 6],
        ]);
        const mask = nOfM({ n: 2, m: 4 });
        const [half] = await mask.compute([{ parameter: weight, scores }], 0.25, context);
        expect(await half!.array()).toEqual([
          [1, 1],
          [0, 1],
          [1, 1],
          [0, 1],
        ]);
        const [none] = await mask.compute([{ parameter: weight, scores }], 0, context);
        expect(Array.from(await none!.data()).every((value) => value === 1)).toBe(true);
        const too = await rejectionOf(
          Promise.resolve(mask.compute([{ parameter: weight, scores }], 0.6, context)),
        );
        expect(too.code).toBe('INVALID_SPARSITY');
        expect(too.fix).toContain('0.5');
        tf.dispose([half!, none!, scores, weight.weight, weight.mask]);
      });
    });

    it('ranks groups across parameters with global scope', async () => {
      await withLeakGuard(async () => {
        const a = parameter('a', [4, 1]);
        const b = parameter('b', [4, 1]);
        const scoresA = tf.tensor2d([[9], [8], [7], [6]]); // 2:4 removes 13
        const scoresB = tf.tensor2d([[1], [2], [3], [4]]); // 2:4 removes 3
        const masks = await nOfM({ n: 2, m: 4, scope: 'global' }).compute(
          [
            { parameter: a, scores: scoresA },
            { parameter: b, scores: scoresB },
          ],
          0.25,
          context,
        );
        expect(Array.from(await masks[0]!.data())).toEqual([1, 1, 1, 1]);
        expect(Array.from(await masks[1]!.data())).toEqual([0, 0, 1, 1]);
        tf.dispose([...masks, scoresA, scoresB, a.weight, a.mask, b.weight, b.mask]);
      });
    });

    it('refuses bad patterns and axes that m does not divide, naming the parameter', async () => {
      expect(errorOf(() => nOfM({ n: 5, m: 4 })).message).toContain('1 ≤ n ≤ m');
      const weight = parameter('fc/kernel', [6, 3]);
      const scores = tf.zeros([6, 3]);
      const error = await rejectionOf(
        Promise.resolve(nOfM({ n: 2, m: 4 }).compute([{ parameter: weight, scores }], 0.5, context)),
      );
      expect(error.message).toContain('"fc/kernel"');
      expect(error.message).toContain('not a multiple of m = 4');
      tf.dispose([scores, weight.weight, weight.mask]);
    });

    it('composes with learned scores and a rising schedule in the Pruner, without leaks', async () => {
      const model = tinyMlp(8, 4, 3);
      const pruner = new Pruner({
        model,
        scores: testLearnedScores(0),
        mask: nOfM({ n: 2, m: 4 }),
        schedule: testLinearSchedule(0.5, 6, 2),
        parameters: 'fc1/kernel',
        optimizers: { weights: sgd({ learningRate: 0.05 }), scores: sgd({ learningRate: 0.5 }) },
      });
      await withLeakGuard(() => pruner.run({ data: tinyBatches(8, 3), untilStep: 8 }));
      const [fc1] = model.parameters();
      const mask = (await fc1!.mask.data()) as Float32Array;
      for (const group of groups(mask, mask, [8, 4], 0, 4))
        expect(group.kept.reduce((a, b) => a + b, 0)).toBe(2);
      pruner.dispose();
      model.dispose();
    });
  });
}
