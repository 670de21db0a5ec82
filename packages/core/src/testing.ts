/**
 * Small models and minimal plugins for tests of plugins and models, written against the interfaces
 * alone: plugin packages do not import each other, so their tests share these instead.
 * Published as `@fineprune/core/testing`.
 *
 * @example
 * ```ts
 * import { tinyMlp, tinyBatches, testTopK, fixedSparsity } from '@fineprune/core/testing';
 * const model = tinyMlp();
 * const pruner = new Pruner({ model, scores: myScores(), mask: testTopK, schedule: fixedSparsity(0.5), optimizers });
 * await pruner.run({ data: tinyBatches(), untilStep: 10 });
 * ```
 */
import * as tf from '@tensorflow/tfjs-core';
import { createPrunableParameter } from './parameter';
import { poolUnits } from './structures';
import {
  type Batch,
  type MaskFunction,
  type PrunableModel,
  SPEC_VERSION,
  type ScoreStrategy,
  type SparsitySchedule,
} from './types';
import { dense } from '@fineprune/tensor';
import { FinepruneError } from '@fineprune/tensor/errors';
import { topCountMasks } from '@fineprune/tensor/select';

/**
 * A 2-layer MLP (in → hidden → classes) on raw variables; forward uses the effective weights. Its
 * one structure, `fc1/neurons`, is the hidden layer: columns of `fc1/kernel`, rows of `fc2/kernel`.
 */
