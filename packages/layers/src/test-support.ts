/** Helpers shared by this package's tests: tiny inline plugins and deterministic models (not published). */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Batch, MaskFunction, ScoreStrategy, SkippedWeight, SparsitySchedule } from '@fineprune/core';
import { readFloat32, topCountMasks } from '@fineprune/tensor';
import { expect } from 'vitest';
import type { LayersPrunableModel } from './from-layers-model';

export const BACKENDS = ['cpu', 'wasm'] as const;

/** |W| as scores. */
export function testMagnitude(): ScoreStrategy {
  return {
    id: 'test-magnitude',
    learnable: false,
    compute: ({ parameter }) => tf.abs(parameter.weight),
    toConfig: () => ({}),
  };
}

/** Local top-k: keeps round((1 − sparsity)·n) of the largest scores of each parameter. */
export function testTopK(): MaskFunction {
  return {
    id: 'test-top-k',
    targetKind: 'sparsity',
    async compute(inputs, target) {
      const masks: tf.Tensor[] = [];
      for (const { parameter, scores } of inputs) {
        const values = await readFloat32(scores);
        const keep = Math.round((1 - target) * values.length);
        const [mask] = topCountMasks([values], keep);
        masks.push(tf.tensor(mask!, [...parameter.shape]));
      }
      return masks;
    },
    toConfig: () => ({}),
  };
}

/** A constant sparsity. */
export function testConstant(sparsity: number): SparsitySchedule {
  return { id: 'test-constant', kind: 'sparsity', valueAt: () => sparsity, toConfig: () => ({ sparsity }) };
}

/** Sparsity rising by `perStep` each step up to `final`. */
export function testRamp(perStep: number, final: number): SparsitySchedule {
  return {
    id: 'test-ramp',
    kind: 'sparsity',
    valueAt: (step) => Math.min(final, step * perStep),
    toConfig: () => ({ perStep, final }),
  };
}

/** A seeded MLP 8 → 16 → 12 → 3 with explicit layer names. */
export function mlp(seed = 1, options: { outputActivation?: string } = {}): tfl.LayersModel {
  const init = (offset: number) => tfl.initializers.glorotUniform({ seed: seed * 100 + offset });
  return tfl.sequential({
    name: `mlp_${seed}`,
    layers: [
      tfl.layers.dense({
        name: 'fc1',
        inputShape: [8],
        units: 16,
        activation: 'relu',
        kernelInitializer: init(1),
        biasInitializer: 'ones',
      }),
      tfl.layers.dense({ name: 'fc2', units: 12, activation: 'tanh', kernelInitializer: init(2) }),
      tfl.layers.dense({
        name: 'out',
        units: 3,
        kernelInitializer: init(3),
        ...(options.outputActivation ? { activation: options.outputActivation as 'softmax' } : {}),
      }),
    ],
  });
}

/** Deterministic batches cut from fixed tensors: batch `s` is rows [16·(s mod 4), +16). */
export function fixedData(seed = 7): {
  x: tf.Tensor2D;
  y: tf.Tensor1D;
  batch(step: number): Batch;
  dispose(): void;
} {
  const x = tf.randomNormal([64, 8], 0, 1, 'float32', seed) as tf.Tensor2D;
  const y = tf.tidy(() =>
    tf.cast(tf.floor(tf.randomUniform([64], 0, 3, 'float32', seed + 1)), 'int32'),
  ) as tf.Tensor1D;
  return {
    x,
    y,
    batch: (step) => {
      const start = (step % 4) * 16;
      return { x: tf.slice(x, [start, 0], [16, 8]), y: tf.slice(y, [start], [16]) };
    },
    dispose: () => tf.dispose([x, y]),
  };
}

export async function values(tensor: tf.Tensor | tf.Tensor[] | tf.Variable): Promise<number[]> {
  const single = Array.isArray(tensor) ? tensor[0]! : tensor;
  return Array.from(await single.data());
}

/** Every pair of entries within `tolerance`. */
export async function expectClose(actual: tf.Tensor, expected: tf.Tensor, tolerance: number): Promise<void> {
  expect(actual.shape).toEqual(expected.shape);
  const [a, b] = await Promise.all([actual.data(), expected.data()]);
  let worst = 0;
  for (let index = 0; index < a.length; index += 1) worst = Math.max(worst, Math.abs(a[index]! - b[index]!));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

/** Runs `fn` and checks that the number of live tensors is unchanged. */
export async function expectNoLeak<T>(fn: () => Promise<T> | T): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await fn();
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

/** Zeros a pseudo-random half of a parameter's mask (deterministic). */
export function maskHalf(mask: tf.Variable, seed = 3): void {
  tf.tidy(() =>
    mask.assign(tf.cast(tf.greater(tf.randomUniform(mask.shape, 0, 1, 'float32', seed), 0.5), 'float32')),
  );
}

/** Unwraps a wrapped model and disposes the model. */
export function release(prunable: LayersPrunableModel): void {
  prunable.unwrap().dispose();
}

/**
 * Conv2D (kernel, bias) → BatchNormalization → DepthwiseConv2D (kernel, bias) → SeparableConv2D (a
 * weighted class the adapter does not prune) → global average pooling → Dense (kernel, bias).
 */
export function mixedModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [6, 6, 2], name: 'image' });
  let x = tfl.layers.conv2d({ name: 'conv', filters: 4, kernelSize: 3, padding: 'same' }).apply(input);
  x = tfl.layers.batchNormalization({ name: 'bn' }).apply(x);
  x = tfl.layers.reLU({ name: 'relu' }).apply(x);
  x = tfl.layers.depthwiseConv2d({ name: 'depthwise', kernelSize: 3, padding: 'same' }).apply(x);
  x = tfl.layers.separableConv2d({ name: 'separable', filters: 6, kernelSize: 3 }).apply(x);
  x = tfl.layers.globalAveragePooling2d({ name: 'pool' }).apply(x);
  const output = tfl.layers.dense({ name: 'logits', units: 3 }).apply(x) as tfl.SymbolicTensor;
  return tfl.model({ name: 'mixed', inputs: input, outputs: output });
}

export function skipped(
  name: string,
  layerClass: string,
  shape: number[],
  reason: SkippedWeight['reason'],
): SkippedWeight {
  return {
    name,
    group: name.slice(0, name.indexOf('/')),
    layerClass,
    shape,
    size: shape.reduce((a, b) => a * b, 1),
    reason,
  };
}

/** What the adapter must report for {@link mixedModel}, written out by hand from the layer definitions. */
export const MIXED_SKIPPED: SkippedWeight[] = [
  skipped('conv/bias', 'Conv2D', [4], 'weight-not-prunable'),
  skipped('bn/gamma', 'BatchNormalization', [4], 'layer-not-prunable'),
  skipped('bn/beta', 'BatchNormalization', [4], 'layer-not-prunable'),
  skipped('bn/moving_mean', 'BatchNormalization', [4], 'layer-not-prunable'),
  skipped('bn/moving_variance', 'BatchNormalization', [4], 'layer-not-prunable'),
  skipped('depthwise/bias', 'DepthwiseConv2D', [4], 'weight-not-prunable'),
  skipped('separable/depthwise_kernel', 'SeparableConv2D', [3, 3, 4, 1], 'layer-not-prunable'),
  skipped('separable/pointwise_kernel', 'SeparableConv2D', [1, 1, 4, 6], 'layer-not-prunable'),
  skipped('separable/bias', 'SeparableConv2D', [6], 'layer-not-prunable'),
  skipped('logits/bias', 'Dense', [3], 'weight-not-prunable'),
];
