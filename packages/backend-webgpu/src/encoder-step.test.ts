import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from '@fineprune/tensor';
import { bertBaseUncasedConfig, createBertModel, type EncoderConfig } from '@fineprune/transformers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerFusedWebGPUKernels, unregisterFusedWebGPUKernels } from './fused-kernels';
import { disposeWebGPU, registerWebGPUBackend } from './webgpu';
import { countWebGPUWork } from './work-counter';

// Two layers, hidden 8, 2 heads; no dropout, so that two passes see the same function.
const config: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 13,
  hiddenSize: 8,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 16,
  maxPositions: 6,
  initializerRange: 0.5,
  hiddenDropout: 0,
  attentionDropout: 0,
};

/** Loss and gradients of every trainable variable of a fresh encoder, with the dispatches they took. */
async function lossAndGradients(): Promise<{
  loss: number;
  gradients: Map<string, Float32Array>;
  dispatches: number;
}> {
  const model = createBertModel({ config, task: { type: 'classification', numLabels: 3 }, seed: 7 });
  const batch = {
    x: {
      inputIds: tf.tensor2d(
        [
          [2, 5, 7, 9, 0],
          [3, 1, 4, 0, 0],
        ],
        undefined,
        'int32',
      ),
      tokenTypeIds: tf.tensor2d(
        [
          [0, 0, 1, 1, 0],
          [0, 1, 1, 0, 0],
        ],
        undefined,
        'int32',
      ),
      attentionMask: tf.tensor2d(
        [
          [1, 1, 1, 1, 0],
          [1, 1, 1, 0, 0],
        ],
        undefined,
        'int32',
      ),
    },
    y: tf.tensor1d([1, 2], 'int32'),
  };
  const before = tf.memory().numTensors;
  const counter = countWebGPUWork();
  const variables = model.trainableVariables().map((entry) => entry.variable);
  const { value, grads } = tf.variableGrads(
    () => model.loss(model.forward(batch.x, { training: true }), batch),
    variables as tf.Variable[],
  );
  const dispatches = counter.counts().dispatches;
  counter.stop();
  const gradients = new Map<string, Float32Array>();
  for (const entry of model.trainableVariables()) {
    gradients.set(entry.name, (await grads[entry.variable.name]!.data()) as Float32Array);
  }
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([...Object.values(batch.x), batch.y]);
  model.dispose();
  return { loss, gradients, dispatches };
}

describe('the encoder on webgpu with the fused kernels', () => {
  beforeAll(async () => {
    registerWebGPUBackend();
    await setBackend('webgpu');
  });
  afterAll(async () => {
    registerFusedWebGPUKernels();
    await disposeWebGPU();
    await setBackend('cpu');
  });

  it('gives the op chains’ loss and gradients with fewer dispatches', async () => {
    unregisterFusedWebGPUKernels();
    const chain = await lossAndGradients();
    registerFusedWebGPUKernels();
    const fused = await lossAndGradients();
    // Same function in float32, different summation orders: the loss within 1e-5 relative.
    expect(Math.abs(fused.loss - chain.loss)).toBeLessThan(1e-5 * Math.abs(chain.loss));
    expect([...fused.gradients.keys()]).toEqual([...chain.gradients.keys()]);
    for (const [name, expected] of chain.gradients) {
      const actual = fused.gradients.get(name)!;
      const scale = Math.max(1e-3, ...Array.from(expected, Math.abs));
      // Every gradient within 1e-4 of its largest entry (float32 through two layers of LayerNorm).
      for (let index = 0; index < expected.length; index += 1) {
        expect(Math.abs(actual[index]! - expected[index]!), `${name}[${index}]`).toBeLessThan(1e-4 * scale);
      }
    }
    // Per layer the chains take ~5 kernels for GELU, ~4 for the softmax, ~8 per LayerNorm forward.
    expect(fused.dispatches).toBeLessThan(chain.dispatches - 30);
  });
});
