import * as tf from '@tensorflow/tfjs-core';
import {
  createPrunableParameter,
  type PluginContext,
  type PrunableModel,
  type PrunableParameter,
} from '@fineprune/core';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { maskFromConfig } from './from-config';
import { float32SigmoidCut } from './sigmoid-cut';
import { threshold } from './threshold';
import { topV } from './top-v';

// The masks of the movement-pruning reference code (emmental's TopKBinarizer and
// ThresholdBinarizer), next to this package's defaults, on the cases where the two differ.

const context = { step: 0, model: {} as PrunableModel, random: createRandom(1) } satisfies PluginContext;

function parameter(name: string, shape: number[]): PrunableParameter {
  return createPrunableParameter({
    name,
    group: name,
    kind: 'dense',
    weight: tf.tidy(() => tf.variable(tf.zeros(shape))),
  });
}

function release(parameters: PrunableParameter[], tensors: tf.Tensor[]): void {
  tf.dispose([...tensors, ...parameters.flatMap((entry) => [entry.weight, entry.mask])]);
}

async function sums(masks: tf.Tensor[]): Promise<number[]> {
  const totals = tf.tidy(() => tf.stack(masks.map((mask) => tf.sum(mask))));
  const values = Array.from(await totals.data());
  totals.dispose();
  return values;
}

