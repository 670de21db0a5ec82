import { readCompactModel } from '@fineprune/sparse';
import { setBackend } from '@fineprune/tensor';
import { bertBaseUncasedConfig, createBertModel, type EncoderConfig } from '@fineprune/transformers';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { compactBertBytes, loadDenseBert, loadSparseBert } from './encoder-compact';

const config: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 200,
  hiddenSize: 32,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 64,
  maxPositions: 16,
};
const task = { type: 'classification', numLabels: 3 } as const;

/** A seeded model with each projection pruned to 3% by magnitude (through its mask). */
function prunedBert() {
  const model = createBertModel({ config, task, seed: 9 });
  for (const parameter of model.parameters()) {
    const mask = tf.tidy(() => {
      const magnitudes = tf.abs(parameter.weight);
      const kept = Math.round(0.03 * parameter.weight.size);
      const threshold = tf.min(tf.topk(tf.reshape(magnitudes, [-1]), kept).values);
      return tf.cast(tf.greaterEqual(magnitudes, threshold), 'float32');
    });
    parameter.mask.assign(mask);
    mask.dispose();
  }
  return model;
}

function inputs() {
  return {
    inputIds: tf.tensor2d(
      [
        [101, 7, 19, 44, 102, 0, 0, 0],
        [101, 150, 3, 102, 0, 0, 0, 0],
      ],
      undefined,
      'int32',
    ),
    attentionMask: tf.tensor2d(
      [
        [1, 1, 1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
      ],
      undefined,
      'int32',
    ),
  };
}

/** Max |a − b| over the largest |b|. */
function relative(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]! / tf.max(tf.abs(b)).dataSync()[0]!);
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`the encoder through the compact export on ${backend}`, () => {
    it('float32: the densified model and the sparse projections give the masked model’s logits', async () => {
      await setBackend(backend);
      const before = tf.memory().numTensors;
      const model = prunedBert();
      const compact = await readCompactModel(await compactBertBytes(model));
      // Every projection is stored sparse, its channels first ([out, in], Hugging Face's layout).
      const projections = compact.tensors.filter(
        (tensor) =>
          /encoder\.layer\.\d+\..*weight$/.test(tensor.name) &&
          tensor.isMatrix &&
          !tensor.name.includes('LayerNorm'),
      );
      expect(projections).toHaveLength(12);
      for (const tensor of projections) {
        expect(tensor.entry.channelAxis).toBe(0);
        expect(tensor.entry.layout).toBe('delta');
      }
      const x = inputs();
      const expected = model.forward(x, { training: false }) as tf.Tensor;
      const dense = loadDenseBert(compact, task);
      const fromDense = dense.forward(x, { training: false }) as tf.Tensor;
      expect(fromDense.dataSync()).toEqual(expected.dataSync());
      for (const mode of ['sparse', 'auto'] as const) {
        const sparse = loadSparseBert(compact, task, { mode });
        const fromSparse = sparse.model.forward(x, { training: false }) as tf.Tensor;
        // The same float32 products summed in another order, through two layers: ≤ 1e-6 relative.
        expect(relative(fromSparse, expected)).toBeLessThanOrEqual(1e-6);
        tf.dispose(fromSparse);
        sparse.dispose();
      }
      tf.dispose([expected, fromDense, x.inputIds, x.attentionMask]);
      model.dispose();
      dense.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}

describe('the encoder in int8', () => {
  it('stays close to float32 and is smaller', async () => {
    await setBackend('cpu');
    const model = prunedBert();
    const [float32, int8] = [
      await compactBertBytes(model),
      await compactBertBytes(model, { values: 'int8' }),
    ];
    expect(int8.length).toBeLessThan(float32.length);
    const x = inputs();
    const expected = model.forward(x, { training: false }) as tf.Tensor;
    const quantized = loadSparseBert(await readCompactModel(int8), task, { mode: 'sparse' });
    const logits = quantized.model.forward(x, { training: false }) as tf.Tensor;
    expect(relative(logits, expected)).toBeLessThan(0.05);
    tf.dispose([expected, logits, x.inputIds, x.attentionMask]);
    quantized.dispose();
    model.dispose();
  });
});
