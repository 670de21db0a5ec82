import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError, setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPrunableParameter } from './parameter';
import { pruneOnce } from './prune-once';
import { rejectionOf, testGlobalTopK, testLearnedScores, testMagnitude, testTopK, tinyMlp } from './testing';
import {
  type Batch,
  type MaskFunction,
  type PrunableModel,
  SPEC_VERSION,
  type ScoreStrategy,
  type SkippedWeight,
} from './types';

const BIAS: SkippedWeight = {
  name: 'fc1/bias',
  group: 'fc1',
  layerClass: 'Dense',
  shape: [3],
  size: 3,
  reason: 'weight-not-prunable',
};

/**
 * Two parameters with hand-picked weights: fc1 [[0.5, −3, 1], [2, −0.1, 4]] and fc2 [[−6], [5], [1.5]].
 * The forward pass is x · (W1 ⊙ M1) · (W2 ⊙ M2); the loss is the mean output (no task loss is needed
 * to prune by magnitude, so `withLoss: false` makes it throw).
 */
function handModel(options: { withLoss?: boolean } = {}): PrunableModel & { dispose(): void } {
  const w1 = tf.variable(
    tf.tensor2d([
      [0.5, -3, 1],
      [2, -0.1, 4],
    ]),
  );
  const w2 = tf.variable(tf.tensor2d([[-6], [5], [1.5]]));
  const p1 = createPrunableParameter({ name: 'fc1/kernel', group: 'fc1', kind: 'dense', weight: w1 });
  const p2 = createPrunableParameter({ name: 'fc2/kernel', group: 'fc2', kind: 'dense', weight: w2 });
  return {
    specVersion: SPEC_VERSION,
    name: 'hand',
    parameters: () => [p1, p2],
    forward: (x) =>
      tf.tidy(() =>
        tf.matMul(
          tf.matMul(x as tf.Tensor2D, p1.effectiveWeight() as tf.Tensor2D),
          p2.effectiveWeight() as tf.Tensor2D,
        ),
      ),
    loss: (outputs) => {
      if (options.withLoss === false) throw new Error('this model has no loss');
      return tf.mean(outputs as tf.Tensor) as tf.Scalar;
    },
    trainableVariables: () => [
      { name: 'fc1/kernel', variable: w1 },
      { name: 'fc2/kernel', variable: w2 },
    ],
    frozenVariables: () => [],
    skippedWeights: () => [BIAS],
    dispose: () => tf.dispose([w1, w2, p1.mask, p2.mask]),
  };
}

async function masksOf(model: PrunableModel): Promise<number[][][]> {
  return Promise.all(
    model.parameters().map(async (parameter) => (await parameter.mask.array()) as number[][]),
  );
}

/** A threshold mask written against the interfaces: keeps scores strictly above τ. */
const testThreshold: MaskFunction = {
  id: 'test-threshold',
  targetKind: 'threshold',
  compute: (inputs, threshold) =>
    inputs.map(({ scores }) => tf.tidy(() => tf.cast(tf.greater(scores, threshold), 'float32'))),
  toConfig: () => ({}),
};

/**
 * Scores measured on data: |g ⊙ W| with g the gradient of the model's loss over the measured
 * batches (their mean). Written against the interfaces; `compute` before `measure` is NOT_MEASURED.
 */
