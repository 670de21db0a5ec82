import * as tf from '@tensorflow/tfjs-core';
import { createPrunableParameter, type PrunableModel } from '@fineprune/core';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { magnitude } from './magnitude';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`magnitude scores on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('scores each weight by |W| and learns nothing', async () => {
      await withLeakGuard(async () => {
        const weight = tf.tidy(() =>
          tf.variable(
            tf.tensor([
              [-3, 0.5],
              [0, -0.25],
            ]),
          ),
        );
        const parameter = createPrunableParameter({ name: 'w', group: 'w', kind: 'dense', weight });
        const strategy = magnitude();
        expect(strategy.learnable).toBe(false);
        expect(strategy.createScores).toBeUndefined();
        const scores = await strategy.compute(
          { parameter, scores: undefined },
          { step: 0, model: {} as PrunableModel, random: createRandom(0) },
        );
        expect(Array.from(await scores.data())).toEqual([3, 0.5, 0, 0.25]);
        expect(strategy.toConfig()).toEqual({ type: 'magnitude' });
        tf.dispose([scores, weight, parameter.mask]);
      });
    });
  });
}
