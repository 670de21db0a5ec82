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
import { type StructuredMethod, type StructuredRecipeOptions, structuredRecipe } from './structured-recipes';

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
async function prunedWith(
  method: StructuredMethod,
  extra: Partial<StructuredRecipeOptions> = {},
  prepare: (model: BertModel) => void = () => {},
): Promise<BertModel> {
  const model = createBertModel({ config, task: { type: 'classification', numLabels: 2 }, seed: 4 });
  prepare(model);
  const recipe = structuredRecipe({
    ...extra,
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

/** Shrinks a pruned encoder and checks its logits against the masked model's; returns the shrunk one. */
async function shrunkLikeMasked(model: BertModel): Promise<BertModel> {
  const masked = logits(model);
  const { model: small } = await shrinkBertModel(model);
  const shrunk = logits(small);
  // float32, the same products in another order: 1e-5.
  const worst = shrunk.reduce((most, value, index) => Math.max(most, Math.abs(value - masked[index]!)), 0);
  expect(worst).toBeLessThanOrEqual(1e-5);
  return small;
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
    const small = await shrunkLikeMasked(model);
    expect(small.config.intermediateSizes).toEqual([4, 4]);
    expect(small.config.prunedHeads!.map((heads) => heads.length)).toEqual([1, 1]);
    small.dispose();
    model.dispose();
  });

  it('units ranks whole heads (Q, K, V columns and output rows) across layers by their L2 norm', async () => {
    // Layer 0's attention weights tripled: both of its heads outrank layer 1's, so a global
    // selection of 2 of the 4 heads takes layer 0's two, and layer 1 keeps its best (never none).
    const model = await prunedWith('units', { unitScoring: 'magnitude', headSelection: 'global' }, (bert) => {
      for (const parameter of bert.parameters())
        if (/layer_0\/attention\/(query|key|value|output)\/kernel$/.test(parameter.name))
          parameter.weight.assign(tf.mul(parameter.weight, 3));
    });
    const weights = new Map(
      model.parameters().map((parameter) => [parameter.name, parameter.weight.arraySync() as number[][]]),
    );
    // A head's squared L2 norm by hand: its 8 columns of Q, K, V and its 8 rows of the output kernel.
    const norm = (layer: number, head: number) => {
      const columns = ['query', 'key', 'value'].flatMap((projection) =>
        weights
          .get(`layer_${layer}/attention/${projection}/kernel`)!
          .flatMap((row) => row.slice(head * 8, head * 8 + 8)),
      );
      const rows = weights
        .get(`layer_${layer}/attention/output/kernel`)!
        .slice(head * 8, head * 8 + 8)
        .flat();
      return [...columns, ...rows].reduce((sum, value) => sum + value * value, 0);
    };
    const layerOneBest = norm(1, 0) >= norm(1, 1) ? 0 : 1;
    const expected = [[1, 1], layerOneBest === 0 ? [1, 0] : [0, 1]];
    const heads = model.structures!().filter((structure) => structure.kind === 'head');
    const kept = await Promise.all(heads.map((structure) => keptUnits(structure, model.parameters())));
    expect(kept.map((units) => units.map(Number))).toEqual(expected);
    // Neurons stay local: 4 of 8 in each layer.
    for (const structure of model.structures!().filter((structure) => structure.kind === 'neuron'))
      expect((await keptUnits(structure, model.parameters())).filter(Boolean).length).toBe(4);
    const small = await shrunkLikeMasked(model);
    expect(small.config.prunedHeads!.map((pruned) => pruned.length)).toEqual([0, 1]);
    small.dispose();
    model.dispose();
  });

  it('units with unit movement and local head selection keeps one head and half the neurons of every layer', async () => {
    const model = await prunedWith('units', { unitScoring: 'movement', headSelection: 'local' });
    for (const structure of model.structures!()) {
      const kept = await keptUnits(structure, model.parameters());
      expect(kept.filter(Boolean).length).toBe(structure.kind === 'head' ? 1 : 4);
    }
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
