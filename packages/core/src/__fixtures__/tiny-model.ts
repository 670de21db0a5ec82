import * as tf from '@tensorflow/tfjs-core';
import { dense, topCountMasks } from '@fineprune/tensor';
import { createPrunableParameter } from '../parameter';
import {
  type Batch,
  type MaskFunction,
  type PrunableModel,
  SPEC_VERSION,
  type ScoreStrategy,
  type SparsitySchedule,
} from '../types';

/** A 2-layer MLP (in → hidden → classes) built from raw variables, for tests of the core. */
export function tinyModel(
  inputs = 6,
  hidden = 5,
  classes = 3,
  seed = 1,
): PrunableModel & { dispose(): void } {
  const w1 = tf.tidy(() => tf.variable(tf.randomNormal([inputs, hidden], 0, 0.5, 'float32', seed)));
  const b1 = tf.variable(tf.zeros([hidden])) as tf.Variable<tf.Rank.R1>;
  const w2 = tf.tidy(() => tf.variable(tf.randomNormal([hidden, classes], 0, 0.5, 'float32', seed + 1)));
  const b2 = tf.variable(tf.zeros([classes])) as tf.Variable<tf.Rank.R1>;
  const p1 = createPrunableParameter({ name: 'fc1/kernel', group: 'fc1', kind: 'dense', weight: w1 });
  const p2 = createPrunableParameter({ name: 'fc2/kernel', group: 'fc2', kind: 'dense', weight: w2 });
  return {
    specVersion: SPEC_VERSION,
    name: 'tiny',
    parameters: () => [p1, p2],
    forward: (x) =>
      tf.tidy(() =>
        dense(
          tf.relu(dense(x as tf.Tensor2D, p1.effectiveWeight() as tf.Tensor2D, b1)),
          p2.effectiveWeight() as tf.Tensor2D,
          b2,
        ),
      ),
    loss: (outputs, batch: Batch) =>
      tf.tidy(
        () =>
          tf.losses.softmaxCrossEntropy(
            tf.oneHot(batch.y as tf.Tensor1D, classes),
            outputs as tf.Tensor2D,
          ) as tf.Scalar,
      ),
    trainableVariables: () => [
      { name: 'fc1/kernel', variable: w1 },
      { name: 'fc1/bias', variable: b1 },
      { name: 'fc2/kernel', variable: w2 },
      { name: 'fc2/bias', variable: b2 },
    ],
    frozenVariables: () => [],
    dispose: () => tf.dispose([w1, b1, w2, b2, p1.mask, p2.mask]),
  };
}

/** Deterministic batches: batch s is a fixed function of s. */
export function tinyBatches(inputs = 6, classes = 3, batchSize = 8) {
  return (step: number): Batch =>
    tf.tidy(() => ({
      x: tf.randomNormal([batchSize, inputs], 0, 1, 'float32', 1000 + step),
      y: tf.tensor1d(
        Array.from({ length: batchSize }, (_, index) => (index * 7 + step * 3) % classes),
        'int32',
      ),
    }));
}

/** Test plugins written against the interfaces alone (the core does not import plugin packages). */
export const testMagnitude: ScoreStrategy = {
  id: 'test-magnitude',
  learnable: false,
  compute: ({ parameter }) => tf.abs(parameter.weight),
  toConfig: () => ({}),
};

export function testLearnedScores(initial = 1): ScoreStrategy {
  return {
    id: 'test-learned',
    learnable: true,
    createScores: (parameter) => tf.tidy(() => tf.variable(tf.fill([...parameter.shape], initial))),
    compute: ({ scores }) => scores!.clone(),
    toConfig: () => ({ initial }),
  };
}

export const testLocalTopK: MaskFunction = {
  id: 'test-topk',
  targetKind: 'sparsity',
  async compute(inputs, sparsity) {
    const masks: tf.Tensor[] = [];
    for (const { parameter, scores } of inputs) {
      const values = (await scores.data()) as Float32Array;
      const keep = values.length - Math.round(sparsity * values.length);
      masks.push(tf.tensor(topCountMasks([values], keep)[0]!, [...parameter.shape]));
    }
    return masks;
  },
  toConfig: () => ({}),
};

export function testLinearSchedule(final: number, steps: number, interval = 1): SparsitySchedule {
  return {
    id: 'test-linear',
    kind: 'sparsity',
    updateInterval: interval,
    valueAt: (step) => Math.min(final, (final * Math.floor(step / interval) * interval) / steps),
    toConfig: () => ({ final, steps }),
  };
}
