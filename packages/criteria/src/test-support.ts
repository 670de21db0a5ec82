import * as tf from '@tensorflow/tfjs-core';
import type { Batch, PrunableModel } from '@fineprune/core';
import { createRandom } from '@fineprune/tensor';
import type { DenseNetwork } from './dense-network';

// Test helpers, not exported from the package.

/** Random inputs and labels, seeded. */
export function syntheticBatch(count: number, features: number, classes: number, seed: number): Batch {
  const random = createRandom(seed);
  const x = new Float32Array(count * features);
  for (let index = 0; index < x.length; index += 1) x[index] = 2 * random.next() - 1;
  const y = new Int32Array(count);
  for (let index = 0; index < count; index += 1) y[index] = Math.floor(random.next() * classes);
  return { x: tf.tensor2d(x, [count, features]), y: tf.tensor1d(y, 'int32') };
}

/** The same model without `forwardWith`, so measurements take the one-example-at-a-time path. */
export function withoutHook(model: DenseNetwork): PrunableModel {
  const { forwardWith: _unused, dispose: _dispose, ...rest } = model;
  return rest;
}
