import * as tf from '@tensorflow/tfjs-core';
import { blockGrid, expandBlocks, Pruner, sgd } from '@fineprune/core';
import { errorOf, fixedSparsity, testTopK, tinyBatches, tinyMlp } from '@fineprune/core/testing';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { blockMovement } from './block-movement';
import { structuredFromConfig } from './from-config';
import { maskDirectionalDerivative, valuesOf } from './test-support';

// Central differences in float32, h = 5e-3 (see unit-movement.test.ts): tolerance 2e-3 + 1e-2 · |g|.
const H = 5e-3;
const tolerance = (value: number) => 2e-3 + 1e-2 * Math.abs(value);

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`blockMovement on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('gives each block score the straight-through gradient summed over the block, as central differences', async () => {
      const model = tinyMlp(6, 8, 3, 11);
      const size = { rows: 2, cols: 4 } as const;
      const pruner = new Pruner({
        model,
        scores: blockMovement({ ...size, init: { type: 'uniform', scale: 0.1 } }),
        mask: testTopK,
        schedule: fixedSparsity(0.25),
        optimizers: { weights: sgd({ learningRate: 1e-30 }), scores: sgd({ learningRate: 1 }) },
      });
      const pruned = pruner.pruned();
      // fc1 [6, 8]: 3 × 2 blocks of 2 × 4; fc2 [8, 3]: 4 × 1 blocks of 2 × 3 (the edge width).
      expect(pruned.map(({ scores }) => scores!.shape)).toEqual([
        [3, 2],
        [4, 1],
      ]);
      const before = await Promise.all(pruned.map(({ scores }) => valuesOf(scores!)));
      await pruner.trainStep(tinyBatches(6, 3, 16)(0));
      const batch = tinyBatches(6, 3, 16)(0);
      let checked = 0;
      for (const [index, { parameter, scores }] of pruned.entries()) {
        const after = await valuesOf(scores!);
        const grid = blockGrid(parameter.shape, size);
        for (let block = 0; block < after.length; block += 1) {
          const gradient = before[index]![block]! - after[block]!;
          const direction = tf.tidy(() =>
            expandBlocks(
              tf.reshape(tf.oneHot([block], after.length), [grid.gridRows, grid.gridCols]),
              grid,
              parameter.shape,
            ),
          );
          const expected = await maskDirectionalDerivative(
            model,
            batch,
            new Map([[parameter, direction]]),
            H,
          );
          expect(
            Math.abs(gradient - expected),
            `${parameter.name} block ${block}: ${gradient} vs ${expected}`,
          ).toBeLessThan(tolerance(expected));
          if (Math.abs(expected) > 1e-2) checked += 1;
          direction.dispose();
        }
      }
      expect(checked).toBeGreaterThanOrEqual(5);
      tf.dispose([batch.x as tf.Tensor, batch.y as tf.Tensor]);
      pruner.dispose();
      model.dispose();
    });

    it('spreads block scores over the weight and starts them from block norms', async () => {
      const model = tinyMlp(4, 4, 2, 3);
      const [fc1] = model.parameters();
      const strategy = blockMovement({ rows: 2, cols: 2, init: { type: 'magnitude', scale: 2 } });
      const context = { step: 0, model, random: { next: () => 0.5, nextUint32: () => 0 } };
      const scores = strategy.createScores!(fc1!, context);
      const weight = (await fc1!.weight.array()) as number[][];
      // Block (0, 1) holds rows 0–1, columns 2–3: 2 · √(Σ w²).
      const norm = Math.hypot(weight[0]![2]!, weight[0]![3]!, weight[1]![2]!, weight[1]![3]!);
      expect((await scores.array()) as number[][]).toHaveLength(2);
      expect(((await scores.array()) as number[][])[0]![1]).toBeCloseTo(2 * norm, 5);
      const spread = strategy.compute({ parameter: fc1!, scores }, context) as tf.Tensor;
      const values = (await spread.array()) as number[][];
      expect(values[1]![3]).toBeCloseTo(2 * norm, 5);
      expect(values[0]![0]).toBe(values[1]![1]);
      expect(errorOf(() => blockMovement({ rows: 0, cols: 2 })).message).toContain('rows must be');
      const config = strategy.toConfig();
      expect(structuredFromConfig(config).toConfig()).toEqual(config);
      tf.dispose([scores, spread]);
      model.dispose();
    });
  });
}
