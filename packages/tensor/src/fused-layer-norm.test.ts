import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { FUSED_LAYER_NORM_GRAD_KERNEL, FUSED_LAYER_NORM_KERNEL, layerNorm } from './fused-layer-norm';
import { kernelsRun, largestDifference, seededValues, valueAndGradients } from './fused-test-support';

afterAll(async () => {
  await setBackend('cpu');
});

// [96, 20]: rows with an offset (μ ≈ 3) and spread (σ ≈ 2) like residual sums; γ around 1, β around 0.
const inputs = [
  { values: seededValues(96 * 20, 21, 4).map((value) => value + 3), shape: [96, 20] },
  { values: seededValues(20, 22, 0.5).map((value) => value + 1), shape: [20] },
  { values: seededValues(20, 23, 0.5), shape: [20] },
];
const norm = (epsilon: number) => (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) =>
  layerNorm(x as tf.Tensor2D, gamma as tf.Tensor1D, beta as tf.Tensor1D, epsilon);

describe('layerNorm', () => {
  it('runs as one fused kernel each way on wasm', async () => {
    await setBackend('wasm');
    const tensors = inputs.map(({ values, shape }) => tf.tensor(values, shape));
    const names = await kernelsRun(() => tf.grads(norm(1e-12))(tensors));
    expect(names).toEqual(expect.arrayContaining([FUSED_LAYER_NORM_KERNEL, FUSED_LAYER_NORM_GRAD_KERNEL]));
    expect(names).not.toContain('Rsqrt');
    expect(names).not.toContain('Mean');
    tf.dispose(tensors);
  });

  // Measured (|Δ|/max(1, |cpu|)), fused / plain wasm chain: y 3.6e-7 / 6.1e-7, dx 2.4e-7 / 2.4e-7,
  // dγ 5.5e-6 / 2.3e-6, dβ 1.7e-6 / 1.7e-6 (dγ, dβ: float32 sums over 96 rows against cpu's float64).
  for (const epsilon of [1e-12, 1e-5]) {
    it(`matches the cpu op chain (ε = ${epsilon}): y and dx within 1e-6, dγ and dβ within 1e-5`, async () => {
      const cpu = await valueAndGradients('cpu', norm(epsilon), inputs);
      const wasm = await valueAndGradients('wasm', norm(epsilon), inputs);
      expect(largestDifference(wasm.value, cpu.value)).toBeLessThan(1e-6);
      expect(largestDifference(wasm.gradients[0]!, cpu.gradients[0]!)).toBeLessThan(1e-6);
      expect(largestDifference(wasm.gradients[1]!, cpu.gradients[1]!)).toBeLessThan(1e-5);
      expect(largestDifference(wasm.gradients[2]!, cpu.gradients[2]!)).toBeLessThan(1e-5);
    });
  }

  it('normalizes each row to mean 0 and variance 1 (γ = 1, β = 0)', async () => {
    await setBackend('wasm');
    const y = tf.tidy(() =>
      layerNorm(tf.tensor2d(inputs[0]!.values, [96, 20]), tf.ones([20]), tf.zeros([20]), 1e-12).dataSync(),
    );
    for (let row = 0; row < 96; row += 1) {
      const values = Array.from(y.slice(row * 20, row * 20 + 20));
      const mean = values.reduce((sum, value) => sum + value, 0) / 20;
      const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / 20;
      expect(Math.abs(mean)).toBeLessThan(1e-6);
      expect(Math.abs(variance - 1)).toBeLessThan(1e-5);
    }
  });

  it('has the gradient of its own value with respect to x (central differences)', async () => {
    await setBackend('wasm');
    const x = inputs[0]!.values.slice(0, 40);
    const dy = seededValues(40, 24);
    const f = (values: Float32Array) =>
      tf.tidy(
        () =>
          tf
            .sum(
              tf.mul(
                layerNorm(tf.tensor2d(values, [2, 20]), tf.ones([20]), tf.zeros([20]), 1e-5),
                tf.tensor2d(dy, [2, 20]),
              ),
            )
            .dataSync()[0]!,
      );
    const analytic = tf.tidy(() =>
      tf
        .grad((v: tf.Tensor) =>
          tf.sum(
            tf.mul(
              layerNorm(v as tf.Tensor2D, tf.ones([20]), tf.zeros([20]), 1e-5),
              tf.tensor2d(dy, [2, 20]),
            ),
          ),
        )(tf.tensor2d(x, [2, 20]))
        .dataSync(),
    );
    const h = 1e-2;
    for (let index = 0; index < 40; index += 1) {
      const [plus, minus] = [Float32Array.from(x), Float32Array.from(x)];
      plus[index]! += h;
      minus[index]! -= h;
      // truncation O(h²/σ³) plus float32 rounding of a 20-term sum (~1e-6) over 2h
      expect(Math.abs((f(plus) - f(minus)) / (2 * h) - analytic[index]!)).toBeLessThan(5e-4);
    }
  });

  it('takes the op chain when FINEPRUNE_FUSED=0 or the feature count is not a multiple of 4', async () => {
    await setBackend('wasm');
    const run = (features: number) =>
      kernelsRun(() =>
        tf.tidy(() => layerNorm(tf.ones([3, features]), tf.ones([features]), tf.zeros([features]), 1e-5)),
      );
    process.env.FINEPRUNE_FUSED = '0';
    const off = await run(8);
    delete process.env.FINEPRUNE_FUSED;
    expect(off).not.toContain(FUSED_LAYER_NORM_KERNEL);
    expect(await run(6)).not.toContain(FUSED_LAYER_NORM_KERNEL);
    expect(await run(8)).toContain(FUSED_LAYER_NORM_KERNEL);
  });
});
