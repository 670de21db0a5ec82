import * as tf from '@tensorflow/tfjs-core';
import {
  createPrunableParameter,
  FinepruneError,
  type PluginContext,
  type PrunableModel,
  Pruner,
  adam,
  sparsityReport,
} from '@fineprune/core';
import { countTensors, createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixedTarget, testLearnedScores, tinyBatches, tinyMlp } from '@fineprune/core/testing';
import { lossTermFromConfig, maskFromConfig } from './from-config';
import { sigmoidPenalty, threshold } from './threshold';

const context = { step: 0, model: {} as PrunableModel, random: createRandom(1) } satisfies PluginContext;

function parameter(name: string, shape: number[]) {
  return createPrunableParameter({
    name,
    group: name,
    kind: 'dense',
    weight: tf.tidy(() => tf.variable(tf.zeros(shape))),
  });
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (caught) => caught,
  );
  expect(FinepruneError.is(error)).toBe(true);
  expect((error as FinepruneError).fix.length).toBeGreaterThan(0);
  return (error as FinepruneError).code;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`threshold mask and σ penalty on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('keeps S > τ exactly (and σ(S) > τ with on: "sigmoid")', async () => {
      await withLeakGuard(async () => {
        const a = parameter('a', [2, 3]);
        const scores = tf.tensor([-1, 0.2, 0.3, 0.31, 2, 0.3], [2, 3]);
        const [mask] = await threshold({ minKeptFraction: 0 }).compute(
          [{ parameter: a, scores }],
          0.3,
          context,
        );
        expect(Array.from(await mask!.data())).toEqual([0, 0, 0, 1, 1, 0]);
        // σ(S) > 0.5 ⇔ S > 0
        const [sigmoidMask] = await threshold({ on: 'sigmoid', minKeptFraction: 0 }).compute(
          [{ parameter: a, scores }],
          0.5,
          context,
        );
        expect(Array.from(await sigmoidMask!.data())).toEqual([0, 1, 1, 1, 1, 1]);
        tf.dispose([mask!, sigmoidMask!, scores, a.weight, a.mask]);
      });
    });

    it('applies the minKeptFraction floor per matrix (local) or over the group (global)', async () => {
      const a = parameter('a', [10]);
      const b = parameter('b', [10]);
      const scoresA = tf.tensor([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      const scoresB = tf.tensor([0.5, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 10]);
      const inputs = [
        { parameter: a, scores: scoresA },
        { parameter: b, scores: scoresB },
      ];
      // τ = 9.5 keeps only b[9]; the local floor of 0.2 keeps 2 per matrix → a: 9, 8; b: 10, 0.9.
      const local = await threshold({ minKeptFraction: 0.2 }).compute(inputs, 9.5, context);
      expect(Array.from(await local[0]!.data())).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
      expect(Array.from(await local[1]!.data())).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
      // Global floor of 0.2 of 20 = 4: the top 4 over both: 10, 9, 8, 7.
      const global = await threshold({ minKeptFraction: 0.2, floorScope: 'global' }).compute(
        inputs,
        9.5,
        context,
      );
      expect(Array.from(await global[0]!.data())).toEqual([1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
      expect(Array.from(await global[1]!.data())).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
      // Above the floor the threshold alone decides.
      const plain = await threshold({ minKeptFraction: 0.2 }).compute(inputs, 0.45, context);
      expect(Array.from(await plain[1]!.data())).toEqual([1, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
      tf.dispose([...local, ...global, ...plain, scoresA, scoresB, a.weight, a.mask, b.weight, b.mask]);
    });

    it('refuses a threshold that keeps nothing when there is no floor (EMPTY_MASK), and bad options', async () => {
      const a = parameter('a', [3]);
      const scores = tf.tensor([0.1, 0.2, 0.3]);
      const noFloor = threshold({ minKeptFraction: 0 });
      expect(await codeOf(Promise.resolve(noFloor.compute([{ parameter: a, scores }], 5, context)))).toBe(
        'EMPTY_MASK',
      );
      expect(
        await codeOf(
          Promise.resolve(
            threshold({ on: 'sigmoid', minKeptFraction: 0 }).compute([{ parameter: a, scores }], 1, context),
          ),
        ),
      ).toBe('EMPTY_MASK');
      // With the default floor (0.5%, at least one entry) the same threshold keeps the top score.
      const [floored] = await threshold().compute([{ parameter: a, scores }], 5, context);
      expect(Array.from(await floored!.data())).toEqual([0, 0, 1]);
      expect(() => threshold({ minKeptFraction: 1 })).toThrow(/minKeptFraction/);
      expect(() => threshold({ on: 'abs' as never })).toThrow(FinepruneError);
      expect(maskFromConfig(threshold({ minKeptFraction: 0.01 }).toConfig()).toConfig()).toEqual({
        type: 'threshold',
        on: 'scores',
        minKeptFraction: 0.01,
        floorScope: 'local',
        floorCount: 'ceil',
        sigmoidComparison: 'logit',
      });
      tf.dispose([floored!, scores, a.weight, a.mask]);
    });

    it('computes λ Σ σ(S), its reductions and the λ·τ/τ_f ramp', async () => {
      const s1 = tf.variable(tf.tensor([0, 1, -1, 2]));
      const s2 = tf.variable(tf.tensor([3, -3]));
      const pruned = [
        { parameter: parameter('a', [4]), scores: s1 },
        { parameter: parameter('b', [2]), scores: s2 },
      ];
      const sigma = (x: number) => 1 / (1 + Math.exp(-x));
      const sum1 = sigma(0) + sigma(1) + sigma(-1) + sigma(2);
      const sum2 = sigma(3) + sigma(-3);
      const lossContext = {
        ...context,
        batch: {} as never,
        outputs: {} as never,
        targets: { default: 0.05 },
        pruned,
      };
      const value = (term: ReturnType<typeof sigmoidPenalty>) => {
        const scalar = term.compute(lossContext);
        const result = scalar.dataSync()[0]!;
        scalar.dispose();
        return result;
      };
      expect(value(sigmoidPenalty({ lambda: 2 }))).toBeCloseTo(2 * (sum1 + sum2), 5);
      expect(value(sigmoidPenalty({ lambda: 2, reduction: 'mean' }))).toBeCloseTo((2 * (sum1 + sum2)) / 6, 5);
      expect(value(sigmoidPenalty({ lambda: 2, reduction: 'meanPerParameter' }))).toBeCloseTo(
        2 * ((sum1 / 4 + sum2 / 2) / 2),
        5,
      );
      // τ_t = 0.05 of τ_f = 0.1 → λ_t = λ/2.
      expect(value(sigmoidPenalty({ lambda: 2, rampWithThreshold: { finalThreshold: 0.1 } }))).toBeCloseTo(
        sum1 + sum2,
        5,
      );
      expect(value(sigmoidPenalty({ lambda: 2, parameters: 'b' }))).toBeCloseTo(2 * sum2, 5);
      expect(() => sigmoidPenalty({ lambda: -1 })).toThrow(/lambda/);
      expect(() => sigmoidPenalty({ lambda: 1, rampWithThreshold: { finalThreshold: 0 } })).toThrow(
        FinepruneError,
      );
      const config = sigmoidPenalty({ lambda: 2, rampWithThreshold: { finalThreshold: 0.1 } }).toConfig();
      expect(lossTermFromConfig(config).toConfig()).toEqual(config);
      tf.dispose([s1, s2, ...pruned.flatMap(({ parameter }) => [parameter.weight, parameter.mask])]);
    });

    it('the σ regulariser lowers the scores and raises the sparsity (SMvP)', async () => {
      const run = async (lambda: number) => {
        const model = tinyMlp(6, 5, 3, 2);
        const pruner = new Pruner({
          model,
          scores: testLearnedScores(0.5),
          mask: threshold({ minKeptFraction: 0.01 }),
          schedule: fixedTarget('threshold', 0.4),
          lossTerms: [sigmoidPenalty({ lambda })],
          optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.01 }) },
        });
        await pruner.run({ data: tinyBatches(), untilStep: 40 });
        await pruner.updateMasks();
        const meanScore =
          pruner
            .pruned()
            .reduce((sum, { scores }) => sum + tf.tidy(() => tf.sum(scores!).dataSync()[0]!), 0) / 45;
        const { sparsity } = await sparsityReport(model.parameters());
        pruner.dispose();
        model.dispose();
        return { meanScore, sparsity };
      };
      const free = await run(0);
      const penalised = await run(0.05);
      expect(penalised.meanScore).toBeLessThan(free.meanScore - 0.05);
      expect(penalised.sparsity).toBeGreaterThan(free.sparsity + 0.2);
    });

    it('leaks no tensor over 60 SMvP steps', async () => {
      const model = tinyMlp();
      const pruner = new Pruner({
        model,
        scores: testLearnedScores(0.1),
        mask: threshold(),
        schedule: fixedTarget('threshold', 0.05),
        lossTerms: [sigmoidPenalty({ lambda: 1e-3, rampWithThreshold: { finalThreshold: 0.1 } })],
        optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.01 }) },
      });
      await pruner.run({ data: tinyBatches(), untilStep: 1 });
      const before = countTensors();
      await withLeakGuard(() => pruner.run({ data: tinyBatches(), untilStep: 61 }), {
        label: '60 SMvP steps',
      });
      expect(countTensors()).toBe(before);
      pruner.dispose();
      model.dispose();
    });
  });
}
