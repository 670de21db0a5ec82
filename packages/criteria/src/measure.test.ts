import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '@fineprune/core';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { syntheticBatch, withoutHook } from './test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { denseNetwork, type DenseNetwork } from './dense-network';
import { measure } from './measure';

/**
 * The Hessian diagonal of the loss from its definition, independently of the Gauss–Newton code:
 * H_kk = e_kᵀ H e_k with H e_k = (∇L(θ + εe_k) − ∇L(θ − εe_k)) / 2ε, one HVP per entry, in float64
 * arithmetic on the read-back gradients. (Double backprop is not available: TF.js cannot
 * differentiate its softmax gradient a second time.)
 */
async function hessianDiagonal(
  model: DenseNetwork,
  batch: Batch,
  parameterIndex: number,
): Promise<Float32Array> {
  const parameter = model.parameters()[parameterIndex]!;
  const size = parameter.size;
  const epsilon = 1e-2;
  const result = new Float32Array(size);
  const original = tf.keep(parameter.weight.clone());
  const gradientAt = async (k: number, sign: number) => {
    tf.tidy(() => {
      const unit = tf.reshape(tf.oneHot(tf.tensor1d([k], 'int32'), size), parameter.shape as number[]);
      parameter.weight.assign(tf.add(original, tf.mul(unit, sign * epsilon)));
    });
    const { value, grads } = tf.variableGrads(
      () => model.loss(model.forward(batch.x, { training: false }), batch),
      [parameter.weight],
    );
    const values = await grads[parameter.weight.name]!.data();
    tf.dispose([value, grads[parameter.weight.name]!]);
    return values[k]!;
  };
  for (let k = 0; k < size; k += 1) {
    result[k] = ((await gradientAt(k, 1)) - (await gradientAt(k, -1))) / (2 * epsilon);
  }
  parameter.weight.assign(original);
  original.dispose();
  return result;
}

