/**
 * Helpers of the WebGPU kernel tests: seeded inputs, the largest difference of two results, and a
 * function's value and input gradients on a backend with the dispatches they took.
 */

import * as tf from '@tensorflow/tfjs-core';
import { createRandom, setBackend } from '@fineprune/tensor';
import { expect } from 'vitest';
import { countWebGPUWork } from './work-counter';

/** n seeded values, uniform in [−scale, scale). */
export function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const random = createRandom(seed);
  return Float32Array.from({ length: n }, () => (random.next() * 2 - 1) * scale);
}

/** Largest |a − b| over two arrays of the same length. */
export function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let index = 0; index < a.length; index += 1) worst = Math.max(worst, Math.abs(a[index]! - b[index]!));
  return worst;
}

export type Inputs = Record<string, { values: Float32Array; shape: number[] }>;

/**
 * The value of `f` and the gradients of Σ f ⊙ dy with respect to the inputs named in `wrt`, computed on
 * `backend` and read back; no tensor is left behind.
 */
export async function valueAndGradients(
  backend: 'cpu' | 'webgpu',
  inputs: Inputs,
  wrt: string[],
  upstream: Float32Array,
  f: (tensors: Record<string, tf.Tensor>) => tf.Tensor,
): Promise<{
  value: Float32Array;
  gradients: Float32Array[];
  dispatches?: number;
  gradientDispatches?: number;
}> {
  await setBackend(backend);
  const before = tf.memory().numTensors;
  const tensors = Object.fromEntries(
    Object.entries(inputs).map(([name, { values, shape }]) => [name, tf.tensor(values, shape)]),
  );
  const counter = backend === 'webgpu' ? countWebGPUWork() : undefined;
  const value = tf.tidy(() => f(tensors));
  const dispatches = counter?.counts().dispatches;
  counter?.stop();
  const dy = tf.tensor(upstream, value.shape);
  const gradientCounter = backend === 'webgpu' ? countWebGPUWork() : undefined;
  const gradients = tf.grads((...xs: tf.Tensor[]) => {
    const all = { ...tensors };
    wrt.forEach((name, index) => {
      all[name] = xs[index]!;
    });
    return f(all);
  })(
    wrt.map((name) => tensors[name]!),
    dy,
  );
  // The forward pass again, then the backward pass.
  const gradientDispatches = gradientCounter?.counts().dispatches;
  gradientCounter?.stop();
  const result = {
    value: (await value.data()) as Float32Array,
    gradients: (await Promise.all(gradients.map((g) => g.data()))) as Float32Array[],
    ...(dispatches === undefined ? {} : { dispatches }),
    ...(gradientDispatches === undefined ? {} : { gradientDispatches }),
  };
  tf.dispose([value, dy, ...gradients, ...Object.values(tensors)]);
  expect(tf.memory().numTensors).toBe(before);
  return result;
}
