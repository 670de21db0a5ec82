import * as tf from '@tensorflow/tfjs-core';
import { expandUnits, Pruner, sgd } from '@fineprune/core';
import { fixedSparsity, fixedTarget, tinyBatches, tinyMlp } from '@fineprune/core/testing';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { maskDirectionalDerivative, valuesOf } from './test-support';
import { unitMovement } from './unit-movement';
import { unitSigmoidPenalty } from './unit-sigmoid-penalty';
import { unitThreshold } from './unit-threshold';
import { unitTopV } from './unit-top-v';

// Central differences in float32 with h = 5e-3: truncation O(h²) ≈ 1e-5 and rounding ≈ 6e-8 · L / h
// ≈ 1e-5 for a loss near 1; a unit whose mask is 0 in both members has a second-order loss, so its
// central difference is O(h) ≈ 1e-3 around the exact gradient 0. Stated tolerance: 2e-3 + 1e-2 · |g|.
const H = 5e-3;
const tolerance = (value: number) => 2e-3 + 1e-2 * Math.abs(value);

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`unitMovement on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('gives each unit score the straight-through gradient summed over the unit, as central differences', async () => {
      const model = tinyMlp(6, 8, 3, 7);
      const pruner = new Pruner({
        model,
        scores: unitMovement({ init: { type: 'uniform', scale: 0.1 } }),
        mask: unitTopV(),
        schedule: fixedSparsity(0.375),
        // The weights barely move (a learning rate of 1e-30); the scores move by −1 · ∂L/∂S.
        optimizers: { weights: sgd({ learningRate: 1e-30 }), scores: sgd({ learningRate: 1 }) },
      });
      const { structure, scores } = pruner.prunedUnits()[0]!;
      const before = await valuesOf(scores!);
      await pruner.trainStep(tinyBatches(6, 3, 16)(0));
      const gradient = (await valuesOf(scores!)).map((after, unit) => before[unit]! - after);
      const [fc1, fc2] = model.parameters();
      // 8 − round(0.375 · 8) = 5 units kept, in both members.
      const columnSums = tf.sum(fc1!.mask, 0);
      expect((await valuesOf(columnSums)).filter((value) => value > 0).length).toBe(5);
      const batch = tinyBatches(6, 3, 16)(0);
      let nonZero = 0;
      for (let unit = 0; unit < structure.count; unit += 1) {
        const oneHot = tf.tidy(() => tf.reshape(tf.oneHot([unit], structure.count), [structure.count]));
        const directions = new Map(
          [fc1!, fc2!].map((parameter, index) => [
            parameter,
            expandUnits(oneHot, structure.members[index]!, parameter.shape),
          ]),
        );
        const expected = await maskDirectionalDerivative(model, batch, directions, H);
        expect(
          Math.abs(gradient[unit]! - expected),
          `unit ${unit}: ${gradient[unit]} vs ${expected}`,
        ).toBeLessThan(tolerance(expected));
        if (Math.abs(expected) > 1e-2) nonZero += 1;
        tf.dispose([oneHot, ...directions.values()]);
      }
      expect(nonZero).toBeGreaterThanOrEqual(3);
      tf.dispose([columnSums, batch.x as tf.Tensor, batch.y as tf.Tensor]);
      pruner.dispose();
      model.dispose();
    });

    it('trains by soft movement (threshold and σ penalty) without leaking, keeping ≥ 1 unit', async () => {
      const model = tinyMlp(6, 8, 3, 2);
      const pruner = new Pruner({
        model,
        scores: unitMovement({ init: { type: 'constant', value: 0.5 } }),
        mask: unitThreshold({ on: 'sigmoid' }),
        schedule: fixedTarget('threshold', 0.6),
        lossTerms: [unitSigmoidPenalty({ lambda: 0.1 })],
        optimizers: { weights: sgd({ learningRate: 0.05 }), scores: sgd({ learningRate: 0.5 }) },
      });
      await withLeakGuard(() => pruner.run({ data: tinyBatches(6, 3), untilStep: 6 }));
      // Select once more from the scores the last step left.
      await pruner.updateMasks();
      const [fc1] = model.parameters();
      const scores = await valuesOf(pruner.prunedUnits()[0]!.scores!);
      const columnMax = tf.max(fc1!.mask, 0);
      const kept = (await valuesOf(columnMax)).map((value) => value === 1);
      columnMax.dispose();
      // σ(S) > 0.6 ⇔ S > logit(0.6) ≈ 0.405; every unit above it is kept, and at least one unit.
      const cut = Math.log(0.6 / 0.4);
      const best = scores.indexOf(Math.max(...scores));
      scores.forEach((score, unit) => {
        expect(kept[unit], `unit ${unit} score ${score}`).toBe(score > cut || unit === best);
      });
      expect(kept.some(Boolean)).toBe(true);
      pruner.dispose();
      model.dispose();
    });
  });
}
