import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { FinepruneError } from '@fineprune/core';
import { testGlobalTopK, testMagnitude, testTopK } from '@fineprune/core/testing';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { fromLayersModel } from './from-layers-model';
import { pruneLayersModel } from './prune-layers-model';
import { BACKENDS, MIXED_SKIPPED, mixedModel, mlp, skipped } from './test-support';

/** Every weight of a model by original name, read into plain arrays. */
async function weightsOf(model: tfl.LayersModel): Promise<Map<string, Float32Array>> {
  const entries = await Promise.all(
    model.weights.map(async (weight) => {
      const value = weight.read();
      return [weight.originalName, Float32Array.from(await value.data())] as const;
    }),
  );
  return new Map(entries);
}

for (const backend of BACKENDS) {
  describe(`pruneLayersModel on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('returns a pruned copy that keeps the top |W| of all kernels, and leaves the model as it was', async () => {
      const model = mlp(5);
      const original = await weightsOf(model);
      const before = tf.memory().numTensors;
      const { model: pruned, report } = await pruneLayersModel(model, {
        scores: testMagnitude,
        mask: testGlobalTopK,
        sparsity: 0.5,
      });
      // Kernels 8·16 + 16·12 + 12·3 = 356 weights: keeps 356 − round(178) = 178.
      expect(report.parameters.map((row) => [row.name, row.total])).toEqual([
        ['fc1/kernel', 128],
        ['fc2/kernel', 192],
        ['out/kernel', 36],
      ]);
      expect([report.total, report.kept, report.sparsity]).toEqual([356, 178, 0.5]);
      expect(report.skipped).toEqual([
        skipped('fc1/bias', 'Dense', [16], 'weight-not-prunable'),
        skipped('fc2/bias', 'Dense', [12], 'weight-not-prunable'),
        skipped('out/bias', 'Dense', [3], 'weight-not-prunable'),
      ]);

      const after = await weightsOf(pruned);
      const kept: number[] = [];
      const removed: number[] = [];
      for (const [name, values] of original) {
        const copy = after.get(name)!;
        if (name.endsWith('/bias')) {
          expect(Array.from(copy), name).toEqual(Array.from(values));
          continue;
        }
        for (const [index, value] of values.entries()) {
          if (copy[index] === 0) removed.push(Math.abs(value));
          else {
            expect(copy[index]).toBe(value); // kept weights are copied exactly
            kept.push(Math.abs(value));
          }
        }
      }
      expect(kept.length).toBe(178);
      expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...removed));

      // The model given is untouched and not wrapped; only the copy is new.
      expect(await weightsOf(model)).toEqual(original);
      fromLayersModel(model).unwrap();
      expect(pruned.weights.length).toBe(6);
      pruned.dispose();
      expect(tf.memory().numTensors).toBe(before);
      model.dispose();
    });

    it('prunes each kernel to the same sparsity with a local mask, and reports what stays dense', async () => {
      const model = mixedModel();
      const { model: pruned, report } = await pruneLayersModel(model, {
        scores: testMagnitude,
        mask: testTopK,
        sparsity: 0.75,
      });
      // conv 3·3·2·4 = 72 → keeps 18; depthwise 3·3·4·1 = 36 → 9; logits 6·3 = 18 → 18 − round(13.5) = 4.
      expect(report.parameters.map((row) => [row.name, row.kept])).toEqual([
        ['conv/kernel', 18],
        ['depthwise/depthwiseKernel', 9],
        ['logits/kernel', 4],
      ]);
      expect(report.skipped).toEqual(MIXED_SKIPPED);
      const nonZero = async (name: string) =>
        Array.from(await pruned.getLayer(name).getWeights()[0]!.data()).filter((value) => value !== 0).length;
      expect([await nonZero('conv'), await nonZero('depthwise'), await nonZero('logits')]).toEqual([
        18, 9, 4,
      ]);
      pruned.dispose();
      model.dispose();
    });

    it('unwraps the model when pruning fails, so it can be used again', async () => {
      const model = mlp(6);
      await expect(
        pruneLayersModel(model, { scores: testMagnitude, mask: testTopK, sparsity: 1.5 }),
      ).rejects.toSatisfy((error) => FinepruneError.is(error) && error.code === 'INVALID_SPARSITY');
      fromLayersModel(model).unwrap(); // not left wrapped
      await expect(
        pruneLayersModel({} as tfl.LayersModel, { scores: testMagnitude, mask: testTopK, sparsity: 0.5 }),
      ).rejects.toSatisfy((error) => FinepruneError.is(error) && error.code === 'UNSUPPORTED_MODEL');
      model.dispose();
    });
  });
}
