import * as tf from '@tensorflow/tfjs-core';
import { createPrunableParameter, type PluginContext, type PrunableModel } from '@fineprune/core';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { threshold } from './threshold';

// Soft movement pruning starts from scores S = 0 and a threshold τ_i = 0 held through the warm-up
// (the reference's `--initial_threshold 0 --final_threshold 0.1` with `sigmoied_threshold`). Its
// mask must keep every weight until τ rises, as the Top-v warm-up at sparsity 0 does for MvP.

const context = { step: 0, model: {} as PrunableModel, random: createRandom(1) } satisfies PluginContext;

function parameter(name: string, shape: number[]) {
  return createPrunableParameter({
    name,
    group: 'encoder',
    kind: 'dense',
    weight: tf.tidy(() => tf.variable(tf.zeros(shape))),
  });
}

/** Kept entries of each mask of `threshold(options)` at τ for the given scores. */
async function keptCounts(
  options: Parameters<typeof threshold>[0],
  scores: tf.Tensor[],
  tau: number,
): Promise<number[]> {
  const parameters = scores.map((entry, index) => parameter(`w${index}`, [...entry.shape]));
  const masks = await threshold(options).compute(
    parameters.map((entry, index) => ({ parameter: entry, scores: scores[index]! })),
    tau,
    context,
  );
  const counts = masks.map((mask) => Array.from(mask.dataSync()).reduce((sum, value) => sum + value, 0));
  tf.dispose([...masks, ...parameters.flatMap((entry) => [entry.weight, entry.mask])]);
  return counts;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`threshold mask during the warm-up on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('keeps every weight of scores 0 at τ = 0 and on the first steps of the ramp (σ(0) = 0.5 > τ)', async () => {
      await withLeakGuard(async () => {
        const scores = [tf.zeros([40, 30]), tf.zeros([30, 7])];
        // τ of a cubic ramp 0 → 0.1 (Eq. 5 with τ for v): warm-up 0, then 0.1(1 − (1 − k/n)³) for
        // k = 1, 10, 50 of n = 100 stages, and τ_f itself; all below σ(0) = 0.5.
        for (const tau of [0, 0, 0.1 * (1 - 0.99 ** 3), 0.1 * (1 - 0.9 ** 3), 0.1 * (1 - 0.5 ** 3), 0.1]) {
          expect(await keptCounts({ on: 'sigmoid', minKeptFraction: 0.005 }, scores, tau)).toEqual([
            1200, 210,
          ]);
        }
        tf.dispose(scores);
      });
    });

    it('thresholds S itself at τ = 0 to the 0.5% floor: the convention the old SMvP recipe used', async () => {
      await withLeakGuard(async () => {
        const scores = [tf.zeros([40, 30]), tf.zeros([30, 7])];
        // S > 0 is false for every score 0: only ceil(0.005 n) survive, 6 of 1,200 and 2 of 210.
        expect(await keptCounts({ on: 'scores', minKeptFraction: 0.005 }, scores, 0)).toEqual([6, 2]);
        tf.dispose(scores);
      });
    });

    it('prunes a score once σ(S) falls under τ: S = −2.3 (σ ≈ 0.091) at τ = 0.1, not S = −2.1 (σ ≈ 0.109)', async () => {
      await withLeakGuard(async () => {
        const values = Array.from({ length: 200 }, (_, index) => (index % 2 === 0 ? -2.3 : -2.1));
        const scores = [tf.tensor(values, [20, 10])];
        expect(await keptCounts({ on: 'sigmoid', minKeptFraction: 0 }, scores, 0.1)).toEqual([100]);
        // Still every weight at τ = 0 (σ(S) > 0 for every finite S).
        expect(await keptCounts({ on: 'sigmoid', minKeptFraction: 0 }, scores, 0)).toEqual([200]);
        tf.dispose(scores);
      });
    });
  });
}
