import * as tf from '@tensorflow/tfjs-core';
import { createRandom, maskedDense, type MaskedDenseActivation, setBackend } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeWebGPU, registerWebGPUBackend } from './webgpu';
import { type Inputs, maxDifference, randomValues, valueAndGradients } from './webgpu-test-support';

/** A 0/1 mask keeping about half of the entries, seeded. */
function randomMask(n: number, seed: number): Float32Array {
  const random = createRandom(seed);
  return Float32Array.from({ length: n }, () => (random.next() < 0.5 ? 1 : 0));
}

/** Largest |a − b| relative to the largest |b| (at least 1). */
function relativeDifference(a: Float32Array, b: Float32Array): number {
  const largest = b.reduce((top, value) => Math.max(top, Math.abs(value)), 1);
  return maxDifference(a, b) / largest;
}

/** x [rows, inner], W, M and S [inner, cols], b [cols], the upstream gradient [rows, cols]. */
function projectionInputs(rows: number, inner: number, cols: number, seed: number) {
  const inputs: Inputs = {
    x: { values: randomValues(rows * inner, seed, 1), shape: [rows, inner] },
    weight: { values: randomValues(inner * cols, seed + 1, 0.2), shape: [inner, cols] },
    bias: { values: randomValues(cols, seed + 2, 0.5), shape: [cols] },
    scores: { values: randomValues(inner * cols, seed + 3), shape: [inner, cols] },
  };
  return { inputs, mask: randomMask(inner * cols, seed + 4), upstream: randomValues(rows * cols, seed + 5) };
}

const SHAPES: Array<[number, number, number]> = [
  [1, 7, 3],
  [33, 65, 17],
  [100, 784, 300],
];
const ACTIVATIONS: MaskedDenseActivation[] = ['linear', 'relu', 'gelu'];

describe('maskedDense on webgpu (one fused dispatch forward, three backward) against cpu', () => {
  beforeAll(async () => {
    registerWebGPUBackend();
    await setBackend('webgpu');
  });
  afterAll(async () => {
    await disposeWebGPU();
    await setBackend('cpu');
  });

  for (const [rows, inner, cols] of SHAPES) {
    for (const activation of ACTIVATIONS) {
      it(`${rows}×${inner}·${inner}×${cols}, ${activation}: value and the gradients of x, W, b and S`, async () => {
        const { inputs, mask, upstream } = projectionInputs(rows, inner, cols, rows + inner + cols);
        const results = [];
        for (const backend of ['cpu', 'webgpu'] as const) {
          await setBackend(backend);
          const maskTensor = tf.tensor2d(mask, [inner, cols]);
          results.push(
            await valueAndGradients(backend, inputs, ['x', 'weight', 'bias', 'scores'], upstream, (t) =>
              maskedDense(
                t.x as tf.Tensor2D,
                t.weight as tf.Tensor2D,
                maskTensor,
                t.bias as tf.Tensor1D,
                t.scores,
                { activation },
              ),
            ),
          );
          maskTensor.dispose();
        }
        const [cpu, webgpu] = results as [(typeof results)[0], (typeof results)[0]];
        // The forward pass is one dispatch; with it, the backward pass is dx, ∂L/∂W with ∂L/∂S, ∂L/∂b.
        expect(webgpu.dispatches).toBe(1);
        expect(webgpu.gradientDispatches).toBe(4);
        // float32 sums of up to 784 products in another order (tiles of 32 against TF.js cpu's loop);
        // the erf of GELU is the same A&S 7.1.26 polynomial on both. Measured at most 7.0e-7 of the
        // largest entry (100×784·784×300); 2e-6 leaves 3× room.
        expect(relativeDifference(webgpu.value, cpu.value)).toBeLessThan(2e-6);
        // dx, dW, db, dS: sums over 300 units or 100 rows; measured at most 5.6e-7 of the largest entry.
        const names = ['x', 'W', 'b', 'S'];
        webgpu.gradients.forEach((gradient, index) => {
          expect(relativeDifference(gradient, cpu.gradients[index]!), names[index]).toBeLessThan(2e-6);
        });
      });
    }
  }

  it('reads a bool mask, which TF.js keeps in an int32 buffer when cast to float32', async () => {
    const { inputs, mask, upstream } = projectionInputs(6, 37, 20, 61);
    const results = [];
    for (const backend of ['cpu', 'webgpu'] as const) {
      await setBackend(backend);
      const boolMask = tf.tensor2d(mask, [37, 20], 'bool');
      results.push(
        await valueAndGradients(backend, inputs, ['x', 'weight', 'bias', 'scores'], upstream, (t) =>
          maskedDense(
            t.x as tf.Tensor2D,
            t.weight as tf.Tensor2D,
            boolMask,
            t.bias as tf.Tensor1D,
            t.scores,
            {
              activation: 'relu',
            },
          ),
        ),
      );
      boolMask.dispose();
    }
    const [cpu, webgpu] = results as [(typeof results)[0], (typeof results)[0]];
    expect(webgpu.dispatches).toBe(1);
    expect(relativeDifference(webgpu.value, cpu.value)).toBeLessThan(2e-6);
    for (const [index, gradient] of webgpu.gradients.entries())
      expect(relativeDifference(gradient, cpu.gradients[index]!)).toBeLessThan(2e-6);
  });

  it('keeps the bias and scores optional: linear without b and S', async () => {
    const { inputs, mask, upstream } = projectionInputs(9, 40, 35, 41);
    const plain: Inputs = { x: inputs.x!, weight: inputs.weight! };
    const results = [];
    for (const backend of ['cpu', 'webgpu'] as const) {
      await setBackend(backend);
      const maskTensor = tf.tensor2d(mask, [40, 35]);
      results.push(
        await valueAndGradients(backend, plain, ['x', 'weight'], upstream, (t) =>
          maskedDense(t.x as tf.Tensor2D, t.weight as tf.Tensor2D, maskTensor),
        ),
      );
      maskTensor.dispose();
    }
    const [cpu, webgpu] = results as [(typeof results)[0], (typeof results)[0]];
    expect(webgpu.dispatches).toBe(1);
    // No bias gradient: the forward pass, dx and ∂L/∂W.
    expect(webgpu.gradientDispatches).toBe(3);
    expect(relativeDifference(webgpu.value, cpu.value)).toBeLessThan(2e-6);
    for (const [index, gradient] of webgpu.gradients.entries())
      expect(relativeDifference(gradient, cpu.gradients[index]!)).toBeLessThan(2e-6);
  });
});
