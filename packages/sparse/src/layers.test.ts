import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection, resealed } from '../test/compact-support';
import { expectSamePredictions, prunedMlp } from '../test/mlp';
import { compactBytesOfModel } from './format/layers-artifacts';
import { loadDenseLayersModel } from './layers';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('loadDenseLayersModel (@fineprune/sparse/layers)', () => {
  it('gives a stock tf.LayersModel that predicts what the pruned model predicts', async () => {
    const before = tf.memory().numTensors;
    const model = prunedMlp(0.1, [100, 30, 10]);
    const loaded = await loadDenseLayersModel(await compactBytesOfModel(model), { source: 'mlp.fpsparse' });
    expectSamePredictions(model, loaded, 3, [100]);
    model.dispose();
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("turns TF.js's errors on weights that do not fit the topology into a typed error", async () => {
    const model = prunedMlp(0.1, [100, 30, 10]);
    // A bias reshaped [30] → [15, 2]: the same bytes, a consistent header, a topology it does not fit.
    const edited = await resealed(await compactBytesOfModel(model), (header) => {
      header.tensors[1]!.shape = [15, 2];
    });
    const error = await rejection(loadDenseLayersModel(edited, { source: 'mlp.fpsparse' }));
    expect(error.code).toBe('CHECKPOINT_MISMATCH');
    expect(error.message).toContain('mlp.fpsparse: TF.js cannot build the model');
    model.dispose();
  });
});
