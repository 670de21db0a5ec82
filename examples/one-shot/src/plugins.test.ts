import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { linearModel, randomCriterion } from '@fineprune/criteria';
import { pruneOnce } from '@fineprune/core';
import { fromLayersModel, pruneLayersModel, strip } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { magnitude } from '@fineprune/scores';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * Dense 2 → 3 → 1 without biases (so the report skips nothing), with hand-picked kernels
 * [[0.5, −3, 1], [2, −0.1, 4]] and [[−6], [5], [1.5]].
 */
function handModel(): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ name: 'fc1', units: 3, useBias: false, inputShape: [2] }),
      tfl.layers.dense({ name: 'fc2', units: 1, useBias: false }),
    ],
  });
  model.setWeights([
    tf.tensor2d([
      [0.5, -3, 1],
      [2, -0.1, 4],
    ]),
    tf.tensor2d([[-6], [5], [1.5]]),
  ]);
  return model;
}

async function kernels(model: tfl.LayersModel): Promise<number[][][]> {
  return Promise.all(model.layers.map(async (layer) => (await layer.getWeights()[0]!.array()) as number[][]));
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`one-shot pruning with the real plugins on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('magnitude + local topV keeps the largest |W| of each kernel (hand-checked)', async () => {
      const model = handModel();
      const before = tf.memory().numTensors;
      const { model: pruned, report } = await pruneLayersModel(model, {
        scores: magnitude(),
        mask: topV({ scope: 'local' }),
        sparsity: 0.5,
      });
      // fc1 |W| 0.5 3 1 / 2 0.1 4 keeps 6 − round(3) = 3: −3, 2, 4. fc2 |W| 6 5 1.5 keeps 3 − round(1.5) = 1: −6.
      expect(await kernels(pruned)).toEqual([
        [
          [0, -3, 0],
          [2, 0, 4],
        ],
        [[-6], [0], [0]],
      ]);
      expect(report.parameters.map((row) => row.kept)).toEqual([3, 1]);
      expect(report.skipped).toEqual([]);
      pruned.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });

    it('magnitude + global topV ranks both kernels together (hand-checked), and strip() gives the same model', async () => {
      const model = handModel();
      const prunable = fromLayersModel(model);
      const report = await pruneOnce(prunable, {
        scores: magnitude(),
        mask: topV({ scope: 'global' }),
        sparsity: 0.5,
      });
      // All |W| 0.5 3 1 2 0.1 4 6 5 1.5 keep 9 − round(4.5) = 4: −6, 5, 4, −3.
      expect(report.parameters.map((row) => row.kept)).toEqual([2, 2]);
      const plain = await strip(prunable);
      expect(await kernels(plain)).toEqual([
        [
          [0, -3, 0],
          [0, 0, 4],
        ],
        [[-6], [5], [0]],
      ]);
      // Both the wrapped and the stripped model compute with W ⊙ M: for x = [1, 1], hidden = [0, −3, 4]
      // and output = 0·(−6) + (−3)·5 + 4·0 = −15.
      const x = tf.tensor2d([[1, 1]]);
      const [wrapped, stripped] = [prunable.model.predict(x) as tf.Tensor, plain.predict(x) as tf.Tensor];
      expect(Array.from(await wrapped.data())).toEqual([-15]);
      expect(Array.from(await stripped.data())).toEqual([-15]);
      tf.dispose([x, wrapped, stripped]);
      plain.dispose();
      prunable.unwrap();
      model.dispose();
    });

    it('a data-driven criterion (LM, |g·θ|) measures on the batches given, with the model loss (hand-checked)', async () => {
      const model = tfl.sequential({
        layers: [tfl.layers.dense({ name: 'linear', units: 1, useBias: false, inputShape: [3] })],
      });
      model.setWeights([tf.tensor2d([[1], [-2], [0.25]])]);
      const before = tf.memory().numTensors;
      const scoring = [{ x: tf.tensor2d([[2, 0, 4]]), y: tf.tensor2d([[0]]) }];
      const { model: pruned, report } = await pruneLayersModel(model, {
        scores: linearModel(),
        mask: topV(),
        sparsity: 1 / 3,
        loss: 'meanSquaredError',
        data: scoring,
      });
      // ŷ = x·W = 2 + 0 + 1 = 3; L = ŷ², g = 2ŷx = [12, 0, 24]; |g ⊙ θ| = [12, 0, 6] (Eq. 6 of Revisiting
      // Loss Modelling): keep 3 − round(1) = 2 → entries 0 and 2 (magnitude would keep 0 and 1).
      expect(await kernels(pruned)).toEqual([[[1], [0], [0.25]]]);
      expect(report.kept).toBe(2);
      pruned.dispose();
      expect(tf.memory().numTensors).toBe(before); // the scoring batch and the measurements are freed
      model.dispose();
    });

    it('random scores need no data and keep the exact count', async () => {
      const model = handModel();
      const { model: pruned, report } = await pruneLayersModel(model, {
        scores: randomCriterion({ seed: 4 }),
        mask: topV({ scope: 'global' }),
        sparsity: 2 / 3,
      });
      expect(report.kept).toBe(3);
      const nonZero = (await kernels(pruned)).flat(2).filter((value) => value !== 0).length;
      expect(nonZero).toBe(3);
      pruned.dispose();
      model.dispose();
    });
  });
}
