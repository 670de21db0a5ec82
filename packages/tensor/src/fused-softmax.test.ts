import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import {
  FUSED_SOFTMAX_GRAD_KERNEL,
  FUSED_SOFTMAX_KERNEL,
  scaledMaskedSoftmax,
  softmax,
} from './fused-softmax';
import { kernelsRun, largestDifference, seededValues, valueAndGradients } from './fused-test-support';

afterAll(async () => {
  await setBackend('cpu');
});

// Attention-shaped: scores [B = 3, heads = 2, L = 12, L = 12], mask [3, 1, 1, 12] with padding (−10000)
// at the end of the second and third sequences.
const scores = { values: seededValues(3 * 2 * 12 * 12, 11, 8), shape: [3, 2, 12, 12] };
const maskValues = Float32Array.from({ length: 36 }, (_, index) => {
  const [sequence, token] = [Math.floor(index / 12), index % 12];
  return token >= 12 - 3 * sequence ? -10000 : 0;
});
const masked = (x: tf.Tensor) => scaledMaskedSoftmax(x, 0.125, tf.tensor4d(maskValues, [3, 1, 1, 12]));

describe('scaledMaskedSoftmax', () => {
  it('runs as one fused kernel each way on wasm, without Softmax or Exp', async () => {
    await setBackend('wasm');
    const x = tf.tensor(scores.values, scores.shape);
    const names = await kernelsRun(() => tf.grad((v: tf.Tensor) => tf.sum(tf.square(masked(v))))(x));
    expect(names).toEqual(expect.arrayContaining([FUSED_SOFTMAX_KERNEL, FUSED_SOFTMAX_GRAD_KERNEL]));
    expect(names).not.toContain('Softmax');
    expect(names).not.toContain('Exp');
    x.dispose();
  });

  // Measured (|Δ|/max(1, |cpu|)): scaled and masked 3.0e-8 / 7.5e-9 (values / gradients), plain softmax
  // 1.2e-7 / 1.8e-7; the plain wasm op chain: 4.5e-8 / 1.1e-8 and 1.2e-7 / 1.2e-7.
  for (const [label, f] of [
    ['with scale and mask', masked],
    ['plain softmax', softmax],
  ] as const) {
    it(`matches the cpu op chain within 1e-6, values and gradients (${label})`, async () => {
      const cpu = await valueAndGradients('cpu', f, [scores]);
      const wasm = await valueAndGradients('wasm', f, [scores]);
      expect(largestDifference(wasm.value, cpu.value)).toBeLessThan(1e-6);
      expect(largestDifference(wasm.gradients[0]!, cpu.gradients[0]!)).toBeLessThan(1e-6);
    });
  }

  it('gives padded keys probability 0 and each row sums to 1', async () => {
    await setBackend('wasm');
    const y = tf.tidy(() => masked(tf.tensor(scores.values, scores.shape)).dataSync());
    for (let row = 0; row < 72; row += 1) {
      const sequence = Math.floor(row / 24);
      let sum = 0;
      for (let token = 0; token < 12; token += 1) {
        const p = y[row * 12 + token]!;
        sum += p;
        if (token >= 12 - 3 * sequence) expect(p).toBe(0);
      }
      expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
    }
  });

  it('has the gradient of its own value (central differences)', async () => {
    await setBackend('wasm');
    const x = scores.values.slice(0, 16);
    const dy = seededValues(16, 5);
    // f(x) = Σ dy ⊙ softmax(x/8) over rows of 4
    const f = (values: Float32Array) =>
      tf.tidy(
        () =>
          tf
            .sum(tf.mul(scaledMaskedSoftmax(tf.tensor2d(values, [4, 4]), 0.125), tf.tensor2d(dy, [4, 4])))
            .dataSync()[0]!,
      );
    const analytic = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) => tf.sum(tf.mul(scaledMaskedSoftmax(v, 0.125), tf.tensor2d(dy, [4, 4]))))(
          tf.tensor2d(x, [4, 4]),
        )
        .dataSync(),
    );
    const h = 1e-2;
    for (let index = 0; index < 16; index += 1) {
      const [plus, minus] = [Float32Array.from(x), Float32Array.from(x)];
      plus[index]! += h;
      minus[index]! -= h;
      // O(h²·s³) truncation plus float32 rounding of sums of 4 probabilities (~2e-7 / 2h)
      expect(Math.abs((f(plus) - f(minus)) / (2 * h) - analytic[index]!)).toBeLessThan(5e-5);
    }
  });

  it('takes the op chain when FINEPRUNE_FUSED=0, L is not a multiple of 4, or the mask is another shape', async () => {
    await setBackend('wasm');
    const run = (f: () => tf.Tensor) => kernelsRun(() => tf.tidy(f));
    process.env.FINEPRUNE_FUSED = '0';
    const off = await run(() => softmax(tf.ones([2, 8])));
    delete process.env.FINEPRUNE_FUSED;
    const ragged = await run(() => softmax(tf.ones([2, 6])));
    const otherMask = await run(() => scaledMaskedSoftmax(tf.ones([2, 2, 4]), 1, tf.zeros([1, 2, 4])));
    for (const names of [off, ragged, otherMask]) expect(names).not.toContain(FUSED_SOFTMAX_KERNEL);
    expect(await run(() => softmax(tf.ones([2, 8])))).toContain(FUSED_SOFTMAX_KERNEL);
  });
});
