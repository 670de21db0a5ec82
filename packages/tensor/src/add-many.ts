import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';

/**
 * The most inputs {@link addMany} gives one `tf.addN`. WebGPU guarantees 8 storage buffers per
 * shader stage, and tfjs-backend-webgpu 4.22 binds every input of `AddN` (plus its output) at
 * once without splitting, so an `addN` of more than 7 tensors fails on a default WebGPU device —
 * with a validation message and a sum that is never computed, not an exception.
 */
export const ADD_MANY_GROUP = 7;

/**
 * The element-wise sum of tensors of one shape and dtype, as `tf.addN` computes it, but in groups
 * of at most {@link ADD_MANY_GROUP} inputs so that it also runs on WebGPU devices with the default
 * limits (see there). Differentiable; a single input is returned as a new tensor (a clone).
 *
 * @param tensors - at least one tensor; all of one shape and dtype
 * @returns their sum, a new tensor
 * @throws FinepruneError `INVALID_ARGUMENT` for an empty list
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { addMany } from '@fineprune/tensor';
 *
 * const grads = Array.from({ length: 40 }, (_, i) => tf.scalar(i));
 * addMany(grads).print(); // 780, also on webgpu (tf.addN of 40 inputs is not)
 * ```
 */
export function addMany<T extends tf.Tensor>(tensors: readonly T[]): T {
  if (!Array.isArray(tensors) || tensors.length === 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'addMany needs at least one tensor.',
      fix: 'Pass a non-empty array of tensors of one shape, or skip the sum when there is nothing to add.',
    });
  }
  return tf.tidy(() => {
    let level: tf.Tensor[] = [...tensors];
    while (level.length > 1) {
      const next: tf.Tensor[] = [];
      for (let start = 0; start < level.length; start += ADD_MANY_GROUP) {
        const group = level.slice(start, start + ADD_MANY_GROUP);
        next.push(group.length === 1 ? group[0]! : tf.addN(group));
      }
      level = next;
    }
    return tensors.length === 1 ? tf.clone(level[0]!) : level[0]!;
  }) as T;
}
