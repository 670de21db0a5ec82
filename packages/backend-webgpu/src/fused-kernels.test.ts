import * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS, fusedAdamStep, fusedKernelAvailable, setBackend } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { disposeWebGPU, registerWebGPUBackend } from './webgpu';
import { type Inputs, maxDifference, randomValues, valueAndGradients } from './webgpu-test-support';
import { countWebGPUWork } from './work-counter';

const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;

describe('fused WebGPU kernels against the cpu op chains', () => {
  beforeAll(async () => {
    registerWebGPUBackend();
    await setBackend('webgpu');
  });
  afterAll(async () => {
    await disposeWebGPU();
    await setBackend('cpu');
  });

  it('registers every fused kernel on webgpu and none on cpu', async () => {
    await setBackend('webgpu');
    for (const name of Object.values(FUSED_KERNELS)) expect(fusedKernelAvailable(name)).toBe(true);
    await setBackend('cpu');
    for (const name of Object.values(FUSED_KERNELS)) expect(fusedKernelAvailable(name)).toBe(false);
  });

  it('attention softmax(scale·S + mask): values and gradients of S and the mask, in one dispatch', async () => {
    // [B, heads, L, L] = [2, 3, 5, 70]: rows longer than the 64 threads of a workgroup.
    const [B, heads, L, keys] = [2, 3, 5, 70];
    const scores = randomValues(B * heads * L * keys, 1, 4);
    const mask = Float32Array.from({ length: B * keys }, (_, i) => (i % 7 === 3 ? -10000 : 0));
    const inputs: Inputs = {
      scores: { values: scores, shape: [B, heads, L, keys] },
      mask: { values: mask, shape: [B, 1, 1, keys] },
    };
    const upstream = randomValues(scores.length, 2);
    const scale = 0.125;
    const reference = await valueAndGradients('cpu', inputs, ['scores', 'mask'], upstream, (t) =>
      tf.softmax(tf.add(tf.mul(t.scores!, scale), t.mask!)),
    );
    const fused = await valueAndGradients('webgpu', inputs, ['scores', 'mask'], upstream, (t) =>
      run(FUSED_KERNELS.attentionSoftmax, { scores: t.scores!, mask: t.mask! }, { scale }),
    );
    expect(fused.dispatches).toBe(1);
    // Probabilities in [0, 1]: float32 exp and sum rounding stay below 1e-6.
    expect(maxDifference(fused.value, reference.value)).toBeLessThan(1e-6);
    // Gradients are O(1)·scale: 1e-6 absolute.
    expect(maxDifference(fused.gradients[0]!, reference.gradients[0]!)).toBeLessThan(1e-6);
    expect(maxDifference(fused.gradients[1]!, reference.gradients[1]!)).toBeLessThan(1e-5);
  });

  it('attention softmax without a mask', async () => {
    const inputs: Inputs = { scores: { values: randomValues(4 * 9, 3, 3), shape: [1, 4, 9] } };
    const upstream = randomValues(36, 4);
    const reference = await valueAndGradients('cpu', inputs, ['scores'], upstream, (t) =>
      tf.softmax(tf.mul(t.scores!, 2)),
    );
    const fused = await valueAndGradients('webgpu', inputs, ['scores'], upstream, (t) =>
      run(FUSED_KERNELS.attentionSoftmax, { scores: t.scores! }, { scale: 2 }),
    );
    expect(maxDifference(fused.value, reference.value)).toBeLessThan(1e-6);
    expect(maxDifference(fused.gradients[0]!, reference.gradients[0]!)).toBeLessThan(2e-6);
  });

  it('LayerNorm: values and gradients of x, γ and β', async () => {
    const [rows, features] = [37, 130];
    const inputs: Inputs = {
      x: { values: randomValues(rows * features, 5, 3), shape: [rows, features] },
      gamma: { values: randomValues(features, 6, 2), shape: [features] },
      beta: { values: randomValues(features, 7), shape: [features] },
    };
    const upstream = randomValues(rows * features, 8);
    const epsilon = 1e-12;
    const reference = await valueAndGradients('cpu', inputs, ['x', 'gamma', 'beta'], upstream, (t) => {
      const { mean, variance } = tf.moments(t.x!, 1, true);
      return tf.add(
        tf.mul(tf.div(tf.sub(t.x!, mean), tf.sqrt(tf.add(variance, epsilon))), t.gamma!),
        t.beta!,
      );
    });
    const fused = await valueAndGradients('webgpu', inputs, ['x', 'gamma', 'beta'], upstream, (t) =>
      run(FUSED_KERNELS.layerNorm, { x: t.x!, gamma: t.gamma!, beta: t.beta! }, { epsilon }),
    );
    expect(fused.dispatches).toBe(1);
    // Normalised values are O(1)·|γ| ≤ 2·√130: float32 rounding of the row sums, 1e-5 absolute.
    expect(maxDifference(fused.value, reference.value)).toBeLessThan(1e-5);
    expect(maxDifference(fused.gradients[0]!, reference.gradients[0]!)).toBeLessThan(1e-5);
    // dγ and dβ sum 37 rows: 1e-5 absolute.
    expect(maxDifference(fused.gradients[1]!, reference.gradients[1]!)).toBeLessThan(1e-5);
    expect(maxDifference(fused.gradients[2]!, reference.gradients[2]!)).toBeLessThan(1e-5);
  });

  it('GELU: values and gradient against the erf chain', async () => {
    const inputs: Inputs = { x: { values: randomValues(1000, 9, 5), shape: [10, 100] } };
    const upstream = randomValues(1000, 10);
    const reference = await valueAndGradients('cpu', inputs, ['x'], upstream, (t) =>
      tf.mul(t.x!, tf.mul(0.5, tf.add(1, tf.erf(tf.mul(t.x!, Math.SQRT1_2))))),
    );
    const fused = await valueAndGradients('webgpu', inputs, ['x'], upstream, (t) =>
      run(FUSED_KERNELS.gelu, { x: t.x! }),
    );
    expect(fused.dispatches).toBe(1);
    // |x| ≤ 5: the erf approximation (1.5e-7) times |x| plus float32 rounding, 2e-6 absolute.
    expect(maxDifference(fused.value, reference.value)).toBeLessThan(2e-6);
    // The cpu gradient is the chain rule through erf, d/dx x·Φ(x) = Φ(x) + x·φ(x).
    expect(maxDifference(fused.gradients[0]!, reference.gradients[0]!)).toBeLessThan(2e-5);
  });

  it('Adam: the fused step equals the op chain of adam() in @fineprune/core, with and without decay', async () => {
    const n = 1000;
    const arrays = [
      randomValues(n, 11),
      randomValues(n, 12, 0.1),
      randomValues(n, 13, 0.01).map(Math.abs),
      randomValues(n, 14),
    ];
    for (const decay of [0, 1e-3]) {
      const scalars = {
        beta1: 0.9,
        beta2: 0.999,
        stepSize: (1e-3 * Math.sqrt(1 - 0.999 ** 3)) / (1 - 0.9 ** 3),
        epsilonHat: 1e-8,
        decay,
      };
      await setBackend('cpu');
      const [w, m, v, g] = arrays.map((values) => tf.tensor1d(values));
      const chain = tf.tidy(() => {
        const first = tf.add(tf.mul(m!, scalars.beta1), tf.mul(g!, 1 - scalars.beta1));
        const second = tf.add(tf.mul(v!, scalars.beta2), tf.mul(tf.square(g!), 1 - scalars.beta2));
        let update = tf.div(tf.mul(first, scalars.stepSize), tf.add(tf.sqrt(second), scalars.epsilonHat));
        if (decay > 0) update = tf.add(update, tf.mul(w!, decay));
        return [tf.sub(w!, update), first, second].map((t) => t.dataSync().slice());
      });
      tf.dispose([w!, m!, v!, g!]);
      await setBackend('webgpu');
      const before = tf.memory().numTensors;
      const inputs = arrays.map((values) => tf.tensor1d(values));
      const counter = countWebGPUWork();
      const fused = fusedAdamStep(inputs[0]!, inputs[1]!, inputs[2]!, inputs[3]!, scalars)!;
      expect(counter.counts().dispatches).toBe(3);
      counter.stop();
      const values = await Promise.all(fused.map((t) => t.data()));
      // w' moves by ~1e-3: float32 rounding of w (|w| ≤ 1) is 6e-8; m' and v' are single FMAs.
      expect(maxDifference(values[0]!, chain[0]!)).toBeLessThan(2e-7);
      expect(maxDifference(values[1]!, chain[1]!)).toBeLessThan(1e-8);
      expect(maxDifference(values[2]!, chain[2]!)).toBeLessThan(1e-9);
      tf.dispose([...fused, ...inputs]);
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