export function tinyMlp(inputs = 6, hidden = 5, classes = 3, seed = 1): PrunableModel & { dispose(): void } {
  const w1 = tf.tidy(() => tf.variable(tf.randomNormal([inputs, hidden], 0, 0.5, 'float32', seed)));
  const b1 = tf.tidy(() => tf.variable(tf.zeros([hidden])));
  const w2 = tf.tidy(() => tf.variable(tf.randomNormal([hidden, classes], 0, 0.5, 'float32', seed + 1)));
  const b2 = tf.tidy(() => tf.variable(tf.zeros([classes])));
  const p1 = createPrunableParameter({ name: 'fc1/kernel', group: 'fc1', kind: 'dense', weight: w1 });
  const p2 = createPrunableParameter({ name: 'fc2/kernel', group: 'fc2', kind: 'dense', weight: w2 });
  return {
    specVersion: SPEC_VERSION,
    name: 'tiny-mlp',
    parameters: () => [p1, p2],
    structures: () => [
      {
        name: 'fc1/neurons',
        kind: 'neuron',
        count: hidden,
        members: [
          { parameter: 'fc1/kernel', axis: 1, role: 'output' },
          { parameter: 'fc2/kernel', axis: 0, role: 'input' },
        ],
      },
    ],
    forward: (x) =>
      tf.tidy(() =>
        dense(
          tf.relu(dense(x as tf.Tensor2D, p1.effectiveWeight() as tf.Tensor2D, b1 as tf.Tensor1D)),
          p2.effectiveWeight() as tf.Tensor2D,
          b2 as tf.Tensor1D,
        ),
      ),
    loss: (outputs, batch: Batch) => crossEntropy(outputs as tf.Tensor2D, batch.y as tf.Tensor1D, classes),
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

/** Mean softmax cross-entropy of logits against integer labels. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, classes: number): tf.Scalar {
  return tf.tidy(() => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, classes), logits) as tf.Scalar);
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

/** Local Top-k mask written against the interfaces (plugin packages do not import each other). */
export const testTopK: MaskFunction = {
  id: 'test-topk',
  targetKind: 'sparsity',
  async compute(inputs, sparsity) {
    const masks: tf.Tensor[] = [];
    for (const { parameter, scores } of inputs) {
      const values = Float32Array.from(await scores.data());
      const keep = values.length - Math.round(sparsity * values.length);
      masks.push(tf.tensor(topCountMasks([values], keep)[0]!, [...parameter.shape]));
    }
    return masks;
  },
  toConfig: () => ({}),
};

/** Global Top-k mask written against the interfaces: ranks the scores of all inputs together. */
export const testGlobalTopK: MaskFunction = {
  id: 'test-global-topk',
  targetKind: 'sparsity',
  async compute(inputs, sparsity) {
    const values = await Promise.all(
      inputs.map(async ({ scores }) => Float32Array.from(await scores.data())),
    );
    const total = values.reduce((sum, array) => sum + array.length, 0);
    const masks = topCountMasks(values, total - Math.round(sparsity * total));
    return inputs.map(({ parameter }, index) => tf.tensor(masks[index]!, [...parameter.shape]));
  },
  toConfig: () => ({}),
};

/** A constant sparsity schedule. */
export function fixedSparsity(sparsity: number): SparsitySchedule {
  return { id: 'test-fixed', kind: 'sparsity', valueAt: () => sparsity, toConfig: () => ({ sparsity }) };
}

/** Learned scores written against the interfaces: a variable per parameter filled with `initial`. */
export function testLearnedScores(initial = 0): ScoreStrategy {
  return {
    id: 'test-learned',
    learnable: true,
    createScores: (parameter) => tf.tidy(() => tf.variable(tf.fill([...parameter.shape], initial))),
    compute: ({ scores }) => scores!.clone(),
    toConfig: () => ({ initial }),
  };
}

/** A schedule of a fixed threshold (kind `threshold`) or of no target (kind `none`). */
export function fixedTarget(kind: 'threshold' | 'none', value = 0): SparsitySchedule {
  return { id: `test-${kind}`, kind, valueAt: () => value, toConfig: () => ({ kind, value }) };
}

/** Magnitude scores written against the interfaces: S = |W|. */
export const testMagnitude: ScoreStrategy = {
  id: 'test-magnitude',
  learnable: false,
  compute: ({ parameter }) => tf.abs(parameter.weight),
  toConfig: () => ({}),
};

/** A sparsity that grows linearly to `final` over `steps`, changing every `interval` steps. */
export function testLinearSchedule(final: number, steps: number, interval = 1): SparsitySchedule {
  return {
    id: 'test-linear',
    kind: 'sparsity',
    updateInterval: interval,
    valueAt: (step) => Math.min(final, (final * Math.floor(step / interval) * interval) / steps),
    toConfig: () => ({ final, steps }),
  };
}

/**
 * Runs `fn` and returns the FinepruneError it throws; any other error is rethrown, and returning
 * normally fails the test.
 *
 * @example
 * ```ts
 * expect(errorOf(() => cubic({ finalSparsity: 1, totalSteps: 10 })).code).toBe('INVALID_SPARSITY');
 * ```
 */
export function errorOf(fn: () => unknown): FinepruneError {
  try {
    fn();
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a FinepruneError, but nothing was thrown');
}

/**
 * Awaits `promise` and returns the FinepruneError it rejects with; any other error is rethrown, and
 * resolving fails the test.
 *
 * @example
 * ```ts
 * expect((await rejectionOf(pruneOnce(model, { scores, mask }))).code).toBe('INVALID_ARGUMENT');
 * ```
 */
export async function rejectionOf(promise: Promise<unknown>): Promise<FinepruneError> {
  try {
    await promise;
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a FinepruneError, but the promise resolved');
}

/** Unit scores written against the interfaces: the L1 norm of each unit over every member. */
export const testUnitMagnitude: ScoreStrategy = {
  id: 'test-unit-magnitude',
  learnable: false,
  compute: ({ parameter }) => tf.abs(parameter.weight),
  computeUnits: ({ structure, members }) =>
    tf.tidy(() =>
      tf.addN(
        structure.members.map((member, index) =>
          poolUnits(tf.abs(members[index]!.weight), member, structure.count, 'sum'),
        ),
      ),
    ),
  toConfig: () => ({}),
};

/** Learned unit scores written against the interfaces: one variable per structure, filled with `initial`. */
export function testUnitScores(initial: number | readonly number[] = 0): ScoreStrategy {
  return {
    id: 'test-unit-scores',
    learnable: true,
    compute: ({ parameter }) => tf.zeros([...parameter.shape]),
    createUnitScores: (structure) =>
      tf.tidy(() =>
        tf.variable(
          typeof initial === 'number' ? tf.fill([structure.count], initial) : tf.tensor1d([...initial]),
        ),
      ),
    computeUnits: ({ scores }) => scores!.clone(),
    toConfig: () => ({}),
  };
}

/** Local Top-k over the units of each structure, written against the interfaces. */
export const testUnitTopK: MaskFunction = {
  id: 'test-unit-topk',
  targetKind: 'sparsity',
  requiresStructures: true,
  compute: () => {
    throw new Error('test-unit-topk selects units only');
  },
  async computeUnits(inputs, sparsity) {
    const masks: tf.Tensor[] = [];
    for (const { scores } of inputs) {
      const values = Float32Array.from(await scores.data());
      const keep = values.length - Math.round(sparsity * values.length);
      masks.push(tf.tensor1d(topCountMasks([values], keep)[0]!));
    }
    return masks;
  },
  toConfig: () => ({}),
};
