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

describe('the encoder in int8, projection by projection', () => {
  it('moves each output o of each projection by at most Σ over stored k of |x_k| · s_o / 2', async () => {
    await setBackend('cpu');
    const model = prunedBert();
    const [float32, int8] = [
      await readCompactModel(await compactBertBytes(model)),
      await readCompactModel(await compactBertBytes(model, { values: 'int8' })),
    ];
    model.dispose();
    const projections = float32.tensors.filter(
      (tensor) => tensor.isMatrix && tensor.entry.layout === 'delta',
    );
    expect(projections).toHaveLength(12);
    for (const tensor of projections) {
      // Hugging Face's [out, in]: output channel o is row o. float32 decodes the masked weights exactly.
      const [outputs, inputs] = tensor.shape as [number, number];
      const weights = tensor.dense();
      const quantized = int8.tensor(tensor.name).dense();
      const x = Float32Array.from({ length: inputs }, (_, k) => Math.sin(7 * k + outputs) * 3);
      for (let output = 0; output < outputs; output += 1) {
        const row = weights.subarray(output * inputs, (output + 1) * inputs);
        const step = Math.fround(row.reduce((largest, value) => Math.max(largest, Math.abs(value)), 0) / 127);
        let change = 0;
        let bound = 0;
        for (let input = 0; input < inputs; input += 1) {
          const [w, q] = [row[input]!, quantized[output * inputs + input]!];
          if (w === 0) {
            expect(q, `${tensor.name} [${output}, ${input}] stays 0`).toBe(0);
            continue;
          }
          change += x[input]! * (q - w);
          bound += (Math.abs(x[input]!) * step) / 2;
        }
        expect(Math.abs(change), `${tensor.name} output ${output}`).toBeLessThanOrEqual(bound * (1 + 1e-6));
      }
    }
  });
});
