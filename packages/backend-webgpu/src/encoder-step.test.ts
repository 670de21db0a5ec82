import * as tf from '@tensorflow/tfjs-core';
import { createRandom, maskedWeight, setBackend } from '@fineprune/tensor';
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

type Model = ReturnType<typeof createBertModel>;

/**
 * Movement pruning's set-up without its optimizer: every prunable weight gets a 0/1 mask keeping about
 * half of it and scores S behind the mask (W ⊙ M with ∂L/∂S straight through, as `movement()` +
 * `topV()` install it); returns the scores as named variables.
 */
function maskWithScores(model: Model): Array<{ name: string; variable: tf.Variable }> {
  const random = createRandom(11);
  return model.parameters().map((parameter) => {
    const values = (n: number) => Float32Array.from({ length: n }, () => random.next());
    parameter.mask.assign(
      tf.tidy(() =>
        tf.cast(tf.less(tf.tensor(values(parameter.size), [...parameter.shape]), 0.5), 'float32'),
      ),
    );
    const scores = tf.variable(
      tf.tensor(values(parameter.size), [...parameter.shape]),
      true,
      `${parameter.name}/scores`,
    );
    parameter.setWeightTransform(
      (p) => maskedWeight(p.weight, p.mask, scores),
      (p) => ({ weight: p.weight, mask: p.mask, scores }),
    );
    return { name: `${parameter.name}/scores`, variable: scores };
  });
}

/**
 * Loss and gradients of every trainable variable of a fresh encoder (and of the scores, when
 * `masked`), with the dispatches they took.
 */
async function lossAndGradients(masked = false): Promise<{
  loss: number;
  gradients: Map<string, Float32Array>;
  dispatches: number;
  byProgram: Map<string, number>;
}> {
  const model = createBertModel({ config, task: { type: 'classification', numLabels: 3 }, seed: 7 });
  const scores = masked ? maskWithScores(model) : [];
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
  const counter =
    tf.getBackend() === 'webgpu'
      ? countWebGPUWork()
      : { counts: () => ({ dispatches: 0, byProgram: [] }), stop: () => {} };
  const trained = [...model.trainableVariables(), ...scores];
  const { value, grads } = tf.variableGrads(
    () => model.loss(model.forward(batch.x, { training: true }), batch),
    trained.map((entry) => entry.variable) as tf.Variable[],
  );
  const { dispatches, byProgram } = counter.counts();
  counter.stop();
  const gradients = new Map<string, Float32Array>();
  for (const entry of trained) {
    gradients.set(entry.name, (await grads[entry.variable.name]!.data()) as Float32Array);
  }
  const loss = (await value.data())[0]!;
  tf.dispose([value, ...Object.values(grads)]);
  expect(tf.memory().numTensors).toBe(before);
  tf.dispose([...Object.values(batch.x), batch.y, ...scores.map((entry) => entry.variable)]);
  model.dispose();
  return { loss, gradients, dispatches, byProgram: new Map(byProgram) };
}

/** Fused and chain agree: the loss within 1e-5 relative, every gradient within 1e-4 of its largest entry. */
function expectSameLossAndGradients(
  fused: Awaited<ReturnType<typeof lossAndGradients>>,
  chain: Awaited<ReturnType<typeof lossAndGradients>>,
): void {
  // Same function in float32, different summation orders.
  expect(Math.abs(fused.loss - chain.loss)).toBeLessThan(1e-5 * Math.abs(chain.loss));
  expect([...fused.gradients.keys()]).toEqual([...chain.gradients.keys()]);
  for (const [name, expected] of chain.gradients) {
    const actual = fused.gradients.get(name)!;
    const scale = Math.max(1e-3, ...Array.from(expected, Math.abs));
    // float32 through two layers of LayerNorm.
    for (let index = 0; index < expected.length; index += 1) {
      expect(Math.abs(actual[index]! - expected[index]!), `${name}[${index}]`).toBeLessThan(1e-4 * scale);
    }
  }
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
    expectSameLossAndGradients(fused, chain);
    // Per layer the chains take ~5 kernels for GELU, ~4 for the softmax, ~8 per LayerNorm forward.
    expect(fused.dispatches).toBeLessThan(chain.dispatches - 30);
  });

  it('with masks and scores (MvP): the same loss and gradients of weights and scores, each projection one fused dispatch forward and three backward', async () => {
    unregisterFusedWebGPUKernels();
    const chain = await lossAndGradients(true);
    registerFusedWebGPUKernels();
    const fused = await lossAndGradients(true);
    expectSameLossAndGradients(fused, chain);
    // 2 layers × 6 prunable projections (query, key, value, attention output, FFN in and out). The
    // input gradient only where the backward pass asks for it: layer 0's query, key and value read
    // the frozen embeddings' output, which leads to no trained variable.
    for (const program of ['', 'WeightGrad', 'BiasGrad'])
      expect(fused.byProgram.get(`finepruneMaskedMatMul${program}`), program).toBe(12);
    expect(fused.byProgram.get('finepruneMaskedMatMulInputGrad'), 'InputGrad').toBe(9);
    // The FFN's GELU is in the projection's dispatches: no GELU kernel is left.
    expect(fused.byProgram.get('finepruneGelu')).toBeUndefined();
    expect(fused.byProgram.get('finepruneGeluGrad')).toBeUndefined();
    console.log('encoder step dispatches (masked, with scores)', {
      chain: chain.dispatches,
      fused: fused.dispatches,
    });
  });
});
