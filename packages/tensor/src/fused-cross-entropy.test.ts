import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { FUSED_CROSS_ENTROPY_KERNELS, softmaxCrossEntropy } from './fused-cross-entropy';
import { withLeakGuard } from './leak-guard';
import { createRandom } from './random';

const ROWS = 6;
const CLASSES = 5;

function fixture(seed: number) {
  const random = createRandom(seed);
  const logits = Float32Array.from({ length: ROWS * CLASSES }, () => random.next() * 8 - 4);
  // row 4 names no class (−1) and row 5 one past the last: both add 0, as tf.oneHot's zero rows
  const labels = Int32Array.from([0, 4, 2, 2, -1, CLASSES]);
  return { logits, labels };
}

/** −(1/R) Σ_r log softmax(z_r)[label_r] and its gradient (softmax − onehot)/R, in float64. */
function reference(logits: Float32Array, labels: Int32Array) {
  let loss = 0;
  const gradient = new Float64Array(ROWS * CLASSES);
  for (let r = 0; r < ROWS; r += 1) {
    const label = labels[r]!;
    if (label < 0 || label >= CLASSES) continue;
    const row = Array.from(logits.subarray(r * CLASSES, (r + 1) * CLASSES));
    const max = Math.max(...row);
    const sum = row.reduce((total, z) => total + Math.exp(z - max), 0);
    loss -= row[label]! - max - Math.log(sum);
    for (let j = 0; j < CLASSES; j += 1)
      gradient[r * CLASSES + j] = (Math.exp(row[j]! - max) / sum - (j === label ? 1 : 0)) / ROWS;
  }
  return { loss: loss / ROWS, gradient };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`softmaxCrossEntropy on ${backend}`, () => {
    beforeAll(() => setBackend(backend));

    for (const dtype of ['int32', 'float32'] as const) {
      it(`equals the float64 definition, ${dtype} labels, in value and gradient (1e-6)`, async () => {
        await withLeakGuard(async () => {
          const { logits, labels } = fixture(1);
          const want = reference(logits, labels);
          const z = tf.tensor2d(logits, [ROWS, CLASSES]);
          const y = tf.tensor1d(Array.from(labels), dtype);
          const { value, grad } = tf.valueAndGrad((input: tf.Tensor) =>
            softmaxCrossEntropy(input as tf.Tensor2D, y),
          )(z);
          expect(Math.abs((await value.data())[0]! - want.loss)).toBeLessThan(1e-6);
          const got = await grad.data();
          for (let index = 0; index < got.length; index += 1)
            expect(Math.abs(got[index]! - want.gradient[index]!)).toBeLessThan(1e-6);
          tf.dispose([z, y, value, grad]);
        });
      });
    }

    it('matches a central finite difference of its own value (float32, step 1e-2, 2e-3)', async () => {
      await withLeakGuard(async () => {
        const { logits, labels } = fixture(2);
        const y = tf.tensor1d(labels, 'int32');
        const lossAt = (values: Float32Array) =>
          tf.tidy(() => softmaxCrossEntropy(tf.tensor2d(values, [ROWS, CLASSES]), y).dataSync()[0]!);
        const grad = tf.tidy(() =>
          tf.grad((input: tf.Tensor) => softmaxCrossEntropy(input as tf.Tensor2D, y))(
            tf.tensor2d(logits, [ROWS, CLASSES]),
          ),
        );
        const analytic = await grad.data();
        for (const index of [0, 7, 13, 29]) {
          const step = 1e-2;
          const plus = Float32Array.from(logits);
          const minus = Float32Array.from(logits);
          plus[index] = plus[index]! + step;
          minus[index] = minus[index]! - step;
          expect(Math.abs((lossAt(plus) - lossAt(minus)) / (2 * step) - analytic[index]!)).toBeLessThan(2e-3);
        }
        tf.dispose([y, grad]);
      });
    });
  });
}

describe('softmaxCrossEntropy routes', () => {
  beforeAll(() => setBackend('wasm'));

  it('is one kernel forward and one backward on wasm, the chain for large inputs', async () => {
    await withLeakGuard(async () => {
      const z = tf.randomNormal([4, 3], 0, 1, 'float32', 1) as tf.Tensor2D;
      const y = tf.tensor1d([0, 1, 2, 1], 'int32');
      const small = await tf.profile(() => {
        tf.dispose(tf.grad((input: tf.Tensor) => softmaxCrossEntropy(input as tf.Tensor2D, y))(z));
      });
      // besides the two kernels only customGrad's Identity copies and its own scope
      const names = small.kernels.map((kernel) => kernel.name).filter((name) => name !== 'Identity');
      expect(names.filter((name) => name.startsWith('Fineprune'))).toEqual([
        FUSED_CROSS_ENTROPY_KERNELS.forward,
        FUSED_CROSS_ENTROPY_KERNELS.gradient,
      ]);
      expect(names.length).toBeLessThanOrEqual(3);
      const wide = tf.zeros([2, 40_000]) as tf.Tensor2D;
      const labels = tf.tensor1d([0, 1], 'int32');
      const large = await tf.profile(() => {
        tf.dispose(softmaxCrossEntropy(wide, labels));
      });
      expect(large.kernels.map((kernel) => kernel.name)).not.toContain(FUSED_CROSS_ENTROPY_KERNELS.forward);
      tf.dispose([z, y, wide, labels]);
    });
  });
});
