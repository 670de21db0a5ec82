import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adam, Pruner, type ScoreStrategy, sgd } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromLayersModel } from './from-layers-model';
import {
  BACKENDS,
  fixedData,
  release,
  mlp,
  testConstant,
  testMagnitude,
  testRamp,
  testTopK,
  values,
} from './test-support';

/** Learned scores (zeros at first) that the straight-through gradient trains. */
function testLearned(): ScoreStrategy {
  return {
    id: 'test-learned',
    learnable: true,
    createScores: (parameter) =>
      tf.variable(tf.randomUniform([...parameter.shape], 0, 1, 'float32', 9), true),
    compute: ({ scores }) => scores!.clone(),
    toConfig: () => ({}),
  };
}

for (const backend of BACKENDS) {
  describe(`pruning a wrapped model on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('leaks no tensor over 200 training steps and reaches the target sparsity', async () => {
      const prunable = fromLayersModel(mlp(61), { loss: 'sparseCategoricalCrossentropy' });
      const pruner = new Pruner({
        model: prunable,
        scores: testMagnitude(),
        mask: testTopK(),
        schedule: testRamp(0.01, 0.5),
        optimizers: { weights: adam({ learningRate: 1e-2 }) },
      });
      const data = fixedData(5);
      // The first step creates the optimizer slots; from then on the count must stay put.
      const first = await pruner.run({ data: (step) => data.batch(step), untilStep: 1 });
      const before = tf.memory().numTensors;
      const last = await pruner.run({ data: (step) => data.batch(step), untilStep: 201 });
      expect(tf.memory().numTensors).toBe(before);
      expect(last!.step).toBe(201);
      expect(last!.loss).toBeLessThan(first!.loss);
      for (const parameter of prunable.parameters()) {
        const mask = await values(parameter.mask);
        const kept = mask.filter((value) => value === 1).length;
        expect(kept).toBe(Math.round(0.5 * parameter.size));
      }
      pruner.dispose();
      release(prunable);
      data.dispose();
    });

    it('routes the straight-through gradient to learned scores through the patched layers', async () => {
      const prunable = fromLayersModel(mlp(62), { loss: 'sparseCategoricalCrossentropy' });
      const pruner = new Pruner({
        model: prunable,
        scores: testLearned(),
        mask: testTopK(),
        schedule: testConstant(0.5),
        optimizers: { weights: sgd({ learningRate: 0.1 }), scores: sgd({ learningRate: 0.1 }) },
      });
      const data = fixedData(6);
      const scores = pruner.pruned()[0]!.scores;
      const before = await values(scores!);
      await pruner.run({ data: (step) => data.batch(step), untilStep: 3 });
      const after = await values(scores!);
      expect(after).not.toEqual(before);
      pruner.dispose();
      release(prunable);
      data.dispose();
    });
  });
}

describe('pruning Conv2D and Embedding models on cpu (wasm lacks their gradient kernels)', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('trains and prunes, leaving masked weights untouched by SGD', async () => {
    const input = tfl.input({ shape: [4, 4, 1] });
    const conv = tfl.layers
      .conv2d({
        name: 'c',
        filters: 2,
        kernelSize: 2,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      })
      .apply(input) as tfl.SymbolicTensor;
    const depthwise = tfl.layers
      .depthwiseConv2d({
        name: 'd',
        kernelSize: 2,
        depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      })
      .apply(conv) as tfl.SymbolicTensor;
    const output = tfl.layers
      .dense({ name: 'o', units: 3, kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) })
      .apply(tfl.layers.flatten().apply(depthwise)) as tfl.SymbolicTensor;
    const convModel = tfl.model({ inputs: input, outputs: output });
    const embeddingModel = tfl.sequential({
      layers: [
        tfl.layers.embedding({
          name: 'e',
          inputDim: 10,
          outputDim: 3,
          inputLength: 4,
          embeddingsInitializer: tfl.initializers.randomNormal({ seed: 4 }),
        }),
        tfl.layers.flatten(),
        tfl.layers.dense({
          name: 'h',
          units: 3,
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 5 }),
        }),
      ],
    });
    const cases = [
      { model: convModel, x: () => tf.randomNormal([6, 4, 4, 1], 0, 1, 'float32', 7) },
      {
        model: embeddingModel,
        x: () =>
          tf.tensor2d(
            [
              [1, 2, 3, 4],
              [5, 6, 7, 8],
              [9, 0, 1, 2],
              [3, 3, 3, 3],
              [4, 5, 6, 7],
              [8, 9, 0, 1],
            ],
            [6, 4],
            'int32',
          ),
      },
    ];
    for (const { model, x } of cases) {
      const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
      const pruner = new Pruner({
        model: prunable,
        scores: testMagnitude(),
        mask: testTopK(),
        schedule: testConstant(0.5),
        maskUpdateInterval: 1000,
        optimizers: { weights: sgd({ learningRate: 0.1 }) },
      });
      const labels = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
      const batch = () => ({ x: x(), y: labels.clone() });
      await pruner.run({ data: batch, untilStep: 1 });
      const masked = await Promise.all(
        prunable
          .parameters()
          .map(async (parameter) => [await values(parameter.mask), await values(parameter.weight)]),
      );
      const before = tf.memory().numTensors;
      const result = await pruner.run({ data: batch, untilStep: 6 });
      expect(tf.memory().numTensors).toBe(before);
      expect(Number.isFinite(result!.loss)).toBe(true);
      for (const [index, parameter] of prunable.parameters().entries()) {
        const [mask, weightBefore] = masked[index]!;
        const weightAfter = await values(parameter.weight);
        let moved = 0;
        for (let entry = 0; entry < mask!.length; entry += 1) {
          if (mask![entry] === 0) expect(weightAfter[entry]).toBe(weightBefore![entry]);
          else if (weightAfter[entry] !== weightBefore![entry]) moved += 1;
        }
        expect(moved, parameter.name).toBeGreaterThan(0);
      }
      labels.dispose();
      pruner.dispose();
      release(prunable);
    }
  });
});

describe('a pruned Dense layer on wasm goes through maskedDense', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  it('trains learned scores through the sparse route exactly as through the composed W ⊙ M (1e-5)', async () => {
    // Two copies of one model: the default wrapper (Dense → maskedDense, sparse at ≤ 30% kept) and
    // one with fastDense off (the layer's own call on the effective weight W ⊙ M). Both at 80%
    // sparsity from the second step, learned scores, the same batches. (A weight whose mask was too
    // dense at step 0 skips the sparse route for its next 8 calls.)
    const run = async (fastDense: boolean) => {
      const prunable = fromLayersModel(mlp(71), { loss: 'sparseCategoricalCrossentropy', fastDense });
      const pruner = new Pruner({
        model: prunable,
        scores: testLearned(),
        mask: testTopK(),
        schedule: testRamp(1, 0.8),
        optimizers: { weights: sgd({ learningRate: 0.05 }), scores: sgd({ learningRate: 0.05 }) },
      });
      const data = fixedData(9);
      const losses: number[] = [];
      await pruner.run({
        data: (step) => data.batch(step),
        untilStep: 12,
        onStep: (result) => {
          losses.push(result.loss);
        },
      });
      const weights = await Promise.all(prunable.parameters().map((parameter) => values(parameter.weight)));
      const profile = await tf.profile(async () => {
        await pruner.trainStep(data.batch(12));
      });
      pruner.dispose();
      data.dispose();
      release(prunable);
      return { losses, weights, kernels: profile.kernels.map((kernel) => kernel.name) };
    };
    const fast = await run(true);
    const composed = await run(false);
    expect(fast.kernels).toContain('FinepruneMaskedSparseProduct');
    expect(composed.kernels).not.toContain('FinepruneMaskedSparseProduct');
    // the layers' ReLU is folded into the product (the composed path runs TF.js's Relu kernel)
    expect(fast.kernels).not.toContain('Relu');
    expect(composed.kernels).toContain('Relu');
    for (const [index, loss] of fast.losses.entries())
      expect(Math.abs(loss - composed.losses[index]!)).toBeLessThan(1e-5);
    for (const [index, weight] of fast.weights.entries()) {
      const other = composed.weights[index]!;
      for (let k = 0; k < weight.length; k += 1) expect(Math.abs(weight[k]! - other[k]!)).toBeLessThan(1e-5);
    }
  });
});
