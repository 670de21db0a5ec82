import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { rejection, resealed } from '../../test/compact-support';
import { prunedMlp, relativeDifference, seededInput, setPrunedWeights } from '../../test/mlp';
import { clearSparseDenseChoices } from '../inference/break-even';
import { compactBytesOfModel } from '../format/layers-artifacts';
import { loadSparseLayersModel } from './sparse-layers-model';

/** Flatten → Dense relu → Dropout → Dense hard_sigmoid → Activation gelu_new → Reshape → Flatten → Dense softmax. */
function mixedModel(): tfl.Sequential {
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [4, 49] }),
      tfl.layers.dense({ units: 64, activation: 'relu' }),
      tfl.layers.dropout({ rate: 0.5 }),
      tfl.layers.dense({ units: 32, activation: 'hardSigmoid' }),
      tfl.layers.activation({ activation: 'gelu_new' }),
      tfl.layers.reshape({ targetShape: [4, 8] }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 10, activation: 'softmax', useBias: false }),
    ],
  });
  setPrunedWeights(model, 0.1, 11);
  return model;
}

/** The same chain as a functional model with swish, elu and tanh. */
function functionalChain(): tfl.LayersModel {
  const input = tfl.input({ shape: [30] });
  const hidden = tfl.layers.dense({ units: 20, activation: 'swish' }).apply(input) as tfl.SymbolicTensor;
  const second = tfl.layers.dense({ units: 12, activation: 'elu' }).apply(hidden) as tfl.SymbolicTensor;
  const output = tfl.layers.dense({ units: 5, activation: 'tanh' }).apply(second) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: output });
  setPrunedWeights(model, 0.3, 21);
  return model;
}

afterAll(() => clearSparseDenseChoices());

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`a compact export run with sparse Dense kernels on ${backend}`, () => {
    // Outputs: |y_sparse − y_stock| ≤ 1e-6 of the row's largest |y_stock| (the same float32 products
    // summed in another order; a dropped or doubled product moves an output far more).
    const cases: Array<[string, () => tfl.LayersModel, number[], number[]]> = [
      ['the 784-300-100-10 MLP at 10% kept', () => prunedMlp(0.1), [784], [1, 16]],
      [
        'a chain of Flatten, Dropout, Activation, Reshape and six activations',
        mixedModel,
        [4, 49],
        [1, 3, 16],
      ],
      ['a functional chain', functionalChain, [30], [1, 8]],
    ];
    for (const [label, build, inputShape, batches] of cases) {
      it(`matches the stock model: ${label}, every mode`, async () => {
        await setBackend(backend);
        const before = tf.memory().numTensors;
        const model = build();
        const bytes = await compactBytesOfModel(model, { allowLarger: true });
        for (const mode of ['auto', 'sparse', 'dense'] as const) {
          const sparse = await loadSparseLayersModel(bytes, { mode });
          for (const batch of batches) {
            const x = seededInput(batch, inputShape, batch);
            const [expected, actual] = [model.predict(x) as tf.Tensor, sparse.predict(x)];
            expect(actual.shape).toEqual(expected.shape);
            expect(relativeDifference(actual, expected), `${mode} batch ${batch}`).toBeLessThanOrEqual(1e-6);
            tf.dispose([x, expected, actual]);
          }
          if (mode === 'sparse')
            for (const layer of sparse.denseLayers())
              expect(layer.choices.every((choice) => choice.path === 'sparse')).toBe(true);
          sparse.dispose();
        }
        model.dispose();
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  });
}

describe('what the sparse executor refuses', () => {
  it('a layer it does not run, pointing at the stock loader', async () => {
    await setBackend('cpu');
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ units: 4, inputShape: [3] }), tfl.layers.batchNormalization()],
    });
    const error = await rejection(
      loadSparseLayersModel(await compactBytesOfModel(model, { allowLarger: true })),
    );
    expect(error.code).toBe('UNSUPPORTED_LAYER');
    expect(error.message).toContain('"BatchNormalization"');
    expect(error.fix).toContain('compactLayersHandler');
    model.dispose();
  });

  it('a functional model with branches', async () => {
    const input = tfl.input({ shape: [6] });
    const left = tfl.layers.dense({ units: 4 }).apply(input) as tfl.SymbolicTensor;
    const right = tfl.layers.dense({ units: 4 }).apply(input) as tfl.SymbolicTensor;
    const model = tfl.model({
      inputs: input,
      outputs: tfl.layers.add().apply([left, right]) as tfl.SymbolicTensor,
    });
    expect(
      (await rejection(loadSparseLayersModel(await compactBytesOfModel(model, { allowLarger: true })))).code,
    ).toBe('UNSUPPORTED_MODEL');
    model.dispose();
  });

  it('an activation it does not know', async () => {
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ units: 4, inputShape: [3], activation: 'linear' })],
    });
    const bytes = await compactBytesOfModel(model, { allowLarger: true });
    const text = new TextDecoder().decode(bytes);
    // Edit the topology (and its content hashes) as a hand-written file would.
    const edited = await resealed(bytes, (header) => {
      const layer = ((header.model as any).artifacts.modelTopology.config.layers as any[])[0];
      layer.config.activation = 'cube';
    });
    expect(text).toContain('"activation":"linear"');
    const error = await rejection(loadSparseLayersModel(edited));
    expect(error.code).toBe('UNSUPPORTED_LAYER');
    expect(error.message).toContain('"cube"');
    model.dispose();
  });
});
