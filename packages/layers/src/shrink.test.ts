import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ErrorCodes, pruneOnce } from '@fineprune/core';
import { testUnitMagnitude, testUnitTopK } from '@fineprune/core/testing';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromLayersModel, type LayersPrunableModel } from './from-layers-model';
import { shrink } from './shrink';
import {
  convChain,
  depthwiseBlock,
  maskUnits,
  randomiseWeights,
  residualBlock,
  structureNamed,
} from './structure-models';
import { BACKENDS, expectClose, expectNoLeak, mlp, release } from './test-support';

/** Outputs of the masked model and of its shrunk copy agree within this (float32 sums reordered). */
const TOLERANCE = 1e-5;

/** Shrinks, checks the outputs against the masked model on `x`, and returns the shrunk model's units per layer. */
async function shrinkAndCompare(prunable: LayersPrunableModel, x: tf.Tensor): Promise<tfl.LayersModel> {
  const { model } = await shrink(prunable);
  const expected = prunable.model.predict(x) as tf.Tensor;
  const actual = model.predict(x) as tf.Tensor;
  await expectClose(actual, expected, TOLERANCE);
  tf.dispose([expected, actual]);
  return model;
}

function shapes(model: tfl.LayersModel): Record<string, number[]> {
  return Object.fromEntries(
    model.weights.map((weight) => [weight.originalName, [...weight.shape] as number[]]),
  );
}