function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  let scale = 0;
  for (const value of expected) scale = Math.max(scale, Math.abs(value));
  let worst = 0;
  for (let index = 0; index < expected.length; index += 1) {
    worst = Math.max(worst, Math.abs(actual[index]! - expected[index]!) / scale);
  }
  return worst;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`Gauss–Newton diagonal on ${backend}`, () => {
    let linear: DenseNetwork;
    let batch: Batch;
    beforeAll(async () => {
      await setBackend(backend);
      // A linear softmax model: logits = xW + b. Its Gauss–Newton matrix IS its Hessian (f is linear in θ).
      linear = denseNetwork({ units: [5, 4], activation: 'linear', seed: 3 });
      tf.tidy(() => linear.parameters()[0]!.weight.assign(tf.mul(linear.parameters()[0]!.weight, 3)));
      batch = syntheticBatch(64, 5, 4, 11);
    });
    afterAll(() => {
      linear.dispose();
      tf.dispose([batch.x, batch.y] as tf.TensorContainer);
    });

    it('equals the true Hessian diagonal (HVPs with unit vectors) for a linear softmax model', async () => {
      const hessian = await hessianDiagonal(linear, batch, 0);
      await withLeakGuard(async () => {
        const dense = await measure(linear, [batch], { gaussNewton: true }, { gaussNewton: 'exact' });
        const loop = await measure(
          withoutHook(linear),
          [batch],
          { gaussNewton: true },
          { gaussNewton: 'exact' },
        );
        const fast = (await dense.gaussNewton!.get('fc1/kernel')!.data()) as Float32Array;
        const slow = (await loop.gaussNewton!.get('fc1/kernel')!.data()) as Float32Array;
        // Central differences in float32 (ε = 1e-2, O(ε²) truncation): 2e-3 of the largest entry.
        expect(maxRelativeError(fast, hessian)).toBeLessThan(2e-3);
        expect(maxRelativeError(slow, hessian)).toBeLessThan(2e-3);
        expect(maxRelativeError(fast, slow)).toBeLessThan(1e-5);
        dense.dispose();
        loop.dispose();
      });
    });

    it('matches the closed form G_(a,b) = (1/N) Σ_i x_ia² p_ib (1 − p_ib) of the linear softmax model', async () => {
      const expected = tf.tidy(() => {
        const p = tf.softmax(linear.forward(batch.x, { training: false }) as tf.Tensor2D);
        return tf.div(
          tf.matMul(tf.transpose(tf.square(batch.x as tf.Tensor2D)), tf.mul(p, tf.sub(1, p))),
          64,
        );
      });
      const measured = await measure(linear, [batch], { gaussNewton: true });
      const actual = (await measured.gaussNewton!.get('fc1/kernel')!.data()) as Float32Array;
      expect(maxRelativeError(actual, (await expected.data()) as Float32Array)).toBeLessThan(1e-5);
      measured.dispose();
      expected.dispose();
    });

    it('the sampled estimate is unbiased: its mean over draws approaches the exact diagonal', async () => {
      const mlp = denseNetwork({ units: [5, 6, 4], activation: 'tanh', seed: 5 });
      const exact = await measure(mlp, [batch], { gaussNewton: true }, { gaussNewton: 'exact' });
      const random = createRandom(1);
      const draws = 200;
      const sum = new Float32Array(30);
      for (let draw = 0; draw < draws; draw += 1) {
        const sampled = await measure(
          mlp,
          [batch],
          { gaussNewton: true },
          { gaussNewton: 'sampled', random },
        );
        const values = await sampled.gaussNewton!.get('fc1/kernel')!.data();
        for (let index = 0; index < 30; index += 1) sum[index]! += values[index]! / draws;
        sampled.dispose();
      }
      const reference = (await exact.gaussNewton!.get('fc1/kernel')!.data()) as Float32Array;
      // 200 draws × 64 examples: the Monte-Carlo error is a few percent of the largest entry.
      expect(maxRelativeError(sum, reference)).toBeLessThan(0.1);
      exact.dispose();
      mlp.dispose();
    });

    it('the dense fast path and the one-example loop agree on a tanh MLP (exact and sampled)', async () => {
      const mlp = denseNetwork({ units: [5, 6, 4], activation: 'tanh', seed: 7 });
      for (const method of ['exact', 'sampled'] as const) {
        const fast = await measure(
          mlp,
          [batch],
          { gaussNewton: true },
          { gaussNewton: method, random: createRandom(2) },
        );
        const slow = await measure(
          withoutHook(mlp),
          [batch],
          { gaussNewton: true },
          { gaussNewton: method, random: createRandom(2) },
        );
        for (const name of ['fc1/kernel', 'fc2/kernel']) {
          const a = (await fast.gaussNewton!.get(name)!.data()) as Float32Array;
          const b = (await slow.gaussNewton!.get(name)!.data()) as Float32Array;
          expect(maxRelativeError(a, b)).toBeLessThan(1e-4);
        }
        fast.dispose();
        slow.dispose();
      }
      mlp.dispose();
    });

    it('H·g (GraSP) matches the closed form Xᵀ[(diag p − ppᵀ)(XV)]/N of the linear softmax model', async () => {
      const measured = await measure(linear, [batch], { gradient: true, hessianGradient: true });
      const expected = tf.tidy(() => {
        const x = batch.x as tf.Tensor2D;
        const p = tf.softmax(linear.forward(x, { training: false }) as tf.Tensor2D);
        const u = tf.matMul(x, measured.gradient!.get('fc1/kernel')! as tf.Tensor2D); // X·V, V = g
        const r = tf.sub(tf.mul(p, u), tf.mul(p, tf.sum(tf.mul(p, u), -1, true))); // H_out u per example
        return tf.div(tf.matMul(tf.transpose(x), r), 64);
      });
      const actual = (await measured.hessianGradient!.get('fc1/kernel')!.data()) as Float32Array;
      // A central difference along ĝ with ε‖ĝ‖ = 1e-3‖θ‖ in float32: 1e-2 of the largest entry.
      expect(maxRelativeError(actual, (await expected.data()) as Float32Array)).toBeLessThan(1e-2);
      measured.dispose();
      expected.dispose();
    });
  });
}
