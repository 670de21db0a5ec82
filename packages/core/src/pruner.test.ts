import * as tf from '@tensorflow/tfjs-core';
import { countTensors, setBackend, withLeakGuard } from '@fineprune/tensor';
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
import { Pruner, type PrunerOptions } from './pruner';
import { sparsityReport } from './report';
import { FinepruneError } from './index';
import type { LossTerm, MaskedWeightFactors, Plugin } from './types';

function options(model: ReturnType<typeof tinyMlp>, extra: Partial<PrunerOptions> = {}): PrunerOptions {
  return {
    model,
    scores: testMagnitude,
    mask: testTopK,
    schedule: testLinearSchedule(0.6, 20, 5),
    optimizers: { weights: adam({ learningRate: 0.01 }) },
    ...extra,
  };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`Pruner on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('prunes to the scheduled sparsity and keeps masked weights out of the output', async () => {
      const model = tinyMlp();
      const pruner = new Pruner(options(model));
      await pruner.run({ data: tinyBatches(), untilStep: 25 });
      const report = await sparsityReport(model.parameters());
      // 0.6 of 30 = 18 pruned, 0.6 of 15 = 9 pruned (local selection, exact counts).
      expect(report.parameters.map((row) => row.kept)).toEqual([12, 6]);
      const x = tf.randomNormal([4, 6], 0, 1, 'float32', 5);
      const before = model.forward(x, { training: false }) as tf.Tensor;
      // Change every masked weight wildly: the output must not move.
      const [p1] = model.parameters();
      p1!.weight.assign(tf.tidy(() => tf.add(p1!.weight, tf.mul(tf.sub(1, p1!.mask), 1e3))));
      const after = model.forward(x, { training: false }) as tf.Tensor;
      expect(Array.from(after.dataSync())).toEqual(Array.from(before.dataSync()));
      tf.dispose([x, before, after]);
      pruner.dispose();
      model.dispose();
    });

    it('re-selects masks only every interval steps and whenever the target changes', async () => {
      const model = tinyMlp();
      const updated: number[] = [];
      const pruner = new Pruner(options(model, { schedule: testLinearSchedule(0.5, 10, 4) }));
      await pruner.run({
        data: tinyBatches(),
        untilStep: 13,
        onStep: (result) => void (result.masksUpdated && updated.push(result.step - 1)),
      });
      expect(updated).toEqual([0, 4, 8, 12]);
      pruner.dispose();
      model.dispose();
    });

    it('runs hooks in order and tags a failing hook with the plugin and hook', async () => {
      const model = tinyMlp();
      const calls: string[] = [];
      const logger: Plugin = {
        id: 'logger',
        onRunStart: () => void calls.push('runStart'),
        onStepStart: ({ step }) => void calls.push(`stepStart${step}`),
        afterMaskUpdate: ({ step }) => void calls.push(`masks${step}`),
        onStepEnd: ({ step }) => void calls.push(`stepEnd${step}`),
        onRunEnd: () => void calls.push('runEnd'),
      };
      const pruner = new Pruner(options(model, { plugins: [logger] }));
      await pruner.run({ data: tinyBatches(), untilStep: 2 });
      expect(calls).toEqual([
        'runStart',
        'stepStart0',
        'masks0',
        'stepEnd1',
        'stepStart1',
        'stepEnd2',
        'runEnd',
      ]);
      pruner.dispose();
      const faulty: Plugin = {
        id: 'faulty',
        onStepEnd: () => {
          throw new Error('disk full');
        },
      };
      const failing = new Pruner(
        options(model, { plugins: [faulty], optimizers: { weights: adam({ learningRate: 0.01 }) } }),
      );
      const error = await failing.run({ data: tinyBatches(), untilStep: 3 }).catch((caught) => caught);
      expect(FinepruneError.is(error)).toBe(true);
      expect(error.code).toBe('PLUGIN_HOOK_FAILED');
      expect(error.message).toContain('Plugin "faulty" failed in onStepEnd at step 1: disk full');
      expect(error.details).toMatchObject({ plugin: 'faulty', hook: 'onStepEnd' });
      failing.dispose();
      model.dispose();
    });

    it('routes the straight-through gradient to learned scores: ∂L/∂S = ∂L/∂(W⊙M) ⊙ W (Eq. 2)', async () => {
      const model = tinyMlp();
      const batch = tinyBatches()(0);
      // Reference gradient of the task loss with respect to the effective weights.
      const [p1, p2] = model.parameters();
      const effective = [p1!, p2!].map((p) => tf.variable(tf.mul(p.weight, p.mask)));
      const reference = tf.tidy(() => {
        const w1 = effective[0]!;
        const w2 = effective[1]!;
        const { grads } = tf.variableGrads(() => {
          const bias = model.trainableVariables();
          const hidden = tf.relu(tf.add(tf.matMul(batch.x as tf.Tensor2D, w1), bias[1]!.variable));
          const logits = tf.add(tf.matMul(hidden, w2), bias[3]!.variable);
          return model.loss(logits, batch);
        }, [w1, w2]);
        return [tf.keep(tf.mul(grads[w1.name]!, p1!.weight)), tf.keep(tf.mul(grads[w2.name]!, p2!.weight))];
      });
      const initial = 1;
      const lr = 0.5;
      const pruner = new Pruner(
        options(model, {
          scores: testLearnedScores(initial),
          schedule: testLinearSchedule(0, 10),
          optimizers: { weights: sgd({ learningRate: 1e-9 }), scores: sgd({ learningRate: lr }) },
        }),
      );
      await pruner.trainStep(batch);
      // Under SGD: S = S0 − α_S ∂L/∂S.
      pruner.pruned().forEach(({ scores }, index) => {
        const expected = tf.tidy(() => tf.sub(initial, tf.mul(reference[index]!, lr)));
        const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(expected, scores!))).dataSync()[0]!);
        expect(difference).toBeLessThan(1e-6);
        expected.dispose();
      });
      tf.dispose([...reference, ...effective, batch.x, batch.y] as tf.Tensor[]);
      pruner.dispose();
      model.dispose();
    });

    it('runs evaluation callbacks every N steps with the masks applied, and hands their metrics to hooks', async () => {
      const model = tinyMlp();
      const seen: Array<[number, number]> = [];
      const hooked: number[] = [];
      const pruner = new Pruner(
        options(model, {
          plugins: [{ id: 'metrics-sink', onEvaluate: ({ step }) => void hooked.push(step) }],
        }),
      );
      await pruner.run({
        data: tinyBatches(),
        untilStep: 12,
        evaluations: [
          {
            every: 5,
            evaluate: async ({ step }) => {
              const report = await sparsityReport(model.parameters());
              return { step, kept: report.kept };
            },
          },
        ],
        onEvaluate: (step, metrics) => void seen.push([step, metrics.kept!]),
      });
      // Evaluations run after steps 5 and 10 complete, so they see the masks selected at steps 4 and 9.
      // The test schedule is 0.6 · ⌊s/5⌋·5/20: 0 at step 4, 0.15 at step 9. fc1 has 30 entries, fc2 15:
      // kept = 45 at step 4, and (30 − round(4.5)) + (15 − round(2.25)) = 25 + 13 = 38 at step 9.
      expect(seen.map(([step]) => step)).toEqual([5, 10]);
      expect(hooked).toEqual([5, 10]);
      expect(seen.map(([, kept]) => kept)).toEqual([45, 38]);
      await expect(
        pruner.run({ data: tinyBatches(), untilStep: 13, evaluations: [{ every: 0, evaluate: () => ({}) }] }),
      ).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      pruner.dispose();
      model.dispose();
    });

    it('adds loss terms and clips the global gradient norm to maxNorm, keeping its direction', async () => {
      // SGD with learning rate 1 makes each step −(clipped gradient) itself. The reference gradient is
      // taken here from the model's loss alone (the constant term has no gradient), before the step.
      const learningRate = 1;
      const step = async (maxNorm: number) => {
        const model = tinyMlp();
        const batch = tinyBatches()(0);
        const variables = model.trainableVariables().map(({ variable }) => variable);
        const before = variables.map((variable) => Float64Array.from(variable.dataSync()));
        const { value, grads } = tf.variableGrads(
          () => model.loss(model.forward(batch.x, { training: true }), batch),
          variables,
        );
        const gradient = variables.map((variable) => Float64Array.from(grads[variable.name]!.dataSync()));
        tf.dispose([value, ...Object.values(grads)]);
        const constantTerm: LossTerm = { id: 'plus-two', compute: () => tf.scalar(2), toConfig: () => ({}) };
        const pruner = new Pruner(
          options(model, {
            lossTerms: [constantTerm],
            gradientClipping: { maxNorm },
            optimizers: { weights: sgd({ learningRate }) },
          }),
        );
        const result = await pruner.trainStep(batch);
        const moved = variables.map((variable, index) =>
          Float64Array.from(variable.dataSync(), (after, entry) => before[index]![entry]! - after),
        );
        tf.dispose([batch.x, batch.y] as tf.Tensor[]);
        pruner.dispose();
        model.dispose();
        return {
          result,
          gradient: gradient.flatMap((values) => [...values]),
          moved: moved.flatMap((values) => [...values]),
        };
      };
      const norm = (values: number[]) => Math.sqrt(values.reduce((sum, value) => sum + value * value, 0));

      // ‖g‖ of this batch is about 0.75: maxNorm 0.05 clips it to 0.05 · g/‖g‖ (up to the 1e-6 guard).
      const clipped = await step(0.05);
      const fullNorm = norm(clipped.gradient);
      expect(fullNorm).toBeGreaterThan(0.5);
      expect(clipped.result.loss - clipped.result.taskLoss).toBeCloseTo(2, 5);
      expect(clipped.result.gradientNorm!).toBeCloseTo(fullNorm, 5);
      // float32 weights of size ~1 move by ≤ 0.05: rounding ≤ 1e-7 per entry, so 1e-6 absolute.
      expect(norm(clipped.moved)).toBeCloseTo(0.05 * learningRate, 5);
      const largestMiss = (moved: number[], expected: (index: number) => number) =>
        Math.max(...moved.map((value, index) => Math.abs(value - expected(index))));
      expect(
        largestMiss(clipped.moved, (index) => (learningRate * 0.05 * clipped.gradient[index]!) / fullNorm),
      ).toBeLessThan(1e-6);

      // A norm below maxNorm is left alone: the step is −lr·g, and the norm is still reported.
      const untouched = await step(100);
      expect(untouched.result.gradientNorm!).toBeCloseTo(norm(untouched.gradient), 5);
      expect(largestMiss(untouched.moved, (index) => learningRate * untouched.gradient[index]!)).toBeLessThan(
        1e-6,
      );
    });

    it("weights the task loss by the product of the terms' taskLossWeight", async () => {
      const model = tinyMlp();
      const half: LossTerm = {
        id: 'half',
        taskLossWeight: 0.5,
        compute: () => tf.scalar(0),
        toConfig: () => ({}),
      };
      const tenth: LossTerm = {
        id: 'tenth',
        taskLossWeight: 0.2,
        compute: () => tf.scalar(1),
        toConfig: () => ({}),
      };
      const pruner = new Pruner(options(model, { lossTerms: [half, tenth] }));
      const batch = tinyBatches()(0);
      const result = await pruner.trainStep(batch);
      // loss = 0.5 · 0.2 · task + 0 + 1; taskLoss is reported unweighted (float32 tolerance 1e-5).
      expect(result.loss).toBeCloseTo(0.1 * result.taskLoss + 1, 5);
      expect(result.taskLoss).toBeGreaterThan(0.1);
      tf.dispose([batch.x, batch.y] as tf.Tensor[]);
      pruner.dispose();
      const bad: LossTerm = {
        id: 'bad',
        taskLossWeight: -1,
        compute: () => tf.scalar(0),
        toConfig: () => ({}),
      };
      const error = errorOf(() => new Pruner(options(model, { lossTerms: [bad] })));
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('"bad"') });
      model.dispose();
    });

    it('reports a NaN loss as NON_FINITE with the step', async () => {
      const model = tinyMlp();
      const pruner = new Pruner(options(model));
      const batch = { x: tf.fill([8, 6], Number.NaN), y: tf.zeros([8], 'int32') };
      await expect(pruner.trainStep(batch)).rejects.toMatchObject({
        code: 'NON_FINITE',
        message: expect.stringContaining('step 0'),
      });
      tf.dispose([batch.x, batch.y]);
      pruner.dispose();
      model.dispose();
    });

    it('checks the composition when the pruner is built', () => {
      const model = tinyMlp();
      const thresholdMask = { ...testTopK, id: 'threshold-like', targetKind: 'threshold' as const };
      expect(errorOf(() => new Pruner(options(model, { mask: thresholdMask }))).code).toBe(
        'INCOMPATIBLE_PLUGINS',
      );
      expect(errorOf(() => new Pruner(options(model, { scores: testLearnedScores() }))).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect(errorOf(() => new Pruner(options(model, { parameters: /nothing/ }))).code).toBe(
        'NO_PRUNABLE_PARAMETERS',
      );
      const empty = { ...model, parameters: () => [] };
      expect(errorOf(() => new Pruner(options(empty))).code).toBe('NO_PRUNABLE_PARAMETERS');
      expect(
        errorOf(() => new Pruner(options(model, { gradientClipping: { maxNorm: 0 } }))).message,
      ).toContain('maxNorm');
      model.dispose();
    });

    it('resumes from exported state to the same masks and weights as an uninterrupted run', async () => {
      const run = async (stopAt?: number) => {
        const model = tinyMlp(6, 5, 3, 11);
        let pruner = new Pruner(options(model, { schedule: testLinearSchedule(0.7, 30, 3) }));
        if (stopAt !== undefined) {
          await pruner.run({ data: tinyBatches(), untilStep: stopAt });
          const state = pruner.exportState({ includeVariables: true });
          pruner.dispose();
          // Scramble the model, as a fresh process would have other values.
          for (const { variable } of model.trainableVariables())
            tf.tidy(() => variable.assign(tf.randomNormal(variable.shape)));
          pruner = new Pruner(options(model, { schedule: testLinearSchedule(0.7, 30, 3) }));
          pruner.loadState(state);
          tf.dispose(Object.values(state.tensors));
        }
        await pruner.run({ data: tinyBatches(), untilStep: 40 });
        const masks = model.parameters().map((p) => Array.from(p.mask.dataSync()));
        const weights = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
        pruner.dispose();
        model.dispose();
        return { masks, weights };
      };
      const straight = await run();
      const resumed = await run(17);
      expect(resumed.masks).toEqual(straight.masks);
      expect(resumed.weights).toEqual(straight.weights);
    });

    it('reports the masked factors W, M (and the scores while training) unless the mask has a transform', async () => {
      const model = tinyMlp();
      const parameter = model.parameters()[0]!;
      const plain = parameter.maskedFactors!();
      expect(plain?.weight).toBe(parameter!.weight);
      expect(plain?.mask).toBe(parameter!.mask);
      expect(plain?.scores).toBeUndefined();
      let seenInTraining: MaskedWeightFactors | undefined;
      const capture: LossTerm = {
        id: 'capture',
        compute: () => {
          seenInTraining = parameter!.maskedFactors!();
          return tf.scalar(0);
        },
        toConfig: () => ({}),
      };
      const pruner = new Pruner(
        options(model, {
          scores: testLearnedScores(0.1),
          lossTerms: [capture],
          optimizers: { weights: sgd({ learningRate: 0.1 }), scores: sgd({ learningRate: 0.1 }) },
        }),
      );
      const scores = pruner.pruned().find((entry) => entry.parameter === parameter)!.scores!;
      expect(parameter!.maskedFactors!()?.scores).toBeUndefined(); // outside training
      await pruner.trainStep(tinyBatches()(0));
      expect(seenInTraining?.weight).toBe(parameter!.weight);
      expect(seenInTraining?.scores).toBe(scores);
      pruner.dispose();
      expect(parameter!.maskedFactors!()?.mask).toBe(parameter!.mask); // the transform is removed
      // A mask with a transform computes something else than W ⊙ M: no factors.
      const gated = new Pruner(
        options(model, {
          mask: { ...testTopK, id: 'gated', transform: ({ parameter: p }) => p.weight.clone() },
        }),
      );
      expect(parameter!.maskedFactors!()).toBeUndefined();
      gated.dispose();
      model.dispose();
    });

    it('exports host-memory optimizer slots as their arrays with hostArrays, making no tensor for them', async () => {
      const model = tinyMlp();
      const pruner = new Pruner(
        options(model, {
          scores: testLearnedScores(0.1),
          optimizers: {
            weights: adam({ learningRate: 0.01, slots: 'host' }),
            scores: sgd({ learningRate: 0.1, momentum: 0.9 }),
          },
        }),
      );
      await pruner.run({ data: tinyBatches(), untilStep: 3 });
      const plain = pruner.exportState();
      const before = tf.memory().numTensors;
      const split = pruner.exportState({ hostArrays: true });
      const slotNames = Object.keys(plain.tensors).filter((key) => key.startsWith('optimizer/weights/'));
      expect(slotNames.length).toBe(2 * model.trainableVariables().length); // m and v of each
      expect(Object.keys(split.arrays ?? {}).sort()).toEqual([...slotNames].sort());
      // The tensor-slot optimizer (SGD with momentum on the scores) stays among the tensors.
      expect(Object.keys(split.tensors).sort()).toEqual(
        Object.keys(plain.tensors)
          .filter((key) => !slotNames.includes(key))
          .sort(),
      );
      expect(tf.memory().numTensors - before).toBe(Object.keys(split.tensors).length);
      for (const name of slotNames) {
        expect([...split.arrays![name]!.shape]).toEqual(plain.tensors[name]!.shape);
        expect(Array.from(split.arrays![name]!.values)).toEqual(
          Array.from(await plain.tensors[name]!.data()),
        );
      }
      tf.dispose([...Object.values(plain.tensors), ...Object.values(split.tensors)]);
      pruner.dispose();
      model.dispose();
    });

    it('refuses a state whose masks do not match the model', () => {
      const model = tinyMlp();
      const pruner = new Pruner(options(model));
      const state = pruner.exportState();
      state.tensors['mask/fc1/kernel']!.dispose();
      state.tensors['mask/fc1/kernel'] = tf.ones([2, 2]);
      expect(errorOf(() => pruner.loadState(state)).code).toBe('CHECKPOINT_MISMATCH');
      tf.dispose(Object.values(state.tensors));
      pruner.dispose();
      model.dispose();
    });

    it('leaks no tensor over 200 training steps', async () => {
      const model = tinyMlp();
      const pruner = new Pruner(
        options(model, { schedule: testLinearSchedule(0.8, 150, 10), gradientClipping: { maxNorm: 1 } }),
      );
      const first = tinyBatches()(0);
      await pruner.trainStep(first); // allocates the optimizer slots, which live as long as the pruner
      tf.dispose([first.x, first.y] as tf.Tensor[]);
      const before = countTensors();
      await withLeakGuard(() => pruner.run({ data: tinyBatches(), untilStep: 201 }), {
        label: '200 pruner steps',
      });
      expect(countTensors()).toBe(before);
      pruner.dispose();
      model.dispose();
    });
  });
}