function testGradientScores(): ScoreStrategy & { readonly measuredBatches: number } {
  let gradients: Map<string, tf.Tensor> | undefined;
  let measuredBatches = 0;
  const dispose = () => {
    if (gradients) tf.dispose([...gradients.values()]);
    gradients = undefined;
  };
  return {
    id: 'test-gradient',
    learnable: false,
    get measuredBatches() {
      return measuredBatches;
    },
    async measure(model, batches) {
      dispose();
      const parameters = model.parameters();
      const sums = parameters.map((parameter) => tf.zeros(parameter.shape as number[]));
      let count = 0;
      for (const batch of batches) {
        const { value, grads } = tf.variableGrads(
          () => model.loss(model.forward(batch.x, { training: false }), batch),
          parameters.map((parameter) => parameter.weight),
        );
        for (const [index, parameter] of parameters.entries()) {
          const next = tf.add(sums[index]!, grads[parameter.weight.name]!);
          sums[index]!.dispose();
          sums[index] = next;
        }
        tf.dispose([value, grads] as tf.TensorContainer);
        count += 1;
      }
      measuredBatches = count;
      gradients = new Map(
        parameters.map((parameter, index) => {
          const mean = tf.div(sums[index]!, count);
          sums[index]!.dispose();
          return [parameter.name, mean];
        }),
      );
    },
    compute({ parameter }) {
      const gradient = gradients?.get(parameter.name);
      if (!gradient) {
        throw new FinepruneError({
          code: ErrorCodes.NOT_MEASURED,
          message: `No gradient for ${parameter.name}.`,
          fix: 'Measure first.',
        });
      }
      return tf.tidy(() => tf.abs(tf.mul(gradient, parameter.weight)));
    },
    dispose,
    toConfig: () => ({}),
  };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`pruneOnce on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('local selection keeps the largest |W| of each parameter, exact counts (hand-checked)', async () => {
      const model = handModel({ withLoss: false });
      const before = tf.memory().numTensors;
      const report = await pruneOnce(model, { scores: testMagnitude, mask: testTopK, sparsity: 0.5 });
      expect(tf.memory().numTensors).toBe(before);
      // fc1 |W| = 0.5 3 1 / 2 0.1 4: keeps 6 − round(3) = 3 → 3, 2, 4. fc2 |W| = 6 5 1.5: keeps 3 − round(1.5) = 1 → 6.
      expect(await masksOf(model)).toEqual([
        [
          [0, 1, 0],
          [1, 0, 1],
        ],
        [[1], [0], [0]],
      ]);
      expect(report.parameters.map((row) => [row.name, row.shape, row.kept, row.total])).toEqual([
        ['fc1/kernel', [2, 3], 3, 6],
        ['fc2/kernel', [3, 1], 1, 3],
      ]);
      expect(report.parameters[1]!.sparsity).toBeCloseTo(2 / 3, 12);
      expect([report.total, report.kept]).toEqual([9, 4]);
      expect(report.sparsity).toBeCloseTo(5 / 9, 12);
      expect(report).toMatchObject({
        scores: 'test-magnitude',
        mask: 'test-topk',
        targetKind: 'sparsity',
        target: 0.5,
      });
      model.dispose();
    });

    it('global selection ranks every parameter together (hand-checked)', async () => {
      const model = handModel({ withLoss: false });
      const report = await pruneOnce(model, { scores: testMagnitude, mask: testGlobalTopK, sparsity: 0.5 });
      // All |W| = 0.5 3 1 2 0.1 4 6 5 1.5: keeps 9 − round(4.5) = 4 → 6, 5, 4, 3.
      expect(await masksOf(model)).toEqual([
        [
          [0, 1, 0],
          [0, 0, 1],
        ],
        [[1], [1], [0]],
      ]);
      expect(report.parameters.map((row) => row.kept)).toEqual([2, 2]);
      expect(report.kept).toBe(4);
      model.dispose();
    });

    it('keeps exactly the top |W| of a random MLP, with no tensor left behind', async () => {
      const model = tinyMlp(6, 5, 3, 11);
      const before = tf.memory().numTensors;
      const report = await pruneOnce(model, { scores: testMagnitude, mask: testGlobalTopK, sparsity: 0.8 });
      expect(tf.memory().numTensors).toBe(before);
      // 30 + 15 weights: keeps 45 − round(0.8 · 45) = 45 − 36 = 9.
      expect(report.kept).toBe(9);
      const kept: number[] = [];
      const pruned: number[] = [];
      for (const parameter of model.parameters()) {
        const weights = await parameter.weight.data();
        const mask = await parameter.mask.data();
        for (const [index, weight] of weights.entries()) {
          (mask[index] === 1 ? kept : pruned).push(Math.abs(weight));
        }
      }
      expect(kept.length).toBe(9);
      expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...pruned));
      model.dispose();
    });

    it('reports what the adapter skipped and the parameters left out, and leaves those masks alone', async () => {
      const model = handModel({ withLoss: false });
      const report = await pruneOnce(model, {
        scores: testMagnitude,
        mask: testTopK,
        sparsity: 0.5,
        exclude: 'fc2/kernel',
      });
      expect(report.parameters.map((row) => row.name)).toEqual(['fc1/kernel']);
      expect(report.skipped).toEqual([
        BIAS,
        { name: 'fc2/kernel', group: 'fc2', layerClass: 'dense', shape: [3, 1], size: 3, reason: 'excluded' },
      ]);
      expect((await masksOf(model))[1]).toEqual([[1], [1], [1]]);
      model.dispose();
    });

    it('prunes with a threshold mask and a threshold target', async () => {
      const model = handModel({ withLoss: false });
      const report = await pruneOnce(model, { scores: testMagnitude, mask: testThreshold, threshold: 1.2 });
      expect(report).toMatchObject({ targetKind: 'threshold', target: 1.2 });
      // |W| > 1.2: fc1 → 3, 2, 4; fc2 → 6, 5, 1.5.
      expect(report.parameters.map((row) => row.kept)).toEqual([3, 3]);
      model.dispose();
    });

    it('measures data-driven scores on the batches given, then frees them and the measurements', async () => {
      const model = handModel();
      const scores = testGradientScores();
      const before = tf.memory().numTensors;
      function* scoring(): Generator<Batch> {
        yield { x: tf.tensor2d([[1, 2]]), y: tf.zeros([1]) };
        yield { x: tf.tensor2d([[3, -2]]), y: tf.zeros([1]) };
      }
      const report = await pruneOnce(model, {
        scores,
        mask: testTopK,
        parameters: 'fc1/kernel',
        sparsity: 0.5,
        data: scoring(),
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(scores.measuredBatches).toBe(2);
      // L = x·W1·W2 (one row), so ∂L/∂W1[i][j] = x_i · (W2)_j; mean x = [2, 0], W2 = [−6, 5, 1.5]:
      // g = [[−12, 10, 3], [0, 0, 0]], |g ⊙ W1| = [[6, 30, 3], [0, 0, 0]] → keeps 30, 6, 3 (magnitude would keep 3, 2, 4).
      expect((await masksOf(model))[0]).toEqual([
        [1, 1, 1],
        [0, 0, 0],
      ]);
      expect(report.kept).toBe(3);
      model.dispose();
    });

    it('needs no loss for data-free scores, and says to pass data when the scores need it', async () => {
      const model = handModel({ withLoss: false });
      await expect(
        pruneOnce(model, { scores: testMagnitude, mask: testTopK, sparsity: 0.3 }),
      ).resolves.toBeDefined();
      const error = await rejectionOf(
        pruneOnce(model, { scores: testGradientScores(), mask: testTopK, sparsity: 0.3 }),
      );
      expect(error.code).toBe(ErrorCodes.NOT_MEASURED);
      expect(error.message).toContain('"test-gradient" is measured on data');
      expect(error.fix).toContain('Pass data');
      model.dispose();
    });

    it('refuses compositions it cannot run, naming the cause and the fix', async () => {
      const model = handModel({ withLoss: false });
      const cases: Array<[() => Promise<unknown>, string, string]> = [
        [
          () => pruneOnce(model, { scores: testLearnedScores(), mask: testTopK, sparsity: 0.5 }),
          ErrorCodes.INCOMPATIBLE_PLUGINS,
          'Pruner',
        ],
        [
          () => pruneOnce(model, { scores: testMagnitude, mask: testTopK }),
          ErrorCodes.INVALID_ARGUMENT,
          'sparsity: 0.5',
        ],
        [
          () => pruneOnce(model, { scores: testMagnitude, mask: testTopK, sparsity: 1 }),
          ErrorCodes.INVALID_SPARSITY,
          'fraction',
        ],
        [
          () => pruneOnce(model, { scores: testMagnitude, mask: testThreshold, sparsity: 0.5 }),
          ErrorCodes.INVALID_ARGUMENT,
          'threshold',
        ],
        [
          () => pruneOnce(model, { scores: testMagnitude, mask: testTopK, sparsity: 0.5, data: [] }),
          ErrorCodes.INVALID_ARGUMENT,
          'Remove `data`',
        ],
        [
          () =>
            pruneOnce(model, { scores: testMagnitude, mask: testTopK, sparsity: 0.5, parameters: /nothing/ }),
          ErrorCodes.NO_PRUNABLE_PARAMETERS,
          'fc1/kernel, fc2/kernel',
        ],
        [
          () =>
            pruneOnce({ layers: [] } as unknown as PrunableModel, {
              scores: testMagnitude,
              mask: testTopK,
              sparsity: 0.5,
            }),
          ErrorCodes.INVALID_ARGUMENT,
          'fromLayersModel',
        ],
      ];
      for (const [run, code, fix] of cases) {
        const error = await rejectionOf(run());
        expect(error.code).toBe(code);
        expect(error.fix).toContain(fix);
      }
      expect(await masksOf(model)).toEqual([
        [
          [1, 1, 1],
          [1, 1, 1],
        ],
        [[1], [1], [1]],
      ]);
      model.dispose();
    });
  });
}
