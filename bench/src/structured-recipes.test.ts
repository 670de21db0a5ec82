import { adam, keptUnits, Pruner } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import {
  type BertModel,
  bertBaseUncasedConfig,
  createBertModel,
  shrinkBertModel,
} from '@fineprune/transformers';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type StructuredMethod, structuredRecipe } from './structured-recipes';

const config = {
  ...bertBaseUncasedConfig,
  vocabSize: 20,
  hiddenSize: 16,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 8,
  maxPositions: 8,
  initializerRange: 0.2,
};
const totalSteps = 24;

function batch(step: number) {
  const ids = Array.from({ length: 4 * 6 }, (_, index) => (index * 7 + step * 3) % 20);
  return {
    x: { inputIds: tf.tensor2d(ids, [4, 6], 'int32') },
    y: tf.tensor1d([0, 1, step % 2, 1], 'int32'),
  };
}

/** Fine-prunes the tiny encoder with a structured recipe to its final target. */
async function prunedWith(method: StructuredMethod): Promise<BertModel> {
  const model = createBertModel({ config, task: { type: 'classification', numLabels: 2 }, seed: 4 });
  const recipe = structuredRecipe({
    method,
    remaining: 0.5,
    headsRemaining: 0.5,
    hiddenSize: 16,
    headSize: 8,
    totalSteps,
    warmupSteps: 2,
    cooldownSteps: 4,
    weights: adam({ learningRate: 1e-3 }),
    scoreOptimizer: () => adam({ learningRate: 1e-1 }),
  });
  const pruner = new Pruner({ model, ...recipe, seed: 1 });
  for (let step = 0; step < totalSteps; step += 1) {
    const data = batch(step);
    await pruner.trainStep(data);
    tf.dispose([data.x.inputIds, data.y]);
  }
  await pruner.updateMasks();
  pruner.dispose();
  return model;
}

function logits(model: BertModel): Float32Array {
  return tf.tidy(() => {
    const data = batch(0);
    return (model.forward(data.x, { training: false }) as tf.Tensor).dataSync() as Float32Array;
  });
}

describe('structured recipes on the encoder (cpu)', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('headsNeurons ends with whole heads and neurons unread, which shrink removes without changing the logits', async () => {
    const model = await prunedWith('headsNeurons');
    for (const structure of model.structures!()) {
      const kept = await keptUnits(structure, model.parameters());
      // Half the heads (1 of 2) and half the neurons (4 of 8) of every layer, by local Top-v.
      expect(kept.filter(Boolean).length).toBe(structure.kind === 'head' ? 1 : 4);
    }
    const masked = logits(model);
    const { model: small } = await shrinkBertModel(model);
    expect(small.config.intermediateSizes).toEqual([4, 4]);
    expect(small.config.prunedHeads!.map((heads) => heads.length)).toEqual([1, 1]);
    const shrunk = logits(small);
    // float32, the same products in another order: 1e-5.
    const worst = shrunk.reduce((most, value, index) => Math.max(most, Math.abs(value - masked[index]!)), 0);
    expect(worst).toBeLessThanOrEqual(1e-5);
    small.dispose();
    model.dispose();
  });

  it('2:4 keeps exactly 2 of every 4 consecutive inputs of every projection', async () => {
    const model = await prunedWith('2:4');
    for (const parameter of model.parameters()) {
      const mask = parameter.mask.arraySync() as number[][];
      for (let column = 0; column < parameter.shape[1]!; column += 1) {
        for (let row = 0; row < parameter.shape[0]!; row += 4) {
          const kept = [0, 1, 2, 3].reduce((sum, offset) => sum + mask[row + offset]![column]!, 0);
          expect(kept).toBe(2);
        }
      }
    }
    model.dispose();
  });
});
