import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  testLearnedScores,
  testLinearSchedule,
  testTopK,
  testMagnitude,
  tinyBatches,
  tinyMlp,
  errorOf,
} from './testing';
import { adam, sgd } from './optimizers';
import { matchesVariable } from './parameter';
import { Pruner } from './pruner';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`Pruner freeze, per-group score optimizers and mask intervals on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('freezes selected trainable variables: no gradient, no update, no optimizer slot', async () => {
      const model = tinyMlp();
      const pruner = new Pruner({
        model,
        scores: testMagnitude,
        mask: testTopK,
        schedule: testLinearSchedule(0.5, 10),
        freeze: ['fc1', /fc2\/bias/],
        optimizers: { weights: adam({ learningRate: 0.05 }) },
      });
      expect(pruner.frozen().sort()).toEqual(['fc1/bias', 'fc1/kernel', 'fc2/bias']);
      const before = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
      await pruner.run({ data: tinyBatches(), untilStep: 5 });
      const after = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
      expect(after[0]).toEqual(before[0]);
      expect(after[1]).toEqual(before[1]);
      expect(after[3]).toEqual(before[3]);
      expect(after[2]).not.toEqual(before[2]);
      const state = pruner.exportState();
      expect(
        Object.keys(state.tensors)
          .filter((key) => key.startsWith('optimizer/weights/'))
          .every((key) => key.includes('fc2/kernel')),
      ).toBe(true);
      tf.dispose(Object.values(state.tensors));
      pruner.dispose();
      expect(
        errorOf(
          () =>
            new Pruner({
              model,
              scores: testMagnitude,
              mask: testTopK,
              schedule: testLinearSchedule(0.5, 10),
              freeze: 'embedding',
              optimizers: { weights: adam({ learningRate: 0.05 }) },
            }),
        ).message,
      ).toContain('freeze names "embedding"');
      expect(matchesVariable('dense_1/kernel', 'dense_1')).toBe(true);
      expect(matchesVariable('dense_10/kernel', 'dense_1')).toBe(false);
      expect(matchesVariable('a/b', (name) => name === 'a/b')).toBe(true);
      model.dispose();
    });

    it('trains each group’s scores with its own optimizer and re-selects learned-score masks every step by default', async () => {
      const model = tinyMlp();
      const updated: number[] = [];
      const pruner = new Pruner({
        model,
        groups: [
          {
            name: 'slow',
            parameters: 'fc1/kernel',
            scores: testLearnedScores(0),
            mask: testTopK,
            schedule: testLinearSchedule(0.5, 10, 5),
            scoreOptimizer: sgd({ learningRate: 0.01 }),
          },
          {
            name: 'fast',
            parameters: 'fc2/kernel',
            scores: testLearnedScores(0),
            mask: testTopK,
            schedule: testLinearSchedule(0.5, 10, 5),
            scoreOptimizer: sgd({ learningRate: 1 }),
          },
        ],
        optimizers: { weights: sgd({ learningRate: 1e-3 }) },
        plugins: [
          { id: 'spy', afterMaskUpdate: ({ step, group }) => void (group === 'slow' && updated.push(step)) },
        ],
      });
      const result = await pruner.run({ data: tinyBatches(), untilStep: 4 });
      expect(updated).toEqual([0, 1, 2, 3]); // schedule interval 5, but learned scores re-select every step
      expect(result!.learningRates).toEqual({ weights: 1e-3, 'scores@slow': 0.01, 'scores@fast': 1 });
      const [slow, fast] = pruner
        .pruned()
        .map(({ scores }) => Math.max(...Array.from(scores!.dataSync(), Math.abs)));
      expect(slow!).toBeGreaterThan(0);
      expect(fast! / slow!).toBeGreaterThan(10);
      pruner.dispose();
      // An explicit maskUpdateInterval still wins (global re-selection every k steps).
      const every3: number[] = [];
      const sparse = new Pruner({
        model,
        scores: testLearnedScores(0),
        mask: testTopK,
        schedule: testLinearSchedule(0.5, 1000, 1000), // target constant over these steps
        maskUpdateInterval: 3,
        optimizers: { weights: sgd({ learningRate: 1e-3 }), scores: sgd({ learningRate: 0.1 }) },
        plugins: [{ id: 'spy', afterMaskUpdate: ({ step }) => void every3.push(step) }],
      });
      await sparse.run({ data: tinyBatches(), untilStep: 7 });
      expect(every3).toEqual([0, 3, 6]);
      sparse.dispose();
      model.dispose();
    });

    it('refuses a shared optimizer object, a scoreOptimizer on computed scores, and a learnable group with no score optimizer', () => {
      const model = tinyMlp();
      const shared = adam({ learningRate: 0.01 });
      expect(
        errorOf(
          () =>
            new Pruner({
              model,
              scores: testLearnedScores(),
              mask: testTopK,
              schedule: testLinearSchedule(0.5, 10),
              optimizers: { weights: shared, scores: shared },
            }),
        ).message,
      ).toContain('same optimizer object');
      expect(
        errorOf(
          () =>
            new Pruner({
              model,
              groups: [
                {
                  scores: testMagnitude,
                  mask: testTopK,
                  schedule: testLinearSchedule(0.5, 10),
                  scoreOptimizer: sgd({ learningRate: 0.1 }),
                },
              ],
              optimizers: { weights: sgd({ learningRate: 0.1 }) },
            }),
        ).message,
      ).toContain('learns nothing');
      expect(
        errorOf(
          () =>
            new Pruner({
              model,
              groups: [
                { scores: testLearnedScores(), mask: testTopK, schedule: testLinearSchedule(0.5, 10) },
              ],
              optimizers: { weights: sgd({ learningRate: 0.1 }) },
            }),
        ).fix,
      ).toContain('scoreOptimizer');
      model.dispose();
    });
  });
}
