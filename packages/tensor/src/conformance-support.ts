/**
 * Helpers shared by the conformance cases: seeded normal tensors, values read back as float32, and a
 * loss's value and gradients.
 */

import * as tf from '@tensorflow/tfjs-core';
import { type RandomSource, readFloat32 } from '@fineprune/tensor';

/** Seeded standard normal values times `scale` (Box–Muller). */
export function normals(random: RandomSource, count: number, scale = 1): Float32Array {
  const values = new Float32Array(count);
  for (let index = 0; index < count; index += 1) {
    // Box–Muller transform.
    const u = 1 - random.next();
    const v = random.next();
    values[index] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return values;
}

/** A seeded normal tensor. */
export function randomTensor(random: RandomSource, shape: number[], scale = 1): tf.Tensor {
  return tf.tensor(normals(random, tf.util.sizeFromShape(shape), scale), shape, 'float32');
}

/** A tensor's values, copied out as float32. */
export async function values(tensor: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from(await readFloat32(tensor));
}

/** A scalar loss's value and its gradients with respect to `variables`. */
export async function gradientsOf(
  loss: () => tf.Tensor,
  variables: tf.Variable[],
): Promise<{ loss: number; gradients: Float32Array[] }> {
  const { value, grads } = tf.variableGrads(loss as () => tf.Scalar, variables);
  const gradients = await Promise.all(variables.map((variable) => values(grads[variable.name]!)));
  return { loss: (await value.data())[0]!, gradients };
}
