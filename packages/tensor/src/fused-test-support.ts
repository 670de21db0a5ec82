/**
 * Test helpers for the fused wasm kernels: a function's value and input gradients (under a seeded
 * upstream gradient) on a given backend, the largest relative difference of two results, and whether
 * a kernel ran. Used by the fused-*.test.ts files only.
 */

import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from './backend';
import { createRandom } from './random';

/** Plain arrays of a function's value and of its gradients with respect to each input. */
export interface ValueAndGradients {
  value: Float32Array;
  gradients: Float32Array[];
}

/**
 * f's value and Σ(dy ⊙ f)'s gradients with respect to `inputs` (made from the given arrays and
 * shapes) on `backend`, dy seeded; no tensor is left behind.
 */
export async function valueAndGradients(
  backend: string,
  f: (...inputs: tf.Tensor[]) => tf.Tensor,
  inputs: ReadonlyArray<{ values: Float32Array; shape: number[] }>,
  upstreamSeed = 7,
): Promise<ValueAndGradients> {
  await setBackend(backend);
  const before = tf.memory().numTensors;
  const result = tf.tidy(() => {
    const tensors = inputs.map(({ values, shape }) => tf.tensor(values, shape, 'float32'));
    const value = f(...tensors);
    const dy = tf.randomNormal(value.shape, 0, 1, 'float32', upstreamSeed);
    const gradients = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), dy)))(tensors);
    return {
      value: value.dataSync() as Float32Array,
      gradients: gradients.map((g) => g.dataSync() as Float32Array),
    };
  });
  if (tf.memory().numTensors !== before) throw new Error(`${tf.memory().numTensors - before} tensors leaked`);
  return result;
}

/** max |a − b| / max(1, |b|): the conformance suite's measure (absolute below 1, relative above). */
export function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let worst = 0;
  for (let index = 0; index < a.length; index += 1) {
    const difference = Math.abs(a[index]! - b[index]!) / Math.max(1, Math.abs(b[index]!));
    if (Number.isNaN(difference)) return Number.POSITIVE_INFINITY;
    worst = Math.max(worst, difference);
  }
  return worst;
}

/** The names of the kernels `f` runs on the active backend. */
export async function kernelsRun(f: () => tf.Tensor | tf.Tensor[]): Promise<string[]> {
  const profile = await tf.profile(() => f());
  return profile.kernels.map((kernel) => kernel.name);
}

/** Seeded values, uniform in [−scale, scale) (the project's xoshiro128** generator). */
export function seededValues(count: number, seed: number, scale = 1): Float32Array {
  const random = createRandom(seed);
  return Float32Array.from({ length: count }, () => (random.next() * 2 - 1) * scale);
}

/** erf in float64 from its Maclaurin series (|x| ≤ 3) or its continued fraction (|x| > 3). */
export function erf64(x: number): number {
  const a = Math.abs(x);
  let result: number;
  if (a <= 3) {
    let term = a;
    let sum = a;
    for (let n = 1; n < 200; n += 1) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    result = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let fraction = 0;
    for (let k = 60; k >= 1; k -= 1) fraction = k / 2 / (a + fraction);
    result = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + fraction);
  }
  return Math.sign(x) * result;
}
