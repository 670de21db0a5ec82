import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { DivergenceGuard, firstNonFinite } from './divergence-guard';
import { adam, sgd } from './optimizers';
import { Pruner, type PrunerOptions } from './pruner';
import { fixedSparsity, testMagnitude, testTopK, tinyBatches, tinyMlp } from './testing';

function options(model: ReturnType<typeof tinyMlp>, learningRate: number): PrunerOptions {
  return {
    model,
    scores: testMagnitude,
    mask: testTopK,
    schedule: fixedSparsity(0.5),
    optimizers: { weights: adam({ learningRate }) },
  };
}

async function failure(promise: Promise<unknown>) {
  return promise.then(
    () => {
      throw new Error('expected the step to fail');
    },
    (error: unknown) => error as { code: string; message: string; details: Record<string, unknown> },
  );
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`divergence guard on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('judges losses against factor × max(running minimum, floor), hand-computed', () => {
      const guard = new DivergenceGuard({ factor: 10, floor: 0.5 });
      expect(guard.limit).toBe(Number.POSITIVE_INFINITY);
      expect(guard.check(2)).toBe('ok'); // minimum 2, limit 20
      expect(guard.limit).toBe(20);
      expect(guard.check(20)).toBe('ok');
      expect(guard.check(20.5)).toBe('diverged');
      expect(guard.check(0.01)).toBe('ok'); // minimum 0.01, floored to 0.5: limit 5
      expect(guard.limit).toBe(5);
      expect(guard.check(5.5)).toBe('diverged');
      expect(guard.check(Number.NaN)).toBe('non-finite');
      expect(guard.check(Number.POSITIVE_INFINITY)).toBe('non-finite');
      const off = new DivergenceGuard(false);
      off.check(1);
      expect(off.check(1e30)).toBe('ok');
      expect(off.check(Number.NaN)).toBe('non-finite');
      expect(() => new DivergenceGuard({ factor: 1 })).toThrow(/finite factor > 1/);
      expect(() => new DivergenceGuard({ floor: -1 })).toThrow(/finite floor ≥ 0/);
    });

    it('stops Adam at lr 1e6 at the step its loss explodes, names the step, and leaves the weights as they were', async () => {
      const model = tinyMlp();
      const pruner = new Pruner(options(model, 1e6));
      const data = tinyBatches();
      const first = data(0);
      const result = await pruner.trainStep(first);
      tf.dispose([first.x, first.y]);
      const before = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
      const tensors = tf.memory().numTensors;
      const second = data(1);
      const error = await failure(pruner.trainStep(second));
      tf.dispose([second.x, second.y]);
      expect(error.code).toBe('DIVERGED');
      expect(error.message).toMatch(
        /^\[DIVERGED\] Training diverged at step 1: the loss \S+ is above 1000000 × its running minimum/,
      );
      // the first step's update is ±lr per weight (Adam: m̂/√v̂ = ±1), so the loss of step 1 is enormous
      expect(error.details.loss as number).toBeGreaterThan(1e6 * result.loss);
      expect(error.details).toMatchObject({ step: 1, runningMinimum: result.loss, factor: 1e6 });
      expect(pruner.step).toBe(1);
      expect(model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()))).toEqual(
        before,
      );
      expect(tf.memory().numTensors).toBe(tensors);
      pruner.dispose();
      model.dispose();
    });

    it('trains on with the growth check turned off (divergenceGuard: false)', async () => {
      const model = tinyMlp();
      const pruner = new Pruner({ ...options(model, 1e6), divergenceGuard: false });
      const data = tinyBatches();
      for (const step of [0, 1]) {
        const batch = data(step);
        await pruner.trainStep(batch);
        tf.dispose([batch.x, batch.y]);
      }
      expect(pruner.step).toBe(2);
      pruner.dispose();
      model.dispose();
    });

    it('names the first non-finite weight after a NaN is injected, and the first non-finite gradient for NaN data', async () => {
      const model = tinyMlp();
      const pruner = new Pruner({
        ...options(model, 0.01),
        optimizers: { weights: sgd({ learningRate: 0.01 }) },
      });
      // a NaN in a weight the masks do not rank (pruned weights with NaN scores fail in the mask first)
      const bias = model.trainableVariables().find(({ name }) => name === 'fc2/bias')!.variable;
      bias.assign(tf.tensor([0, Number.NaN, 0]));
      const batch = tinyBatches()(0);
      const injected = await failure(pruner.trainStep(batch));
      expect(injected.code).toBe('NON_FINITE');
      // every gradient before it is NaN too (fc1/kernel first); the value is named as the cause
      expect(injected.message).toBe(
        '[NON_FINITE] The loss became NaN at step 0. The first non-finite tensor is the value of "fc2/bias". Fix: Lower the learning rates, enable gradientClipping, or check the data for NaN.',
      );
      expect(injected.details).toMatchObject({ step: 0, parameter: 'fc2/bias', tensor: 'value' });
      bias.assign(tf.zeros([3]));
      const nan = { x: tf.fill([8, 6], Number.NaN), y: tf.zeros([8], 'int32') };
      const fromData = await failure(pruner.trainStep(nan));
      expect(fromData.details).toMatchObject({ step: 0, parameter: 'fc1/kernel', tensor: 'gradient' });
      tf.dispose([batch.x, batch.y, nan.x, nan.y]);
      pruner.dispose();
      model.dispose();
    });

    it('finds the first non-finite value before any non-finite gradient, in order', async () => {
      const finite = tf.ones([2]);
      const infinite = tf.tensor([1, Number.POSITIVE_INFINITY]);
      const nan = tf.tensor([Number.NaN]);
      expect(
        await firstNonFinite([
          { name: 'a', value: finite, gradient: nan },
          { name: 'b', value: infinite, gradient: finite },
          { name: 'c', value: nan, gradient: undefined },
        ]),
      ).toEqual({ name: 'b', tensor: 'value' });
      expect(
        await firstNonFinite([
          { name: 'a', value: finite, gradient: finite },
          { name: 'b', value: finite, gradient: infinite },
        ]),
      ).toEqual({ name: 'b', tensor: 'gradient' });
      expect(await firstNonFinite([{ name: 'a', value: finite, gradient: undefined }])).toBeUndefined();
      tf.dispose([finite, infinite, nan]);
    });
  });
}
