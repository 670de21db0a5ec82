import { adam, Pruner, sparsityReport } from '@fineprune/core';
import { tinyBatches, tinyMlp } from '@fineprune/core/testing';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { type PaperMethod, paperRecipe } from './paper-recipes';

const totalSteps = 60;
const warmupSteps = 10;
const cooldownSteps = 10;

/** Trains tinyMlp with one method's recipe and records the share of weights kept at every step. */
async function keptPerStep(method: PaperMethod, lambda?: number): Promise<number[]> {
  const model = tinyMlp(6, 5, 3, 4);
  const recipe = paperRecipe({
    method,
    remaining: 0.1,
    totalSteps,
    warmupSteps,
    cooldownSteps,
    lambda,
    weights: adam({ learningRate: 1e-2 }),
    scores: adam({ learningRate: 1e-1 }),
  });
  const pruner = new Pruner({ model, ...recipe, seed: 3 });
  const data = tinyBatches(6, 3, 8);
  const kept: number[] = [];
  for (let step = 0; step < totalSteps; step += 1) {
    const batch = data(step);
    await pruner.trainStep(batch); // the masks of step t are selected at its start
    tf.dispose([batch.x, batch.y]);
    kept.push(1 - (await sparsityReport(model.parameters())).sparsity);
  }
  pruner.dispose();
  model.dispose();
  return kept;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`paperRecipe on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('SMvP keeps every weight through the warm-up, as MvP does, and prunes after it', async () => {
      await withLeakGuard(async () => {
        // λ = 1 on Σ σ(S) over 45 scores pulls every score down by about the Adam step (0.1) per step
        // once τ > 0, so σ(S) falls under τ_f = 0.1 (S < −2.2) well before the end.
        const soft = await keptPerStep('SMvP', 1);
        const hard = await keptPerStep('MvP');
        // Scores start at 0 and τ = 0 during the warm-up: σ(0) = 0.5 > 0 keeps all 45 weights.
        expect(soft.slice(0, warmupSteps)).toEqual(Array(warmupSteps).fill(1));
        expect(hard.slice(0, warmupSteps)).toEqual(Array(warmupSteps).fill(1));
        // The penalty does prune: the last masks keep at most half the weights.
        expect(soft.at(-1)!).toBeLessThan(0.5);
      });
    });
  });
}
