import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { prunedMlp, seededInput } from '../../test/mlp';
import { modelArtifacts } from './layers-artifacts';
import { affineCodes, affineQuantization, quantizeArtifacts } from './tfjs-quantization';

beforeAll(async () => {
  await setBackend('cpu');
});

describe("TF.js's own weight quantization", () => {
  it('puts 0 on a code, so pruned weights stay exactly 0 (hand-derived uint8 example)', () => {
    // Range [−1, 2]: scale 3/255, zero point round(1 / (3/255)) = 85, min −85·3/255 = −1.
    const values = Float32Array.from([-1, 0, 2, 0.5]);
    const affine = affineQuantization(values, 255);
    expect(affine.scale).toBeCloseTo(3 / 255, 15);
    expect(affine.min).toBeCloseTo(-1, 15);
    expect([...affineCodes(values, affine)]).toEqual([0, 85, 255, 128]); // 0.5·85 = 42.5 → 43 + 85
    // A range that does not put 0 on a code by itself: [−0.3, 1]; the min moves by ≤ half a step.
    const shifted = affineQuantization(Float32Array.from([-0.3, 1]), 255);
    const zeroPoint = Math.round(0.3 / (1.3 / 255));
    expect(shifted.min).toBe(-zeroPoint * shifted.scale);
    expect(zeroPoint * shifted.scale + shifted.min).toBe(0);
  });

  for (const dtype of ['uint8', 'uint16', 'float16'] as const) {
    it(`${dtype}: stock tf.loadLayersModel reads it, weights within the stated bound, pruned zeros exact`, async () => {
      const before = tf.memory().numTensors;
      const model = prunedMlp(0.1, [100, 40, 10]);
      const artifacts = await modelArtifacts(model);
      const quantized = quantizeArtifacts(artifacts, dtype);
      const bytes = (quantized.weightData as ArrayBuffer).byteLength;
      expect(bytes).toBe(
        ((artifacts.weightData as ArrayBuffer).byteLength / 4) * (dtype === 'uint8' ? 1 : 2),
      );
      const loaded = await tfl.loadLayersModel(tf.io.fromMemory(quantized));
      const [original, again] = [model.getWeights(), loaded.getWeights()];
      for (let index = 0; index < original.length; index += 1) {
        const [w, q] = [original[index]!.dataSync(), again[index]!.dataSync()];
        const spec = quantized.weightSpecs![index]!;
        let low = 0;
        let high = 0;
        for (const value of w) [low, high] = [Math.min(low, value), Math.max(high, value)];
        for (let entry = 0; entry < w.length; entry += 1) {
          if (w[entry] === 0) expect(q[entry]).toBe(0);
          // uint: one step of (max(w, 0) − min(w, 0)) / levels; float16: 2⁻¹¹ relative (normal range).
          const bound =
            dtype === 'float16'
              ? 2 ** -11 * Math.abs(w[entry]!) + 2 ** -25
              : (high - low) / (dtype === 'uint8' ? 255 : 65535);
          expect(Math.abs(q[entry]! - w[entry]!), `${spec.name}[${entry}]`).toBeLessThanOrEqual(
            bound * (1 + 1e-9),
          );
        }
      }
      const x = seededInput(2, [100], 1);
      tf.dispose([x, model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor]);
      model.dispose();
      loaded.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('refuses a weight float16 cannot hold, and unknown dtypes', async () => {
    const model = tfl.sequential({ layers: [tfl.layers.dense({ units: 1, inputShape: [2] })] });
    const weights = [tf.tensor2d([[1e6], [1]]), tf.tensor1d([0])];
    model.setWeights(weights);
    tf.dispose(weights);
    const artifacts = await modelArtifacts(model);
    expect(() => quantizeArtifacts(artifacts, 'float16')).toThrow(/holds 1000000.*float16 cannot hold/);
    expect(() => quantizeArtifacts(artifacts, 'int4' as never)).toThrow(/INVALID_ARGUMENT/);
    model.dispose();
  });
});
