import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { FUSED_GELU_GRAD_KERNEL, FUSED_GELU_KERNEL, gelu, geluTanh } from './fused-gelu';
import { kernelsRun, largestDifference, seededValues, valueAndGradients } from './fused-test-support';

afterAll(async () => {
  await setBackend('cpu');
});

// Tolerances (|Δ|/max(1, |cpu|)) from measurement: gelu's value 2.4e-7 and gradient 4.2e-7 (the plain
// wasm chain: 4.8e-7 and 7.2e-7); geluTanh's value 4.8e-7 and gradient 1.4e-6 (float32 u and e^(−2|u|)
// against cpu's float64 Math.tanh; the plain wasm chain: 4.8e-7).
describe.each([
  ['gelu', gelu, 1e-6],
  ['geluTanh', geluTanh, 2e-6],
] as const)('%s', (name, activation, gradientTolerance) => {
  // [512, 36]: a size that is a multiple of 4 (fused on wasm); values to ±12 cover both tails.
  const input = [{ values: seededValues(512 * 36, 3, 6), shape: [512, 36] }];

  it('runs as one fused kernel each way on wasm', async () => {
    await setBackend('wasm');
    const x = tf.tensor2d(input[0]!.values, [512, 36]);
    const names = await kernelsRun(() => tf.grad((v: tf.Tensor) => tf.sum(activation(v)))(x));
    expect(names).toContain(FUSED_GELU_KERNEL);
    expect(names).toContain(FUSED_GELU_GRAD_KERNEL);
    expect(names).not.toContain('Erf');
    expect(names).not.toContain('Tanh');
    x.dispose();
  });

  it('matches the cpu op chain: values within 1e-6, gradients within the stated tolerance', async () => {
    const cpu = await valueAndGradients('cpu', activation, input);
    const wasm = await valueAndGradients('wasm', activation, input);
    expect(largestDifference(wasm.value, cpu.value)).toBeLessThan(1e-6);
    expect(largestDifference(wasm.gradients[0]!, cpu.gradients[0]!)).toBeLessThan(gradientTolerance);
  });

  it('has the gradient of its own value (central differences, float64 step on float32 values)', async () => {
    await setBackend('wasm');
    const x = Float32Array.from({ length: 64 }, (_, index) => -4 + index / 8);
    const h = 1e-2;
    const at = (values: Float32Array) =>
      tf.tidy(() => activation(tf.tensor1d(values)).dataSync() as Float32Array);
    const [plus, minus] = [at(x.map((v) => v + h)), at(x.map((v) => v - h))];
    const numeric = plus.map((value, index) => (value - minus[index]!) / (2 * h));
    const analytic = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) => tf.sum(activation(v)))(tf.tensor1d(x))
        .dataSync(),
    );
    // O(h²) truncation (|GELU'''| ≤ 1.2) plus float32 rounding over 2h: 1e-4 · 1.2 + 6e-8 / 1e-2 < 2e-4
    for (let index = 0; index < x.length; index += 1)
      expect(Math.abs(analytic[index]! - numeric[index]!)).toBeLessThan(2e-4);
  });

  it(`${name} takes the op chain when FINEPRUNE_FUSED=0 or the size is not a multiple of 4`, async () => {
    await setBackend('wasm');
    process.env.FINEPRUNE_FUSED = '0';
    const x = tf.ones([8]);
    const off = await kernelsRun(() => activation(x));
    delete process.env.FINEPRUNE_FUSED;
    const ragged = await kernelsRun(() => activation(tf.ones([7])));
    expect(off).not.toContain(FUSED_GELU_KERNEL);
    expect(ragged).not.toContain(FUSED_GELU_KERNEL);
    x.dispose();
  });
});
