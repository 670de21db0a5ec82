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
import { block } from './block';
import { maskFromConfig } from './from-config';

const context = { step: 0, model: {} as PrunableModel, random: createRandom(1) } satisfies PluginContext;

function parameter(name: string, shape: number[]) {
  return createPrunableParameter({
    name,
    group: name,
    kind: 'dense',
    weight: tf.tidy(() => tf.variable(tf.zeros(shape))),
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`block on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('keeps the blocks with the largest pooled scores, as written out by hand', async () => {
      await withLeakGuard(async () => {
        const weight = parameter('w', [4, 4]);
        // 2 × 2 blocks with sums 4 (top left), 40 (top right), 22 (bottom left), 2 (bottom right).
        const scores = tf.tensor2d([
          [1, 1, 10, 10],
          [1, 1, 10, 10],
          [5, 6, 0, 1],
          [5, 6, 1, 0],
        ]);
        const [sum] = await block({ rows: 2, cols: 2 }).compute(
          [{ parameter: weight, scores }],
          0.5,
          context,
        );
        expect(await sum!.array()).toEqual([
          [0, 0, 1, 1],
          [0, 0, 1, 1],
          [1, 1, 0, 0],
          [1, 1, 0, 0],
        ]);
        // By the maximum instead (1, 10, 6, 1), at 0.75 one block of four stays: the top right.
        const [max] = await block({ rows: 2, cols: 2, pool: 'max' }).compute(
          [{ parameter: weight, scores }],
          0.75,
          context,
        );
        expect(Array.from(await max!.data())).toEqual([0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        tf.dispose([sum!, max!, scores, weight.weight, weight.mask]);
      });
    });

    it('puts leading axes inside each block, handles edge blocks, and prunes whole rows', async () => {
      await withLeakGuard(async () => {
        const conv = parameter('conv', [2, 1, 3, 2]);
        // Input channel 1 scores highest in both taps; rows of the [3, 2] matrix are input channels.
        const scores = tf.tensor4d([0.1, 0.2, 5, 5, 0.3, 0.1, 0.2, 0.1, 4, 4, 0.1, 0.3], [2, 1, 3, 2]);
        const [rows] = await block({ rows: 1, cols: 'all' }).compute(
          [{ parameter: conv, scores }],
          0.6,
          context,
        );
        // 3 blocks, keep 3 − round(1.8) = 1: input channel 1, in both taps.
        expect(Array.from(await rows!.data())).toEqual([0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0]);
        // 2 × 2 blocks over [3, 2]: a full block (rows 0–1, 8 entries with the taps) and an edge block
        // (row 2, 4 entries); by mean, 18.6 / 8 = 2.325 against 0.8 / 4 = 0.2: the full block stays.
        const [edge] = await block({ rows: 2, cols: 2, pool: 'mean' }).compute(
          [{ parameter: conv, scores }],
          0.5,
          context,
        );
        expect(Array.from(await edge!.data())).toEqual([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0]);
        tf.dispose([rows!, edge!, scores, conv.weight, conv.mask]);
      });
    });

    it('gives masks constant on each r × c block, keeping the asked number of blocks (property test)', async () => {
      const random = createRandom(81);
      const pick = (values: readonly number[]) => values[Math.floor(random.next() * values.length)]!;
      for (let trial = 0; trial < 30; trial += 1) {
        const shape = [
          ...(trial % 3 === 0 ? [pick([1, 2]), pick([1, 3])] : []),
          pick([3, 4, 7, 8]),
          pick([2, 5, 6]),
        ];
        const [height, width] = shape.slice(-2) as [number, number];
        const rows = pick([1, 2, 3]);
        const cols = pick([1, 2, 4]);
        const leading = shape.length === 4 ? shape[0]! * shape[1]! : 1;
        const values = Float32Array.from({ length: leading * height * width }, () =>
          Math.floor(random.next() * 4),
        );
        const blocks = Math.ceil(height / rows) * Math.ceil(width / cols);
        const sparsity = pick([0, 0.25, 0.5]);
        await withLeakGuard(async () => {
          const weight = parameter('w', shape);
          const scores = tf.tensor(values, shape);
          const [mask] = await block({ rows, cols }).compute(
            [{ parameter: weight, scores }],
            sparsity,
            context,
          );
          const data = (await mask!.data()) as Float32Array;
          const blockOf = new Map<number, Set<number>>();
          data.forEach((value, index) => {
            const column = index % width;
            const row = Math.floor(index / width) % height;
            const id = Math.floor(row / rows) * Math.ceil(width / cols) + Math.floor(column / cols);
            blockOf.set(id, (blockOf.get(id) ?? new Set()).add(value));
          });
          const where = `trial ${trial} [${shape}] ${rows}×${cols}`;
          expect(blockOf.size, where).toBe(blocks);
          for (const seen of blockOf.values()) expect(seen.size, where).toBe(1);
          const kept = [...blockOf.values()].filter((seen) => seen.has(1)).length;
          expect(kept, where).toBe(blocks - Math.round(sparsity * blocks));
          tf.dispose([mask!, scores, weight.weight, weight.mask]);
        });
      }
    });

    it('composes with magnitude-like scores and a rising schedule in the Pruner, without leaks', async () => {
      const model = tinyMlp(8, 4, 3);
      const pruner = new Pruner({
        model,
        scores: testLearnedScores(0),
        mask: block({ rows: 2, cols: 2, pool: 'mean' }),
        schedule: testLinearSchedule(0.5, 6, 2),
        parameters: 'fc1/kernel',
        optimizers: { weights: sgd({ learningRate: 0.05 }), scores: sgd({ learningRate: 0.5 }) },
      });
      await withLeakGuard(() => pruner.run({ data: tinyBatches(8, 3), untilStep: 8 }));
      const [fc1] = model.parameters();
      const mask = (await fc1!.mask.array()) as number[][];
      let kept = 0;
      for (let row = 0; row < 8; row += 2)
        for (let column = 0; column < 4; column += 2) {
          const values = [
            mask[row]![column],
            mask[row]![column + 1],
            mask[row + 1]![column],
            mask[row + 1]![column + 1],
          ];
          expect(new Set(values).size).toBe(1);
          kept += values[0]!;
        }
      expect(kept).toBe(4); // 8 blocks of 2 × 2 at sparsity 0.5
      pruner.dispose();
      model.dispose();
    });

    it('ranks blocks across parameters with global scope, and by threshold with a floor', async () => {
      await withLeakGuard(async () => {
        const a = parameter('a', [2, 2]);
        const b = parameter('b', [2, 2]);
        const scoresA = tf.tensor2d([
          [1, 1],
          [2, 2],
        ]);
        const scoresB = tf.tensor2d([
          [3, 3],
          [0.5, 0.5],
        ]);
        const rows = { rows: 1, cols: 'all' } as const;
        const global = await block({ ...rows, scope: 'global' }).compute(
          [
            { parameter: a, scores: scoresA },
            { parameter: b, scores: scoresB },
          ],
          0.5,
          context,
        );
        // Row sums 2, 4 | 6, 1: the two best rows are b's first and a's second.
        expect(Array.from(await global[0]!.data())).toEqual([0, 0, 1, 1]);
        expect(Array.from(await global[1]!.data())).toEqual([1, 1, 0, 0]);
        const soft = block({ ...rows, selection: 'threshold' });
        expect(soft.targetKind).toBe('threshold');
        const cut = await soft.compute(
          [
            { parameter: a, scores: scoresA },
            { parameter: b, scores: scoresB },
          ],
          5,
          context,
        );
        // Only b's first row is above 5; a keeps its best row rather than nothing.
        expect(Array.from(await cut[0]!.data())).toEqual([0, 0, 1, 1]);
        expect(Array.from(await cut[1]!.data())).toEqual([1, 1, 0, 0]);
        tf.dispose([...global, ...cut, scoresA, scoresB, a.weight, a.mask, b.weight, b.mask]);
      });
    });

    it('refuses vectors, bad sizes and targets that keep no block, and round-trips its config', async () => {
      expect(errorOf(() => block({ rows: 0, cols: 2 })).message).toContain('rows must be');
      expect(errorOf(() => block({ rows: 2, cols: 2, pool: 'median' as never })).message).toContain(
        'pool must be',
      );
      const bias = parameter('fc/bias', [4]);
      const vector = tf.zeros([4]);
      const rank = await rejectionOf(
        Promise.resolve(
          block({ rows: 2, cols: 2 }).compute([{ parameter: bias, scores: vector }], 0.5, context),
        ),
      );
      expect(rank.message).toContain('"fc/bias" has shape [4]');
      const weight = parameter('fc/kernel', [4, 4]);
      const scores = tf.ones([4, 4]);
      const empty = await rejectionOf(
        Promise.resolve(block({ rows: 2, cols: 2 }).compute([{ parameter: weight, scores }], 0.9, context)),
      );
      expect(empty.code).toBe('EMPTY_MASK');
      expect(empty.message).toContain('"fc/kernel"');
      const config = block({ rows: 32, cols: 'all', scope: 'global', pool: 'l2' }).toConfig();
      expect(maskFromConfig(config).toConfig()).toEqual(config);
      tf.dispose([vector, scores, bias.weight, bias.mask, weight.weight, weight.mask]);
    });
  });
}
