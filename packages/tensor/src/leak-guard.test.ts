import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { FinepruneError } from './errors';
import { countTensors, withLeakGuard } from './leak-guard';

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`withLeakGuard on ${backend}`, () => {
    beforeAll(() => setBackend(backend));

    it('passes clean code and returns its result', async () => {
      const result = await withLeakGuard(() => tf.tidy(() => tf.sum(tf.add(tf.ones([3]), 1)).dataSync()[0]));
      expect(result).toBe(6);
      const asyncResult = await withLeakGuard(async () => {
        const tensor = tf.range(0, 4);
        const values = await tensor.data();
        tensor.dispose();
        return values.length;
      });
      expect(asyncResult).toBe(4);
    });

    it('detects a deliberate leak with the counts and a fix', async () => {
      const before = countTensors();
      let leaked: tf.Tensor | undefined;
      try {
        await withLeakGuard(
          () => {
            leaked = tf.ones([2]);
          },
          { label: 'leaky block' },
        );
        expect.unreachable();
      } catch (error) {
        expect(FinepruneError.is(error)).toBe(true);
        const failure = error as FinepruneError;
        expect(failure.code).toBe('TENSOR_LEAK');
        expect(failure.message).toContain('leaky block');
        expect(failure.message).toContain(`${before} before, ${before + 1} after`);
        expect(failure.fix).toMatch(/tf\.tidy/);
        expect(failure.details).toMatchObject({ before, after: before + 1, leaked: 1, allowed: 0 });
      }
      leaked?.dispose();
      expect(countTensors()).toBe(before);
    });

    it('counts returned tensors as leaks unless allowed', async () => {
      let returned: tf.Tensor | undefined;
      await expect(
        withLeakGuard(() => {
          returned = tf.zeros([2]);
          return returned;
        }),
      ).rejects.toMatchObject({
        code: 'TENSOR_LEAK',
      });
      returned?.dispose();
      const kept = await withLeakGuard(() => tf.zeros([2]), { allowed: 1 });
      kept.dispose();
    });

    it("propagates the function's own error", async () => {
      await expect(
        withLeakGuard(() => {
          throw new Error('boom');
        }),
      ).rejects.toThrowError('boom');
    });

    it('rejects a negative allowance', async () => {
      await expect(withLeakGuard(() => 1, { allowed: -1 })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    });
  });
}
