import * as tf from '@tensorflow/tfjs-core';
import {
  type Batch,
  createPrunableParameter,
  type LossTerm,
  type ModelInput,
  Pruner,
  type PrunableModel,
  SPEC_VERSION,
  adam,
  sgd,
} from '@fineprune/core';
import { countTensors, createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  crossEntropy,
  fixedSparsity,
  testTopK,
  tinyBatches,
  tinyMlp,
  errorOf,
} from '@fineprune/core/testing';
import { scoresFromConfig } from './from-config';
import { fanIn } from './init';
import { movement } from './movement';

/** Task loss of the tiny MLP for given effective weights E1, E2 (what the forward pass multiplies with). */
function lossWithEffective(
  model: PrunableModel,
  e1: tf.Tensor,
  e2: tf.Tensor,
  batch: Batch,
  biases: tf.Tensor[] = [model.trainableVariables()[1]!.variable, model.trainableVariables()[3]!.variable],
): tf.Scalar {
  const hidden = tf.relu(tf.add(tf.matMul(batch.x as tf.Tensor2D, e1 as tf.Tensor2D), biases[0]!));
  const logits = tf.add(tf.matMul(hidden, e2 as tf.Tensor2D), biases[1]!) as tf.Tensor2D;
  return crossEntropy(logits, batch.y as tf.Tensor1D, 3);
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`movement scores on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('Eq. (2): the score gradient equals ∂L/∂a·W·x and a finite difference of L in the mask', async () => {
      const model = tinyMlp();
      const batch = tinyBatches()(0);
      const pruner = new Pruner({
        model,
        scores: movement(),
        mask: testTopK,
        schedule: fixedSparsity(0.5),
        // α_S = 1 under plain SGD, so S1 − S0 = −∂L/∂S.
        optimizers: { weights: sgd({ learningRate: 0.1 }), scores: sgd({ learningRate: 1 }) },
      });
      const [p1, p2] = model.parameters();
      await pruner.updateMasks();
      const masks = [p1!.mask.clone(), p2!.mask.clone()];
      const weights = [p1!.weight.clone(), p2!.weight.clone()];
      // The step also updates the biases: keep their values from before it.
      const biases = [
        model.trainableVariables()[1]!.variable.clone(),
        model.trainableVariables()[3]!.variable.clone(),
      ];
      await pruner.trainStep(batch);
      const gradients = pruner.pruned().map(({ scores }) => tf.neg(scores!)); // S0 = 0 → −S1 = ∂L/∂S
      // Closed form of Eq. (2) for the output layer: ∂L/∂S_ho = Σ_b ∂L/∂a_bo · W_ho · x_bh (x = hidden activations).
      const closed = tf.tidy(() => {
        const hidden = tf.relu(
          tf.add(tf.matMul(batch.x as tf.Tensor2D, tf.mul(weights[0]!, masks[0]!)), biases[0]!),
        );
        const logits = tf.add(tf.matMul(hidden, tf.mul(weights[1]!, masks[1]!)), biases[1]!);
        const probabilities = tf.softmax(logits);
        const dA = tf.div(tf.sub(probabilities, tf.oneHot(batch.y as tf.Tensor1D, 3)), 8); // ∂L/∂a of the mean cross-entropy
        return tf.mul(tf.matMul(hidden, dA, true, false), weights[1]!); // Σ_b x_bh ∂L/∂a_bo, times W_ho
      });
      const closedValues = await closed.data();
      const gradientValues = await gradients[1]!.data();
      for (let index = 0; index < closedValues.length; index += 1)
        expect(Math.abs(gradientValues[index]! - closedValues[index]!)).toBeLessThan(1e-6);
      // Finite differences: ∂L/∂S is ∂L/∂M with M treated as continuous (straight-through), for every
      // entry, masked ones included. Central differences, ε = 1e-2; float32 round-off ~3e-5, truncation O(ε²).
      const epsilon = 1e-2;
      let maskedChecked = 0;
      for (const layer of [0, 1]) {
        const mask = masks[layer]!;
        const values = await gradients[layer]!.data();
        const maskValues = await mask.data();
        for (let index = 0; index < mask.size; index += 1) {
          const lossAt = (delta: number) =>
            tf.tidy(() => {
              const bumped = tf.add(
                mask,
                tf.mul(tf.reshape(tf.oneHot(tf.tensor1d([index], 'int32'), mask.size), mask.shape), delta),
              );
              const e = tf.mul(weights[layer]!, bumped);
              const other = tf.mul(weights[1 - layer]!, masks[1 - layer]!);
              return lossWithEffective(
                model,
                layer === 0 ? e : other,
                layer === 0 ? other : e,
                batch,
                biases,
              ).dataSync()[0]!;
            });
          const numeric = (lossAt(epsilon) - lossAt(-epsilon)) / (2 * epsilon);
          expect(Math.abs(numeric - values[index]!)).toBeLessThan(1e-4 + 1e-2 * Math.abs(numeric));
          if (maskValues[index] === 0 && Math.abs(values[index]!) > 1e-4) maskedChecked += 1;
        }
      }
      expect(maskedChecked).toBeGreaterThan(0); // masked weights' scores receive gradient too
      tf.dispose([...masks, ...weights, ...biases, ...gradients, closed, batch.x, batch.y] as tf.Tensor[]);
      pruner.dispose();
      model.dispose();
    });

    it('Eq. (4): under plain SGD, S = −α_S Σ_t (∂L/∂(W⊙M))^(t) ⊙ W^(t), accumulated by hand', async () => {
      const model = tinyMlp(6, 5, 3, 4);
      const data = tinyBatches();
      const alphaS = 0.05;
      const parameters = model.parameters();
      const accumulated = parameters.map((parameter) => tf.zeros([...parameter.shape]));
      // After the masks of step t are selected (and before the step's forward pass), add
      // −α_S (∂L/∂E)^(t) ⊙ W^(t), with E = W ⊙ M, computed independently of the pruner's tape.
      const accumulator = {
        id: 'eq4-accumulator',
        afterMaskUpdate: ({ step }: { step: number }) => {
          const batch = data(step);
          const [e1, e2] = parameters.map((parameter) => tf.mul(parameter.weight, parameter.mask));
          const [g1, g2] = tf.grads((a: tf.Tensor, b: tf.Tensor) => lossWithEffective(model, a, b, batch))([
            e1!,
            e2!,
          ]);
          [g1!, g2!].forEach((gradient, index) => {
            const next = tf.tidy(() =>
              tf.sub(accumulated[index]!, tf.mul(tf.mul(gradient, parameters[index]!.weight), alphaS)),
            );
            accumulated[index]!.dispose();
            accumulated[index] = next;
          });
          tf.dispose([e1!, e2!, g1!, g2!, batch.x, batch.y] as tf.Tensor[]);
        },
      };
      const pruner = new Pruner({
        model,
        scores: movement(),
        mask: testTopK,
        schedule: fixedSparsity(0.6),
        plugins: [accumulator],
        optimizers: { weights: sgd({ learningRate: 0.2 }), scores: sgd({ learningRate: alphaS }) },
      });
      await pruner.run({ data, untilStep: 12 });
      for (const [index, { scores }] of pruner.pruned().entries()) {
        const expected = await accumulated[index]!.data();
        const actual = await scores!.data();
        const scale = Math.max(...Array.from(expected, Math.abs));
        expect(scale).toBeGreaterThan(1e-3);
        for (let i = 0; i < expected.length; i += 1)
          expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(1e-5 * Math.max(1, scale));
      }
      tf.dispose(accumulated);
      pruner.dispose();
      model.dispose();
    });

    it('Appendix A.1: with Top-k, k = 1 and a small weight learning rate, the loss does not increase when the kept connection swaps', async () => {
      // a = Σ_j W_j M_j x_j, L = ½(a − y)²; x = (1, 1, 1), W = (0.5, 1.5, −0.3), y = 2. Scores start
      // at 0, so ties keep j = 0 first; Eq. (2) then raises S_1 fastest (W_1 x_1 is the largest move
      // towards y), and the kept connection swaps from 0 to 1 at step 1.
      const weight = tf.tidy(() => tf.variable(tf.tensor2d([[0.5], [1.5], [-0.3]])));
      const parameter = createPrunableParameter({ name: 'w', group: 'w', kind: 'dense', weight });
      const model: PrunableModel = {
        specVersion: SPEC_VERSION,
        name: 'one-neuron',
        parameters: () => [parameter],
        forward: (x) => tf.matMul(x as tf.Tensor2D, parameter.effectiveWeight() as tf.Tensor2D),
        loss: (outputs, batch) =>
          tf.tidy(
            () =>
              tf.mul(tf.sum(tf.square(tf.sub(outputs as tf.Tensor, batch.y as tf.Tensor))), 0.5) as tf.Scalar,
          ),
        trainableVariables: () => [{ name: 'w', variable: weight }],
        frozenVariables: () => [],
      };
      const pruner = new Pruner({
        model,
        scores: movement(),
        mask: testTopK,
        schedule: fixedSparsity(2 / 3), // keeps 3 − round(2) = 1 connection: TopK with k = 1
        optimizers: { weights: sgd({ learningRate: 1e-3 }), scores: sgd({ learningRate: 0.1 }) },
      });
      const kept: number[] = [];
      const losses: number[] = [];
      for (let step = 0; step < 8; step += 1) {
        const batch = { x: tf.tensor2d([[1, 1, 1]]), y: tf.tensor2d([[2]]) };
        const result = await pruner.trainStep(batch);
        kept.push((await parameter.mask.data()).indexOf(1));
        losses.push(result.taskLoss);
        tf.dispose([batch.x, batch.y]);
      }
      const swaps = kept.flatMap((index, step) => (step > 0 && index !== kept[step - 1] ? [step] : []));
      expect(swaps.length).toBeGreaterThan(0);
      expect(kept[0]).toBe(0);
      expect(kept[1]).toBe(1);
      for (const step of swaps) expect(losses[step]!).toBeLessThanOrEqual(losses[step - 1]!);
      expect(losses[1]!).toBeCloseTo(0.125, 3); // ½(1.5 − 2)²
      expect(losses[0]!).toBeCloseTo(1.125, 6); // ½(0.5 − 2)²
      pruner.dispose();
      tf.dispose([weight, parameter.mask]);
    });

    it('initialises constant (default 0), uniform and kaiming scores from the seeded random source', async () => {
      const model = tinyMlp();
      const context = { step: 0, model, random: createRandom(3) };
      const [p1] = model.parameters();
      const zero = movement().createScores!(p1!, context);
      expect(Array.from(await zero.data()).every((value) => value === 0)).toBe(true);
      const uniform = movement({ init: { type: 'uniform', scale: 0.01 } }).createScores!(p1!, context);
      const uniformValues = Array.from(await uniform.data());
      expect(uniformValues.every((value) => Math.abs(value) <= 0.01)).toBe(true);
      expect(new Set(uniformValues).size).toBe(uniformValues.length);
      const kaiming = movement({ init: { type: 'kaiming' } }).createScores!(p1!, {
        ...context,
        random: createRandom(3),
      });
      const bound = 1 / Math.sqrt(fanIn(p1!.shape));
      expect(fanIn([3, 3, 4, 8])).toBe(36);
      expect(Array.from(await kaiming.data()).every((value) => Math.abs(value) <= bound)).toBe(true);
      const again = movement({ init: { type: 'uniform', scale: 0.01 } }).createScores!(p1!, {
        ...context,
        random: createRandom(3),
      });
      const first = movement({ init: { type: 'uniform', scale: 0.01 } }).createScores!(p1!, {
        ...context,
        random: createRandom(3),
      });
      expect(Array.from(await again.data())).toEqual(Array.from(await first.data()));
      const config = movement({ init: { type: 'uniform', scale: 0.01 } }).toConfig();
      expect(config).toEqual({ type: 'movement', init: { type: 'uniform', scale: 0.01 } });
      expect(scoresFromConfig(config).toConfig()).toEqual(config);
      tf.dispose([zero, uniform, kaiming, again, first]);
      model.dispose();
    });

    it('gives identical masks and scores for the same seed, different ones for another seed', async () => {
      const run = async (seed: number) => {
        const model = tinyMlp(6, 5, 3, 9);
        const pruner = new Pruner({
          model,
          scores: movement({ init: { type: 'uniform', scale: 0.05 } }),
          mask: testTopK,
          schedule: fixedSparsity(0.5),
          optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.01 }) },
          seed,
        });
        await pruner.run({ data: tinyBatches(), untilStep: 6 });
        const masks = model.parameters().map((parameter) => Array.from(parameter.mask.dataSync()));
        const scores = pruner.pruned().map(({ scores }) => Array.from(scores!.dataSync()));
        pruner.dispose();
        model.dispose();
        return { masks, scores };
      };
      const a = await run(5);
      const b = await run(5);
      const c = await run(6);
      expect(b).toEqual(a);
      expect(c.scores).not.toEqual(a.scores);
    });

    it('resumes exactly with a per-group score optimizer and frozen variables (exportState/loadState)', async () => {
      const options = (model: PrunableModel) => ({
        model,
        groups: [
          {
            name: 'first',
            parameters: 'fc1/kernel',
            scores: movement({ init: { type: 'uniform' as const, scale: 0.01 } }),
            mask: testTopK,
            schedule: fixedSparsity(0.5),
            scoreOptimizer: adam({ learningRate: 0.02 }),
          },
          {
            name: 'second',
            parameters: 'fc2/kernel',
            scores: movement(),
            mask: testTopK,
            schedule: fixedSparsity(0.3),
          },
        ],
        freeze: 'fc1/bias',
        optimizers: {
          weights: adam({ learningRate: 0.01 }),
          scores: sgd({ learningRate: 0.05, momentum: 0.9 }),
        },
        seed: 4,
      });
      const run = async (stopAt?: number) => {
        const model = tinyMlp(6, 5, 3, 21);
        const bias = Array.from(model.trainableVariables()[1]!.variable.dataSync());
        let pruner = new Pruner(options(model));
        if (stopAt !== undefined) {
          await pruner.run({ data: tinyBatches(), untilStep: stopAt });
          const state = pruner.exportState({ includeVariables: true });
          expect(Object.keys(state.tensors).some((key) => key.startsWith('optimizer/scores@first/'))).toBe(
            true,
          );
          expect(
            Object.keys(state.tensors).some((key) => key.startsWith('optimizer/scores/fc2/kernel/scores/')),
          ).toBe(true);
          pruner.dispose();
          for (const { variable } of model.trainableVariables())
            tf.tidy(() => variable.assign(tf.randomNormal(variable.shape)));
          pruner = new Pruner(options(model));
          pruner.loadState(state);
          tf.dispose(Object.values(state.tensors));
        }
        await pruner.run({ data: tinyBatches(), untilStep: 15 });
        expect(Array.from(model.trainableVariables()[1]!.variable.dataSync())).toEqual(bias); // frozen
        const masks = model.parameters().map((parameter) => Array.from(parameter.mask.dataSync()));
        const scores = pruner.pruned().map(({ scores }) => Array.from(scores!.dataSync()));
        const weights = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
        pruner.dispose();
        model.dispose();
        return { masks, scores, weights };
      };
      const straight = await run();
      const resumed = await run(7);
      expect(resumed).toEqual(straight);
    });

    it('trains Conv2D and Embedding weights too: ∂L/∂S = ∂L/∂(W⊙M) ⊙ W (Eq. 2) for both kinds', async () => {
      const kernel = tf.tidy(() => tf.variable(tf.randomNormal([3, 3, 1, 2], 0, 0.5, 'float32', 2)));
      const table = tf.tidy(() => tf.variable(tf.randomNormal([7, 4], 0, 0.5, 'float32', 3)));
      const conv = createPrunableParameter({
        name: 'conv/kernel',
        group: 'conv',
        kind: 'conv2d',
        weight: kernel,
      });
      const embedding = createPrunableParameter({
        name: 'embedding/embeddings',
        group: 'embedding',
        kind: 'embedding',
        weight: table,
      });
      // The model on given effective weights, so the reference gradient can be taken on plain variables.
      const forward = (x: ModelInput, kernelEffective: tf.Tensor, tableEffective: tf.Tensor) => {
        const { image, tokens } = x as Record<string, tf.Tensor>;
        const features = tf.mean(
          tf.conv2d(image as tf.Tensor4D, kernelEffective as tf.Tensor4D, 1, 'same'),
          [1, 2],
        );
        const embedded = tf.sum(tf.gather(tableEffective, tokens as tf.Tensor2D), 1);
        return tf.concat([features, embedded], 1);
      };
      const model: PrunableModel = {
        specVersion: SPEC_VERSION,
        name: 'conv-embedding',
        parameters: () => [conv, embedding],
        forward: (x) => forward(x, conv.effectiveWeight(), embedding.effectiveWeight()),
        loss: (outputs, batch) => crossEntropy(outputs as tf.Tensor2D, batch.y as tf.Tensor1D, 6),
        trainableVariables: () => [
          { name: 'conv/kernel', variable: kernel },
          { name: 'embedding/embeddings', variable: table },
        ],
        frozenVariables: () => [],
      };
      const pruner = new Pruner({
        model,
        scores: movement(),
        mask: testTopK,
        schedule: fixedSparsity(0.5),
        freeze: 'embedding', // as the paper freezes embeddings: the table stays, its scores still learn
        optimizers: { weights: sgd({ learningRate: 0.1 }), scores: sgd({ learningRate: 0.1 }) },
      });
      const before = Array.from(table.dataSync());
      const kernelBefore = Array.from(kernel.dataSync());
      const batch = {
        x: {
          image: tf.randomNormal([4, 5, 5, 1], 0, 1, 'float32', 8),
          tokens: tf.tensor2d(
            [
              [0, 1],
              [2, 3],
              [4, 5],
              [6, 0],
            ],
            [4, 2],
            'int32',
          ),
        },
        y: tf.tensor1d([0, 1, 2, 3], 'int32'),
      };
      const scoresBefore = pruner.pruned().map(({ scores }) => Float64Array.from(scores!.dataSync()));
      await pruner.trainStep(batch);
      // Reference: ∂L/∂(W⊙M) on plain variables holding W⊙M (with the masks the step used and the
      // weights before it), then Eq. 2: ∂L/∂S = ∂L/∂(W⊙M) ⊙ W. Under SGD, S₁ = S₀ − 0.1 ∂L/∂S.
      const masks = [conv.mask, embedding.mask].map((mask) => Float64Array.from(mask.dataSync()));
      const weightsBefore = [kernelBefore, before];
      const effective = [conv, embedding].map((parameter, index) =>
        tf.variable(
          tf.tensor(
            weightsBefore[index]!.map((value, entry) => value * masks[index]![entry]!),
            [...parameter.shape],
          ),
        ),
      );
      const { value, grads } = tf.variableGrads(
        () =>
          crossEntropy(
            forward(batch.x, effective[0]!, effective[1]!) as tf.Tensor2D,
            batch.y,
            6,
          ) as tf.Scalar,
        effective,
      );
      const reference = effective.map((variable) => Float64Array.from(grads[variable.name]!.dataSync()));
      tf.dispose([value, ...Object.values(grads), ...effective]);
      for (const [index, { scores, parameter }] of pruner.pruned().entries()) {
        const after = scores!.dataSync();
        const expected = scoresBefore[index]!.map(
          (initial, entry) => initial - 0.1 * reference[index]![entry]! * weightsBefore[index]![entry]!,
        );
        const moved = Math.max(
          ...expected.map((value, entry) => Math.abs(value - scoresBefore[index]![entry]!)),
        );
        const miss = Math.max(...expected.map((value, entry) => Math.abs(value - after[entry]!)));
        // float32 gradients and updates of size ~1e-2: within 1e-6.
        expect(moved, `${parameter.name}: the scores move`).toBeGreaterThan(1e-3);
        expect(miss, parameter.name).toBeLessThan(1e-6);
      }
      // The frozen table stays; the kernel takes W₁ = W₀ − 0.1 ∂L/∂(W⊙M) ⊙ M.
      expect(Array.from(table.dataSync())).toEqual(before);
      const kernelAfter = kernel.dataSync();
      const kernelMiss = Math.max(
        ...kernelBefore.map((initial, entry) =>
          Math.abs(initial - 0.1 * reference[0]![entry]! * masks[0]![entry]! - kernelAfter[entry]!),
        ),
      );
      expect(kernelMiss).toBeLessThan(1e-6);
      expect(masks[0]!.reduce((sum, bit) => sum + bit, 0)).toBe(9); // half of 18 kept
      tf.dispose([batch.x.image, batch.x.tokens, batch.y, kernel, table, conv.mask, embedding.mask]);
      pruner.dispose();
    });

    it('leaks no tensor over 100 MvP steps with a loss term', async () => {
      const model = tinyMlp();
      const term: LossTerm = {
        id: 'score-l2',
        compute: ({ pruned }) =>
          tf.tidy(
            () => tf.mul(tf.addN(pruned.map(({ scores }) => tf.sum(tf.square(scores!)))), 1e-4) as tf.Scalar,
          ),
        toConfig: () => ({}),
      };
      const pruner = new Pruner({
        model,
        scores: movement({ init: { type: 'kaiming' } }),
        mask: testTopK,
        schedule: fixedSparsity(0.7),
        lossTerms: [term],
        optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.01 }) },
      });
      await pruner.run({ data: tinyBatches(), untilStep: 1 }); // creates the optimizer slots
      const before = countTensors();
      await withLeakGuard(() => pruner.run({ data: tinyBatches(), untilStep: 101 }), {
        label: '100 MvP steps',
      });
      expect(countTensors()).toBe(before);
      pruner.dispose();
      model.dispose();
    });

    it('rejects bad options: init, and a score learning rate ≤ 0', () => {
      expect(errorOf(() => movement({ init: { type: 'uniform', scale: 0 } })).code).toBe('INVALID_ARGUMENT');
      expect(
        errorOf(() => movement({ init: { type: 'constant', value: Number.NaN } })).fix.length,
      ).toBeGreaterThan(0);
      expect(errorOf(() => movement({ init: { type: 'gaussian' } as never })).message).toContain(
        'unknown init type',
      );
      const zero = errorOf(() => adam({ learningRate: 0 }));
      expect(zero.code).toBe('INVALID_ARGUMENT');
      expect(zero.message).toContain('learning rate');
      expect(errorOf(() => sgd({ learningRate: -0.01 })).code).toBe('INVALID_ARGUMENT');
      const model = tinyMlp();
      // A learning-rate function that reaches 0 fails at that step with the step named.
      const optimizer = sgd({ learningRate: (step) => 0.1 - 0.1 * step });
      const variable = tf.variable(tf.ones([2]));
      const gradient = tf.ones([2]);
      optimizer.apply([{ name: 'v', variable, gradient }], 0);
      const late = errorOf(() => optimizer.apply([{ name: 'v', variable, gradient }], 1));
      expect(late.code).toBe('INVALID_ARGUMENT');
      expect(late.message).toContain('step 1');
      // A learnable strategy without any score optimizer is refused when the pruner is built.
      expect(
        errorOf(
          () =>
            new Pruner({
              model,
              scores: movement(),
              mask: testTopK,
              schedule: fixedSparsity(0.5),
              optimizers: { weights: sgd({ learningRate: 0.1 }) },
            }),
        ).message,
      ).toContain('no score optimizer');
      tf.dispose([variable, gradient]);
      model.dispose();
    });
  });
}
