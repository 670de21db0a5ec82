import * as tf from '@tensorflow/tfjs-core';

/**
 * The sum of tensors of one shape, added pairwise (no limit on their number, unlike `tf.addN` on
 * WebGPU). Imports only tfjs-core, so a unit mask does not pull in `@fineprune/tensor`'s main entry.
 * Call it inside `tf.tidy` (the partial sums are intermediates).
 *
 * @example
 * ```ts
 * const total = tf.tidy(() => sumAll([tf.ones([3]), tf.ones([3])])); // [2, 2, 2]
 * ```
 */
export function sumAll<T extends tf.Tensor>(tensors: readonly T[]): T {
  return tensors.slice(1).reduce<tf.Tensor>((sum, tensor) => tf.add(sum, tensor), tensors[0]!) as T;
}
