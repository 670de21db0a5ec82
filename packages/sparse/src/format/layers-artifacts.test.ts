import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection } from '../../test/compact-support';
import { expectSamePredictions, prunedMlp, seededInput } from '../../test/mlp';
import {
  compactBytesOfModel,
  compactLayersHandler,
  denseArtifactsOfCompact,
  encodeCompactArtifacts,
  modelArtifacts,
  planCompactArtifacts,
} from './layers-artifacts';
import { encodeCompactModel } from './encode';
import { readCompactModel } from './read';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('a TF.js layers model through the compact export', () => {
  it('loads back with stock tf.loadLayersModel: float32 weights bit for bit, the same predictions', async () => {
    const before = tf.memory().numTensors;
    const model = prunedMlp(0.1);
    const bytes = await compactBytesOfModel(model, { values: 'float32' });
    const loaded = await tfl.loadLayersModel(compactLayersHandler(bytes, { source: 'mlp.fpsparse' }));
    expect(loaded.layers.map((layer) => layer.getClassName())).toEqual(['Dense', 'Dense', 'Dense']);
    const [original, again] = [model.getWeights(), loaded.getWeights()];
    for (let index = 0; index < original.length; index += 1)
      expect(again[index]!.dataSync()).toEqual(original[index]!.dataSync());
    expectSamePredictions(model, loaded, 16, [784]);
    model.dispose();
    loaded.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is at least 15× smaller than dense float32 in int8 at 10% kept (784-300-100-10)', async () => {
    const model = prunedMlp(0.1);
    const artifacts = await modelArtifacts(model);
    model.dispose();
    const dense = artifacts.weightData as ArrayBuffer;
    expect(dense.byteLength).toBe(4 * (784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10)); // 1,066,440
    const sizes = Object.fromEntries(
      await Promise.all(
        (['float32', 'float16', 'int8'] as const).map(async (values) => [
          values,
          (await encodeCompactArtifacts(artifacts, { values })).length,
        ]),
      ),
    );
    // Per kept weight (26,620 of them): int8 1 byte + a one-byte gap; plus 410 int8 scales and the biases.
    expect(dense.byteLength / sizes.int8!).toBeGreaterThanOrEqual(15);
    expect(dense.byteLength / sizes.float16!).toBeGreaterThanOrEqual(10);
    expect(dense.byteLength / sizes.float32!).toBeGreaterThanOrEqual(6.5);
    const plan = planCompactArtifacts(artifacts, { values: 'int8' });
    expect(plan.tensors.map((tensor) => tensor.entry.layout)).toEqual([
      'delta',
      'vector',
      'delta',
      'vector',
      'delta',
      'vector',
    ]);
  });

  it('int8: each output of every layer moves by at most Σ over stored k of |x_k| · s_o / 2 on that layer’s inputs', async () => {
    const model = prunedMlp(0.1);
    const compact = await readCompactModel(await compactBytesOfModel(model, { values: 'int8' }));
    // Each layer's inputs: the float32 model's activations of the layer before, 4 seeded rows.
    let activations = seededInput(4, [784], 3);
    for (const layer of model.layers) {
      const [kernelWeight] = layer.weights;
      const [inputs, units] = kernelWeight!.shape as [number, number];
      const kernel = kernelWeight!.read().dataSync() as Float32Array;
      const quantized = compact.tensor(kernelWeight!.originalName).dense();
      const x = activations.dataSync();
      for (let output = 0; output < units; output += 1) {
        let largest = 0;
        for (let input = 0; input < inputs; input += 1)
          largest = Math.max(largest, Math.abs(kernel[input * units + output]!));
        const step = Math.fround(largest / 127);
        for (let row = 0; row < 4; row += 1) {
          let change = 0;
          let bound = 0;
          for (let input = 0; input < inputs; input += 1) {
            const index = input * units + output;
            // Pruned weights stay exactly 0, so only the stored ones count towards the bound.
            if (kernel[index] === 0) continue;
            change += x[row * inputs + input]! * (quantized[index]! - kernel[index]!);
            bound += (Math.abs(x[row * inputs + input]!) * step) / 2;
          }
          expect(Math.abs(change), `${kernelWeight!.originalName} output ${output}`).toBeLessThanOrEqual(
            bound * (1 + 1e-6),
          );
        }
      }
      const next = layer.apply(activations) as tf.Tensor;
      activations.dispose();
      activations = next;
    }
    activations.dispose();
    model.dispose();
  });

  it('refuses an unpruned model in float32 (it would grow) unless allowed', async () => {
    const model = prunedMlp(1, [200, 64, 10]);
    expect((await rejection(compactBytesOfModel(model))).code).toBe('LARGER_THAN_SOURCE');
    expect((await compactBytesOfModel(model, { allowLarger: true })).length).toBeGreaterThan(0);
    expect((await compactBytesOfModel(model, { values: 'int8' })).length).toBeGreaterThan(0);
    model.dispose();
  });

  it('refuses to load a compact export of another kind of model as a layers model', async () => {
    const bytes = await encodeCompactModel(
      { model: { kind: 'huggingface', config: { model_type: 'bert' } }, tensors: [] },
      { allowLarger: true },
    );
    const error = await rejection(denseArtifactsOfCompact(bytes, { source: 'bert.fpsparse' }));
    expect(error.code).toBe('CHECKPOINT_MISMATCH');
    expect(error.message).toContain('bert.fpsparse holds a huggingface model');
  });
});