for (const backend of BACKENDS) {
  describe(`shrink on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('removes Dense neurons, folding relu(b)·W of neurons that still emit their bias into the next bias', async () => {
      const prunable = fromLayersModel(mlp(3)); // fc1 has bias 1: a neuron with a zero column emits relu(1) = 1
      const fc1 = structureNamed(prunable, 'fc1/neurons');
      const fc2 = structureNamed(prunable, 'fc2/neurons');
      maskUnits(prunable, fc1, [0, 1, 2, 3]); // whole units: column and next rows
      maskUnits(prunable, fc1, [5, 6], ['fc1/kernel']); // column only: constant 1 into fc2, folded
      maskUnits(prunable, fc1, [7], ['fc2/kernel']); // rows only: nothing reads it
      maskUnits(prunable, fc2, [0, 1], ['fc2/kernel']); // tanh(0) = 0: removed, nothing to fold
      // Half a column of neuron 8 (rows 0–3): it still computes something, so it stays.
      const half = prunable.parameter('fc1/kernel').mask;
      const halfMask = Float32Array.from({ length: 8 * 16 }, (_, index) =>
        index % 16 === 8 && index < 4 * 16 ? 0 : 1,
      );
      tf.tidy(() => half.assign(tf.mul(half, tf.tensor2d(halfMask, [8, 16]))));
      const x = tf.randomNormal([6, 8], 0, 1, 'float32', 4);
      const { model, structures } = await shrink(prunable);
      expect(structures).toEqual([
        { name: 'fc1/neurons', kind: 'neuron', count: 16, kept: 9 },
        { name: 'fc2/neurons', kind: 'neuron', count: 12, kept: 10 },
      ]);
      expect(shapes(model)).toEqual({
        'fc1/kernel': [8, 9],
        'fc1/bias': [9],
        'fc2/kernel': [9, 10],
        'fc2/bias': [10],
        'out/kernel': [10, 3],
        'out/bias': [3],
      });
      const expected = prunable.model.predict(x) as tf.Tensor;
      const actual = model.predict(x) as tf.Tensor;
      await expectClose(actual, expected, TOLERANCE);
      tf.dispose([x, expected, actual]);
      model.dispose();
      release(prunable);
    });

    it('cuts Conv2D → BatchNorm → Conv2D chains, BN entries included, and Flatten → Dense rows', async () => {
      const source = convChain();
      randomiseWeights(source, 20);
      const prunable = fromLayersModel(source);
      const conv1 = structureNamed(prunable, 'conv1/filters');
      const conv2 = structureNamed(prunable, 'conv2/filters');
      maskUnits(prunable, conv1, [0, 1]);
      // A filter with a zero kernel emits relu(bn(b)) everywhere; conv2 (valid padding) sums its whole
      // kernel, so it folds. Pick one whose constant is not 0 (γ (b − μ) / √(σ² + ε) + β > 0, ε = 1e-3).
      const [bias, gamma, beta, mean, variance] = await Promise.all(
        [...source.getLayer('conv1').getWeights().slice(1), ...source.getLayer('bn1').getWeights()].map((w) =>
          w.data(),
        ),
      );
      const emits = (unit: number) =>
        (gamma![unit]! * (bias![unit]! - mean![unit]!)) / Math.sqrt(variance![unit]! + 1e-3) + beta![unit]!;
      const constant = [2, 3, 4, 5].find((unit) => emits(unit) > 0.1)!;
      expect(constant).toBeDefined();
      maskUnits(prunable, conv1, [constant], ['conv1/kernel']);
      maskUnits(prunable, conv2, [1]);
      maskUnits(prunable, conv2, [3], ['fc/kernel']); // all 16 positions of filter 3 unread
      const x = tf.randomNormal([3, 6, 6, 2], 0, 1, 'float32', 5);
      const model = await shrinkAndCompare(prunable, x);
      expect(shapes(model)).toMatchObject({
        'conv1/kernel': [3, 3, 2, 3],
        'conv1/bias': [3],
        'bn1/gamma': [3],
        'bn1/beta': [3],
        'bn1/moving_mean': [3],
        'bn1/moving_variance': [3],
        'conv2/kernel': [3, 3, 3, 3],
        'bn2/moving_variance': [3],
        'fc/kernel': [48, 7],
      });
      tf.dispose(x);
      model.dispose();
      release(prunable);
    });

    it('removes channels through a depthwise block; keeps one whose constant meets zero padding', async () => {
      const source = depthwiseBlock();
      randomiseWeights(source, 40);
      const prunable = fromLayersModel(source);
      const channels = structureNamed(prunable, 'conv_in/filters');
      maskUnits(prunable, channels, [0, 1]);
      // A zero depthwise slice emits its bias: through BN and relu into a 1×1 convolution, folded.
      maskUnits(prunable, channels, [2], ['depthwise/depthwiseKernel']);
      // A zero conv_in column emits relu(b) into a 3×3 'same' depthwise: the borders differ, so it stays.
      const bias = await prunable.model.getLayer('conv_in').getWeights()[1]!.data();
      const positive = [3, 4, 5].find((unit) => bias[unit]! > 0)!;
      expect(positive).toBeDefined();
      maskUnits(prunable, channels, [positive], ['conv_in/kernel']);
      const x = tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 6);
      const model = await shrinkAndCompare(prunable, x);
      expect(shapes(model)).toMatchObject({
        'conv_in/kernel': [1, 1, 3, 3],
        'depthwise/depthwise_kernel': [3, 3, 3, 1],
        'depthwise/bias': [3],
        'bn/gamma': [3],
        'conv_out/kernel': [1, 1, 3, 4],
      });
      tf.dispose(x);
      model.dispose();
      release(prunable);
    });

    it('removes a residual channel only where every branch agrees', async () => {
      const source = residualBlock();
      randomiseWeights(source, 60);
      const prunable = fromLayersModel(source);
      const channels = structureNamed(prunable, 'stem/channels');
      maskUnits(prunable, channels, [0]); // every member: removed
      maskUnits(prunable, channels, [1], ['stem/kernel']); // the stem branch only: conv_b's branch still adds to it
      // Both branches emit constants, but conv_b reads the stem's relu(b) > 0 with zero padding
      // (3×3 same), where a fold into its bias would be wrong at the borders: it stays.
      const bias = await prunable.model.getLayer('stem').getWeights()[1]!.data();
      const positive = [2, 3].find((unit) => bias[unit]! > 0)!;
      const other = 5 - positive;
      expect(positive).toBeDefined();
      maskUnits(prunable, channels, [positive], ['stem/kernel', 'conv_b/kernel@output']);
      // Both branches emit their biases and conv_b does not read it: the sum reaches conv_c (1×1), folded.
      maskUnits(prunable, channels, [other], ['stem/kernel', 'conv_b/kernel']);
      const x = tf.randomNormal([2, 5, 5, 2], 0, 1, 'float32', 7);
      const { structures } = await shrink(prunable).then((result) => {
        result.model.dispose();
        return result;
      });
      expect(structures[0]).toEqual({ name: 'stem/channels', kind: 'channel', count: 4, kept: 2 });
      const model = await shrinkAndCompare(prunable, x);
      expect(shapes(model)).toMatchObject({
        'stem/kernel': [3, 3, 2, 2],
        'conv_b/kernel': [3, 3, 2, 2],
        'conv_c/kernel': [1, 1, 2, 3],
      });
      tf.dispose(x);
      model.dispose();
      release(prunable);
    });

    it('saves and loads through tf.io, smaller than the dense model, and leaks no tensor', async () => {
      const source = convChain();
      randomiseWeights(source, 80);
      const prunable = fromLayersModel(source);
      maskUnits(prunable, structureNamed(prunable, 'conv1/filters'), [0, 2, 4]);
      maskUnits(prunable, structureNamed(prunable, 'fc/neurons'), [1, 2, 3]);
      const x = tf.randomNormal([2, 6, 6, 2], 0, 1, 'float32', 8);
      let saved: tf.io.ModelArtifacts | undefined;
      await expectNoLeak(async () => {
        const { model } = await shrink(prunable);
        await model.save(
          tf.io.withSaveHandler(async (artifacts) => {
            saved = artifacts;
            return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
          }),
        );
        model.dispose();
      });
      const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
      const denseBytes = prunable.model.weights.reduce(
        (total, weight) => total + 4 * weight.shape.reduce((a, b) => a! * b!, 1)!,
        0,
      );
      expect(saved!.weightData).toBeDefined();
      const bytes = (saved!.weightData as ArrayBuffer).byteLength;
      // conv1: 6 → 3 filters (halves conv1, bn1 and conv2's input), fc: 7 → 4 neurons.
      expect(bytes).toBeLessThan(denseBytes * 0.65);
      const expected = prunable.model.predict(x) as tf.Tensor;
      const actual = loaded.predict(x) as tf.Tensor;
      await expectClose(actual, expected, TOLERANCE);
      tf.dispose([x, expected, actual]);
      loaded.dispose();
      release(prunable);
    });

    it('shrinks what a unit mask of the core pruned through structures(), every structure by half', async () => {
      const source = residualBlock();
      randomiseWeights(source, 90);
      const prunable = fromLayersModel(source);
      await pruneOnce(prunable, { scores: testUnitMagnitude, mask: testUnitTopK, sparsity: 0.5 });
      const x = tf.randomNormal([2, 5, 5, 2], 0, 1, 'float32', 9);
      const { model, structures } = await shrink(prunable);
      // A unit mask zeroes every member of a removed unit, so each structure keeps exactly half (or more
      // where a removed unit's constant could not be folded, which cannot happen here: nothing reads it).
      expect(structures).toEqual([
        { name: 'stem/channels', kind: 'channel', count: 4, kept: 2 },
        { name: 'conv_c/filters', kind: 'filter', count: 3, kept: 1 },
      ]);
      const expected = prunable.model.predict(x) as tf.Tensor;
      const actual = model.predict(x) as tf.Tensor;
      await expectClose(actual, expected, TOLERANCE);
      tf.dispose([x, expected, actual]);
      model.dispose();
      release(prunable);
    });

    it('refuses an unwrapped model', async () => {
      const prunable = fromLayersModel(mlp(4));
      const model = prunable.unwrap();
      await expect(shrink(prunable)).rejects.toMatchObject({ code: ErrorCodes.DISPOSED });
      model.dispose();
    });
  });
}