/** σ(S) > τ as the reference evaluates it: both rounded to float32. */
function referenceSigmoidMask(scores: Float32Array, tau: number): number[] {
  return Array.from(scores, (score) => (Math.fround(1 / (1 + Math.exp(-score))) > Math.fround(tau) ? 1 : 0));
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`the reference code's mask conventions on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('topV keptCount: "floor" keeps int((1 − v)·n), one fewer than the default at 784×64 (v = 0.7) and 768×3072 (v = 0.97)', async () => {
      await withLeakGuard(async () => {
        for (const [shape, sparsity, rounded, floored] of [
          [[784, 64], 0.7, 15053, 15052],
          [[768, 3072], 0.97, 70779, 70778],
        ] as const) {
          const weight = parameter('w', [...shape]);
          const scores = tf.randomNormal([...shape], 0, 1, 'float32', 3);
          const [byRound] = await topV().compute([{ parameter: weight, scores }], sparsity, context);
          const [byFloor] = await topV({ keptCount: 'floor' }).compute(
            [{ parameter: weight, scores }],
            sparsity,
            context,
          );
          expect(await sums([byRound!, byFloor!])).toEqual([rounded, floored]);
          // Same ranking: the reference's mask is the default one minus its lowest kept score.
          const inRoundOnly = tf.tidy(() => tf.sum(tf.sub(byRound!, byFloor!)));
          expect((await inRoundOnly.data())[0]).toBe(1);
          release([weight], [scores, byRound!, byFloor!, inRoundOnly]);
        }
      });
    });

    it('topV keptCount applies to the group total with global scope, and round-trips through toConfig', async () => {
      await withLeakGuard(async () => {
        const a = parameter('a', [784, 64]);
        const b = parameter('b', [64, 10]);
        const inputs = [
          { parameter: a, scores: tf.randomNormal([784, 64], 0, 1, 'float32', 5) },
          { parameter: b, scores: tf.randomNormal([64, 10], 0, 1, 'float32', 6) },
        ];
        // N = 50,816 at v = 0.7: N − round(35571.2) = 15245; int(0.3 · 50816) = int(15244.8) = 15244.
        const mask = maskFromConfig(topV({ scope: 'global', keptCount: 'floor' }).toConfig());
        expect(mask.toConfig()).toEqual({ type: 'topV', scope: 'global', keptCount: 'floor' });
        const floored = await mask.compute(inputs, 0.7, context);
        const rounded = await topV({ scope: 'global' }).compute(inputs, 0.7, context);
        const [floorA, floorB] = await sums(floored);
        const [roundA, roundB] = await sums(rounded);
        expect(floorA! + floorB!).toBe(15244);
        expect(roundA! + roundB!).toBe(15245);
        expect(() => topV({ keptCount: 'ceil' as never })).toThrow(/keptCount must be one of/);
        release([a, b], [...inputs.map((input) => input.scores), ...floored, ...rounded]);
      });
    });

    it('threshold floorCount: "floor-plus-one" keeps int(0.005·n) + 1 (6 of 1,000) where "ceil" keeps 5', async () => {
      await withLeakGuard(async () => {
        const weight = parameter('w', [1000]);
        const scores = tf.tidy(() => tf.neg(tf.range(0, 1000, 1, 'float32'))); // 0, −1, …, −999
        const kept = async (options: Parameters<typeof threshold>[0]) => {
          const [mask] = await threshold(options).compute([{ parameter: weight, scores }], 10, context);
          const values = Array.from(await mask!.data());
          mask!.dispose();
          return values;
        };
        // τ = 10 is above every score: only the floor keeps anything, the top scores first.
        const ceil = await kept({});
        const reference = await kept({ floorCount: 'floor-plus-one' });
        expect(ceil.indexOf(0)).toBe(5);
        expect(ceil.reduce((sum, bit) => sum + bit, 0)).toBe(5);
        expect(reference.indexOf(0)).toBe(6);
        expect(reference.reduce((sum, bit) => sum + bit, 0)).toBe(6);
        // With a zero fraction the reference still keeps int(0) + 1 = 1; "ceil" has no floor left.
        const single = await kept({ minKeptFraction: 0, floorCount: 'floor-plus-one' });
        expect(single.reduce((sum, bit) => sum + bit, 0)).toBe(1);
        await expect(
          threshold({ minKeptFraction: 0 }).compute([{ parameter: weight, scores }], 10, context),
        ).rejects.toMatchObject({ code: 'EMPTY_MASK' });
        expect(() => threshold({ floorCount: 'round' as never })).toThrow(/floorCount must be/);
        release([weight], [scores]);
      });
    });

    it('threshold sigmoidComparison: "float32" drops the scores whose float32 σ(S) ties τ (1e-9 at τ = 0.5, −200 at τ = 0)', async () => {
      await withLeakGuard(async () => {
        const weight = parameter('w', [6]);
        const cases = [
          // [τ, scores, "logit" mask, "float32" mask]
          [0.5, [1e-9, -1e-9, 0, 1e-6, 0.3, -0.3], [1, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 0]],
          [0, [-200, -100, -50, 3, -1e3, 0], [1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 0, 1]],
        ] as const;
        for (const [tau, values, logit, float32] of cases) {
          const scores = tf.tensor([...values]);
          for (const [comparison, expected] of [
            ['logit', logit],
            ['float32', float32],
          ] as const) {
            const [mask] = await threshold({
              on: 'sigmoid',
              sigmoidComparison: comparison,
              minKeptFraction: 0,
            }).compute([{ parameter: weight, scores }], tau, context);
            expect(Array.from(await mask!.data()), `${comparison} at τ = ${tau}`).toEqual([...expected]);
            mask!.dispose();
          }
          // The float32 masks are the reference's comparison itself.
          expect(referenceSigmoidMask(Float32Array.from(values), tau)).toEqual([...float32]);
          scores.dispose();
        }
        release([weight], []);
      });
    });

    it('threshold sigmoidComparison: "float32" equals fround(σ(S)) > fround(τ) on scores within 200 ulps of the cut', async () => {
      await withLeakGuard(async () => {
        for (const tau of [0.005, 0.1, 0.5, 0.9]) {
          const cut = float32SigmoidCut(tau);
          // Every float32 from 200 below the cut to 200 above it, in order.
          const values = new Float32Array(401);
          const view = new DataView(new ArrayBuffer(4));
          view.setFloat32(0, cut);
          const base = view.getInt32(0);
          const step = cut < 0 ? -1 : 1; // raising the bits of a negative float lowers it
          for (let offset = -200; offset <= 200; offset += 1) {
            view.setInt32(0, base + step * offset);
            values[offset + 200] = view.getFloat32(0);
          }
          const weight = parameter('w', [values.length]);
          const scores = tf.tensor(values);
          const [mask] = await threshold({
            on: 'sigmoid',
            sigmoidComparison: 'float32',
            minKeptFraction: 0,
          }).compute([{ parameter: weight, scores }], tau, context);
          const expected = referenceSigmoidMask(values, tau);
          expect(Array.from(await mask!.data()), `τ = ${tau}`).toEqual(expected);
          expect(expected.indexOf(1), `τ = ${tau}: the first kept score is just above the cut`).toBe(201);
          release([weight], [scores, mask!]);
        }
      });
    });

    it('the reference options round-trip through toConfig', () => {
      const options = {
        on: 'sigmoid',
        minKeptFraction: 0.005,
        floorScope: 'local',
        floorCount: 'floor-plus-one',
        sigmoidComparison: 'float32',
      } as const;
      expect(maskFromConfig(threshold(options).toConfig()).toConfig()).toEqual({
        type: 'threshold',
        ...options,
      });
      expect(() => threshold({ sigmoidComparison: 'float64' as never })).toThrow(/sigmoidComparison must be/);
    });
  });
}
