/** Models and mask helpers for the structures() and shrink tests (not published). */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expandUnits, type Structure } from '@fineprune/core';
import type { LayersPrunableModel } from './from-layers-model';

const init = (seed: number) => tfl.initializers.glorotUniform({ seed });

/** Gives every weight of the model seeded random values (nonzero biases, BN statistics away from 0/1). */
export function randomiseWeights(model: tfl.LayersModel, seed: number): void {
  const values = model.weights.map((variable, index) =>
    tf.tidy(() => {
      const shape = variable.shape as number[];
      const name = variable.originalName;
      if (name.endsWith('moving_variance')) return tf.randomUniform(shape, 0.5, 2, 'float32', seed + index);
      if (name.endsWith('gamma')) return tf.randomUniform(shape, 0.5, 1.5, 'float32', seed + index);
      return tf.randomNormal(shape, 0, 0.5, 'float32', seed + index);
    }),
  );
  model.setWeights(values);
  tf.dispose(values);
}

/** conv1 (same) → bn → relu → conv2 (valid) → bn2 → flatten → dense → logits. */
export function convChain(): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 2], name: 'image' });
  let x = tfl.layers
    .conv2d({ name: 'conv1', filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: init(1) })
    .apply(input);
  x = tfl.layers.batchNormalization({ name: 'bn1' }).apply(x);
  x = tfl.layers.reLU({ name: 'relu1' }).apply(x);
  x = tfl.layers
    .conv2d({ name: 'conv2', filters: 5, kernelSize: 3, padding: 'valid', kernelInitializer: init(2) })
    .apply(x);
  x = tfl.layers.batchNormalization({ name: 'bn2' }).apply(x);
  x = tfl.layers.flatten({ name: 'flatten' }).apply(x);
  x = tfl.layers.dense({ name: 'fc', units: 7, activation: 'relu', kernelInitializer: init(3) }).apply(x);
  const output = tfl.layers.dense({ name: 'logits', units: 3, kernelInitializer: init(4) }).apply(x);
  return tfl.model({ name: 'conv_chain', inputs: input, outputs: output as tfl.SymbolicTensor });
}

/** conv_in (1×1) → depthwise (3×3 same) → relu → conv_out (1×1) → global pool → logits. */
export function depthwiseBlock(): tfl.LayersModel {
  const input = tfl.input({ shape: [5, 5, 3], name: 'image' });
  let x = tfl.layers
    .conv2d({ name: 'conv_in', filters: 6, kernelSize: 1, activation: 'relu', kernelInitializer: init(5) })
    .apply(input);
  x = tfl.layers.depthwiseConv2d({ name: 'depthwise', kernelSize: 3, padding: 'same' }).apply(x);
  x = tfl.layers.batchNormalization({ name: 'bn' }).apply(x);
  x = tfl.layers.reLU({ name: 'relu' }).apply(x);
  x = tfl.layers.conv2d({ name: 'conv_out', filters: 4, kernelSize: 1, kernelInitializer: init(6) }).apply(x);
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x);
  const output = tfl.layers.dense({ name: 'logits', units: 3, kernelInitializer: init(7) }).apply(x);
  return tfl.model({ name: 'depthwise_block', inputs: input, outputs: output as tfl.SymbolicTensor });
}

/** stem → (branch: relu → conv_b) + stem → conv_c → global pool → logits: conv_c reads stem + conv_b. */
export function residualBlock(): tfl.LayersModel {
  const input = tfl.input({ shape: [5, 5, 2], name: 'image' });
  const stem = tfl.layers
    .conv2d({ name: 'stem', filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(8) })
    .apply(input);
  let branch = tfl.layers.reLU({ name: 'relu' }).apply(stem);
  branch = tfl.layers
    .conv2d({ name: 'conv_b', filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: init(9) })
    .apply(branch);
  const sum = tfl.layers.add({ name: 'add' }).apply([stem, branch] as tfl.SymbolicTensor[]);
  let x = tfl.layers
    .conv2d({ name: 'conv_c', filters: 3, kernelSize: 1, kernelInitializer: init(10) })
    .apply(sum);
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x);
  const output = tfl.layers.dense({ name: 'logits', units: 2, kernelInitializer: init(11) }).apply(x);
  return tfl.model({ name: 'residual', inputs: input, outputs: output as tfl.SymbolicTensor });
}

/**
 * Zeros units of a structure in the masks of its members (all members, or only those named in
 * `only`: a parameter name, or `name@output` / `name@input` for one role), as a unit mask spread
 * over each parameter.
 */
export function maskUnits(
  prunable: LayersPrunableModel,
  structure: Structure,
  units: readonly number[],
  only?: readonly string[],
): void {
  const values = Array.from({ length: structure.count }, (_, unit) => (units.includes(unit) ? 0 : 1));
  for (const member of structure.members) {
    if (only && !only.includes(member.parameter) && !only.includes(`${member.parameter}@${member.role}`))
      continue;
    const { mask } = prunable.parameter(member.parameter);
    tf.tidy(() => mask.assign(tf.mul(mask, expandUnits(tf.tensor1d(values), member, mask.shape))));
  }
}

/** The structure of that name; throws when there is none. */
export function structureNamed(prunable: LayersPrunableModel, name: string): Structure {
  const structure = prunable.structures().find((candidate) => candidate.name === name);
  if (!structure)
    throw new Error(
      `no structure ${name}: ${prunable
        .structures()
        .map((s) => s.name)
        .join(', ')}`,
    );
  return structure;
}
