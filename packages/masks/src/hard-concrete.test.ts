import * as tf from '@tensorflow/tfjs-core';
import { type PrunableModel, Pruner, type ScoreStrategy, adam, sparsityReport } from '@fineprune/core';
import { countTensors, createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixedTarget, testLearnedScores, tinyBatches, tinyMlp, errorOf } from '@fineprune/core/testing';
import { lossTermFromConfig, maskFromConfig } from './from-config';
import {
  checkHardConcrete,
  expectedL0,
  hardConcrete,
  hardConcreteGate,
  hardConcreteTestMask,
  l0Penalty,
  uniformNoise,
} from './hard-concrete';

const defaults = checkHardConcrete();
const sigma = (x: number) => 1 / (1 + Math.exp(-x));

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`hardConcrete mask and L0 penalty on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('computes the gate, the test-time mask and E[L0] from their formulas (defaults b = 2/3, l = −0.1, r = 1.1)', async () => {
      expect(defaults).toEqual({ beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
      const scoreValues = [-3, -0.5, 0, 0.7, 2.5];
      const uValues = [0.9, 0.2, 0.5, 0.6, 0.05];
      const scores = tf.tensor(scoreValues);
      const u = tf.tensor(uValues);
      const gate = await hardConcreteGate(scores, u, defaults).data();
      const test = await hardConcreteTestMask(scores, defaults).data();
      const expected = await expectedL0(scores, defaults).data();
      let sum = 0;
      scoreValues.forEach((s, index) => {
        const uu = uValues[index]!;
        const stretched = sigma((Math.log(uu) - Math.log(1 - uu) + s) / (2 / 3));
        expect(gate[index]!).toBeCloseTo(Math.min(1, Math.max(0, 1.2 * stretched - 0.1)), 5);
        expect(test[index]!).toBeCloseTo(Math.min(1, Math.max(0, 1.2 * sigma(s) - 0.1)), 5);
        sum += sigma(s - (2 / 3) * Math.log(0.1 / 1.1));
      });
      expect(expected[0]!).toBeCloseTo(sum, 4);
      tf.dispose([scores, u]);
    });

    it('Eq. (3): ∂L/∂S = ∂L/∂a·W·x·f(S̄), f = (r − l)/b·S̄(1 − S̄)·1{0 ≤ Z ≤ 1}, against finite differences', async () => {
      // L = Σ_o (Σ_i x_i W_io M_io − y_o)², one example; u fixed, so L is a smooth function of S
      // away from the kinks Z = 0 and Z = 1 (entries within 1e-2 of a kink in Z are skipped).
      const random = createRandom(11);
      const shape = [4, 3];
      const weight = tf.tensor(
        Array.from({ length: 12 }, () => random.next() * 2 - 1),
        shape,
      );
      const x = tf.tensor([[0.5, -1, 2, 0.3]]);
      const y = tf.tensor([[0.2, -0.4, 1]]);
      const u = uniformNoise(shape, random);
      const scoreValues = Array.from({ length: 12 }, () => random.next() * 4 - 2);
      const lossOf = (s: tf.Tensor) =>
        tf.sum(
          tf.square(tf.sub(tf.matMul(x, tf.mul(weight, hardConcreteGate(s, u, defaults))), y)),
        ) as tf.Scalar;
      const scores = tf.tensor(scoreValues, shape);
      const gradient = await tf.grad(lossOf)(scores).data();
      // Closed form: ∂L/∂a_o = 2(a_o − y_o); ∂L/∂S_io = ∂L/∂a_o · W_io · x_i · f(S̄_io).
      const w = await weight.data();
      const uu = await u.data();
      const xs = [0.5, -1, 2, 0.3];
      const gate = await hardConcreteGate(scores, u, defaults).data();
      const outputs = [0, 1, 2].map((o) =>
        xs.reduce((sum, xi, i) => sum + xi * w[i * 3 + o]! * gate[i * 3 + o]!, 0),
      );
      const dA = outputs.map((a, o) => 2 * (a - [0.2, -0.4, 1][o]!));
      const epsilon = 1e-3;
      let checked = 0;
      for (let index = 0; index < 12; index += 1) {
        const i = Math.floor(index / 3);
        const o = index % 3;
        const stretched = sigma(
          (Math.log(uu[index]!) - Math.log(1 - uu[index]!) + scoreValues[index]!) / (2 / 3),
        );
        const z = 1.2 * stretched - 0.1;
        const f = z >= 0 && z <= 1 ? (1.2 / (2 / 3)) * stretched * (1 - stretched) : 0; // Eq. (3)
        expect(gradient[index]!).toBeCloseTo(dA[o]! * w[index]! * xs[i]! * f, 4);
        if (Math.abs(z) < 1e-2 || Math.abs(z - 1) < 1e-2) continue;
        const bumped = (delta: number) =>
          tf.tidy(
            () =>
              lossOf(
                tf.add(
                  scores,
                  tf.mul(tf.reshape(tf.oneHot(tf.tensor1d([index], 'int32'), 12), shape), delta),
                ),
              ).dataSync()[0]!,
          );
        const numeric = (bumped(epsilon) - bumped(-epsilon)) / (2 * epsilon);
        // float32 round-off of L ≈ 1e-6 / 2ε = 5e-4 at worst, truncation O(ε²).
        expect(Math.abs(numeric - gradient[index]!)).toBeLessThan(2e-3 + 1e-2 * Math.abs(numeric));
        checked += 1;
      }
      expect(checked).toBeGreaterThan(6);
      tf.dispose([weight, x, y, u, scores]);
    });

    it('matches E[L0] = Σ σ(S − b log(−l/r)) with a Monte-Carlo estimate (5σ of the sample count)', async () => {
      // 40 000 draws of each of 8 gates: the estimate of P(M > 0) has standard deviation
      // √(p(1 − p)/40 000) ≤ 0.0025 per gate; the test allows 5 of those (plus 1e-6).
      const samples = 40_000;
      const scoreValues = [-4, -2, -1, -0.3, 0, 0.5, 1.5, 3];
      const scores = tf.tidy(() => tf.tile(tf.tensor2d([scoreValues]), [samples, 1]));
      const u = uniformNoise(scores.shape, createRandom(5));
      const nonZero = await tf
        .tidy(() => tf.mean(tf.cast(tf.greater(hardConcreteGate(scores, u, defaults), 0), 'float32'), 0))
        .data();
      scoreValues.forEach((s, index) => {
        const p = sigma(s - (2 / 3) * Math.log(0.1 / 1.1));
        expect(Math.abs(nonZero[index]! - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / samples) + 1e-6);
      });
      tf.dispose([scores, u]);
    });

    it('samples gates from context.random in training, uses M̂ otherwise, and the same seed gives the same masks', async () => {
      const run = async (seed: number) => {
        const model = tinyMlp(6, 5, 3, 3);
        const pruner = new Pruner({
          model,
          // log α starts just above the closing point σ(S) = 1/12 (S ≈ −2.40): with a small λ the task
          // gradient decides which gates close, so some do and some stay open (a larger λ closes them all: EMPTY_MASK)
          scores: testLearnedScores(-2.3),
          mask: hardConcrete(),
          schedule: fixedTarget('none'),
          lossTerms: [l0Penalty({ lambda: 0.001 })],
          optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.02 }) },
          seed,
        });
        await pruner.run({ data: tinyBatches(), untilStep: 30 });
        await pruner.updateMasks();
        const masks = model.parameters().map((parameter) => Array.from(parameter.mask.dataSync()));
        const scores = pruner.pruned().map(({ scores }) => Array.from(scores!.dataSync()));
        // Outside training the forward pass uses M̂ = min(1, ReLU((r − l)σ(S) + l)), deterministically.
        const [p1] = model.parameters();
        const effective = Array.from(p1!.effectiveWeight().dataSync());
        const expected = tf.tidy(() =>
          Array.from(
            tf.mul(p1!.weight, hardConcreteTestMask(pruner.pruned()[0]!.scores!, defaults)).dataSync(),
          ),
        );
        expect(effective).toEqual(expected);
        const report = await sparsityReport(model.parameters());
        pruner.dispose();
        model.dispose();
        return { masks, scores, sparsity: report.sparsity };
      };
      const a = await run(3);
      const b = await run(3);
      const c = await run(4);
      expect(b).toEqual(a);
      expect(c.scores).not.toEqual(a.scores); // other noise, other trajectory
      expect(a.sparsity).toBeGreaterThan(0); // the penalty closed some gates
      expect(a.masks.flat().every((value) => value >= 0 && value <= 1)).toBe(true);
    });

    it('refuses to close every gate of the group (EMPTY_MASK), and keeps a group with one open gate', async () => {
      await withLeakGuard(async () => {
        const model = tinyMlp(6, 5, 3, 3);
        const [p1, p2] = model.parameters();
        // M̂ = min(1, ReLU(1.2·σ(S) − 0.1)) is 0 for σ(S) ≤ 1/12, i.e. S ≤ −2.398
        const closed = [tf.fill([...p1!.shape], -3), tf.fill([...p2!.shape], -3)];
        const inputs = [
          { parameter: p1!, scores: closed[0]! },
          { parameter: p2!, scores: closed[1]! },
        ];
        const context = { step: 0, model, random: createRandom(1) };
        await expect(hardConcrete().compute(inputs, 0, context)).rejects.toMatchObject({
          code: 'EMPTY_MASK',
          message: expect.stringMatching(
            /every gate is closed: the mask of the group of 2 parameters \(45 weights\)/,
          ),
        });
        const oneOpen = tf.tensor2d([-3, -3, -3, -3, 0, -3, -3, -3, -3, -3, -3, -3, -3, -3, -3], [5, 3]);
        const masks = await hardConcrete().compute(
          [inputs[0]!, { parameter: p2!, scores: oneOpen }],
          0,
          context,
        );
        // σ(0) = 0.5 → M̂ = 1.2·0.5 − 0.1 = 0.5 at the one open gate, 0 elsewhere
        expect(Array.from(masks[1]!.dataSync()).map((value) => Math.round(value * 1e6) / 1e6)).toEqual([
          0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        tf.dispose([...masks, ...closed, oneOpen]);
        model.dispose();
      });
    });

    it('resumes a stochastic L0 run exactly from exported state (the random state is in the checkpoint)', async () => {
      const options = (model: PrunableModel) => ({
        model,
        scores: testLearnedScores(1),
        mask: hardConcrete({ beta: 0.5 }),
        schedule: fixedTarget('none'),
        lossTerms: [l0Penalty({ lambda: 0.01, beta: 0.5 })],
        optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.05 }) },
        seed: 9,
      });
      const run = async (stopAt?: number) => {
        const model = tinyMlp(6, 5, 3, 13);
        let pruner = new Pruner(options(model));
        if (stopAt !== undefined) {
          await pruner.run({ data: tinyBatches(), untilStep: stopAt });
          const state = pruner.exportState({ includeVariables: true });
          pruner.dispose();
          for (const { variable } of model.trainableVariables())
            tf.tidy(() => variable.assign(tf.randomNormal(variable.shape)));
          pruner = new Pruner({ ...options(model), seed: 1234 }); // the seed is overridden by the saved state
          pruner.loadState(state);
          tf.dispose(Object.values(state.tensors));
        }
        await pruner.run({ data: tinyBatches(), untilStep: 20 });
        const scores = pruner.pruned().map(({ scores }) => Array.from(scores!.dataSync()));
        const weights = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
        pruner.dispose();
        model.dispose();
        return { scores, weights };
      };
      expect(await run(8)).toEqual(await run());
    });

    /** testLearnedScores(initial) that also hands its score variables out, to read them without pruned() (which writes pending masks). */
    const recordedScores = (initial: number) => {
      const base = testLearnedScores(initial);
      const created: tf.Variable[] = [];
      const strategy: ScoreStrategy = {
        ...base,
        createScores: (parameter, context) => {
          const variable = base.createScores!(parameter, context)!;
          created.push(variable);
          return variable;
        },
      };
      return { strategy, created };
    };
    // |mask − min(1, ReLU((r − l)σ(S) + l))| ≤ 1e-6 (the op chain against the fused pass on wasm)
    const expectTestMask = (mask: tf.Tensor, scores: tf.Tensor) => {
      const expected = tf.tidy(() => Array.from(hardConcreteTestMask(scores, defaults).dataSync()));
      const actual = Array.from(mask.dataSync());
      expect(actual.length).toBe(expected.length);
      const largest = Math.max(...actual.map((value, entry) => Math.abs(value - expected[entry]!)));
      expect(largest).toBeLessThanOrEqual(1e-6);
    };
    const expectTestMasks = (model: PrunableModel, scores: readonly tf.Tensor[]) => {
      for (const [index, parameter] of model.parameters().entries())
        expectTestMask(parameter.mask, scores[index]!);
    };

    it('writes M̂ on demand: training equals masks-every-step bit for bit, and pruned(), onStepEnd, exportState() and dispose() see M̂ of the current scores', async () => {
      const train = async (maskUpdateInterval?: number) => {
        const model = tinyMlp(6, 5, 3, 21);
        const { strategy, created } = recordedScores(-1);
        const pruner = new Pruner({
          model,
          scores: strategy,
          mask: hardConcrete(),
          schedule: fixedTarget('none'),
          lossTerms: [l0Penalty({ lambda: 0.01 })],
          optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.05 }) },
          seed: 5,
          ...(maskUpdateInterval !== undefined ? { maskUpdateInterval } : {}),
        });
        const source = tinyBatches();
        const results = [];
        let before = 0;
        for (let step = 0; step < 12; step += 1) {
          const batch = source(step);
          results.push(await pruner.trainStep(batch));
          tf.dispose([batch.x, batch.y]);
          if (step === 0) before = countTensors(); // after the optimizers made their slots
        }
        expect(countTensors()).toBe(before); // no tensor left behind by the deferred masks
        return { model, pruner, created, results };
      };
      const everyStep = await train(1);
      const deferred = await train();
      // Training never reads the written masks: the same losses, weights and scores, bit for bit.
      expect(deferred.results.map((result) => result.loss)).toEqual(
        everyStep.results.map((result) => result.loss),
      );
      const values = (run: typeof deferred) => [
        ...run.model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync())),
        ...run.created.map((scores) => Array.from(scores.dataSync())),
      ];
      expect(values(deferred)).toEqual(values(everyStep));
      // The full selection ran at step 0 only (the interval is 50); the old path ran it every step.
      expect(deferred.results.map((result) => result.masksUpdated)).toEqual([true, ...Array(11).fill(false)]);
      expect(everyStep.results.every((result) => result.masksUpdated)).toBe(true);
      // pruned() writes M̂ of the scores after step 12 (the old path holds M̂ of the scores before it).
      deferred.pruner.pruned();
      expectTestMasks(deferred.model, deferred.created);
      // exportState() after one more step saves M̂ of the scores it saves.
      const batch = tinyBatches()(12);
      await deferred.pruner.trainStep(batch);
      const state = deferred.pruner.exportState();
      for (const parameter of deferred.model.parameters())
        expectTestMask(state.tensors[`mask/${parameter.name}`]!, state.tensors[`scores/${parameter.name}`]!);
      tf.dispose(Object.values(state.tensors));
      // dispose() after one more step leaves the model with M̂ of the last scores (W ⊙ M̂ is what it runs).
      await deferred.pruner.trainStep(batch);
      const lastScores = deferred.created.map((scores) => scores.clone());
      deferred.pruner.dispose(); // frees the scores; the pending masks must be written by dispose itself
      expectTestMasks(deferred.model, lastScores);
      tf.dispose([...lastScores, batch.x, batch.y]);
      everyStep.pruner.dispose();
      everyStep.model.dispose();
      deferred.model.dispose();
    });

    it('writes M̂ before onStepEnd plugins read it, and checks EMPTY_MASK at the mask interval', async () => {
      const model = tinyMlp(6, 5, 3, 22);
      const checked: number[] = [];
      const { strategy, created } = recordedScores(-1);
      const pruner = new Pruner({
        model,
        scores: strategy,
        mask: hardConcrete(),
        schedule: fixedTarget('none'),
        optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.05 }) },
        maskUpdateInterval: 4,
        plugins: [
          {
            id: 'mask-reader',
            onStepEnd: ({ result }) => {
              // the plugin sees M̂ of the scores after this step's update, not of the step before
              expectTestMasks(model, created);
              checked.push(result.step);
            },
          },
        ],
      });
      const source = tinyBatches();
      const step = async () => {
        const batch = source(pruner.step);
        try {
          return await pruner.trainStep(batch);
        } finally {
          tf.dispose([batch.x, batch.y]);
        }
      };
      await step(); // step 0: full selection
      // Close every gate (M̂ = 0 for S ≤ −2.398): steps 1–3 train on, the selection at step 4 refuses.
      for (const scores of created) tf.tidy(() => scores.assign(tf.fill(scores.shape, -30)));
      for (let index = 0; index < 3; index += 1) expect((await step()).masksUpdated).toBe(false);
      await expect(step()).rejects.toMatchObject({ code: 'EMPTY_MASK' });
      expect(checked).toEqual([1, 2, 3, 4]);
      pruner.dispose();
      model.dispose();
    });

    it('leaks no tensor over 60 L0 steps', async () => {
      const model = tinyMlp();
      const pruner = new Pruner({
        model,
        scores: testLearnedScores(2),
        mask: hardConcrete(),
        schedule: fixedTarget('none'),
        lossTerms: [l0Penalty({ lambda: 1e-3, reduction: 'mean' })],
        optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.01 }) },
      });
      await pruner.run({ data: tinyBatches(), untilStep: 1 });
      const before = countTensors();
      await withLeakGuard(() => pruner.run({ data: tinyBatches(), untilStep: 61 }), { label: '60 L0 steps' });
      expect(countTensors()).toBe(before);
      pruner.dispose();
      model.dispose();
    });

    it('rejects parameters outside l < 0 < 1 < r or b ≤ 0, with the cause and the fix', () => {
      for (const [options, word] of [
        [{ beta: 0 }, 'beta'],
        [{ beta: -1 }, 'beta'],
        [{ limitLeft: 0 }, 'limitLeft'],
        [{ limitLeft: 0.05 }, 'limitLeft'],
        [{ limitRight: 1 }, 'limitRight'],
        [{ limitRight: 0.9 }, 'limitRight'],
      ] as const) {
        const error = errorOf(() => hardConcrete(options));
        expect(error.code).toBe('INVALID_ARGUMENT');
        expect(error.message).toContain(word);
        expect(error.fix.length).toBeGreaterThan(0);
        expect(errorOf(() => l0Penalty({ lambda: 1, ...options })).code).toBe('INVALID_ARGUMENT');
      }
      expect(errorOf(() => l0Penalty({ lambda: Number.NaN })).message).toContain('lambda');
      const model = tinyMlp();
      const magnitudeLike = {
        id: 'computed',
        learnable: false,
        compute: ({ parameter }: { parameter: { weight: tf.Tensor } }) => tf.abs(parameter.weight),
        toConfig: () => ({}),
      };
      expect(
        errorOf(
          () =>
            new Pruner({
              model,
              scores: magnitudeLike as never,
              mask: hardConcrete(),
              schedule: fixedTarget('none'),
              optimizers: { weights: adam({ learningRate: 0.01 }) },
            }),
        ).code,
      ).toBe('INCOMPATIBLE_PLUGINS');
      model.dispose();
      expect(maskFromConfig(hardConcrete({ beta: 0.5 }).toConfig()).toConfig()).toEqual({
        type: 'hardConcrete',
        beta: 0.5,
        limitLeft: -0.1,
        limitRight: 1.1,
      });
      const penalty = l0Penalty({ lambda: 1e-5 }).toConfig();
      expect(lossTermFromConfig(penalty).toConfig()).toEqual(penalty);
    });
  });
}
