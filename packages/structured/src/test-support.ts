import * as tf from '@tensorflow/tfjs-core';
import type { Batch, PrunableModel, PrunableParameter } from '@fineprune/core';

/**
 * The central difference of the task loss along a direction D of the masks,
 * (L(M + hD) − L(M − hD)) / 2h: the derivative of the loss in a continuous mask value shared by a
 * group of weights (a unit, a block), which is what the straight-through gradient of a group score
 * equals (Eq. 2 of Movement Pruning summed over the group). Restores the masks.
 */
export async function maskDirectionalDerivative(
  model: PrunableModel,
  batch: Batch,
  directions: ReadonlyMap<PrunableParameter, tf.Tensor>,
  h: number,
): Promise<number> {
  const entries = [...directions.entries()];
  const saved = entries.map(([parameter]) => parameter.mask.clone());
  const lossAt = async (step: number) => {
    entries.forEach(([parameter, direction], index) => {
      parameter.mask.assign(tf.tidy(() => tf.add(saved[index]!, tf.mul(direction, step))));
    });
    const loss = tf.tidy(() => model.loss(model.forward(batch.x, { training: false }), batch));
    const value = (await loss.data())[0]!;
    loss.dispose();
    return value;
  };
  const plus = await lossAt(h);
  const minus = await lossAt(-h);
  entries.forEach(([parameter], index) => {
    parameter.mask.assign(saved[index]!);
  });
  tf.dispose(saved);
  return (plus - minus) / (2 * h);
}

/** Values of a tensor as a plain array. */
export async function valuesOf(tensor: tf.Tensor): Promise<number[]> {
  return Array.from(await tensor.data());
}
