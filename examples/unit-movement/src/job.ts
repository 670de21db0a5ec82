import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adam, evaluateClassifier, Pruner, type UnitSparsity, unitReport } from '@fineprune/core';
import { batches, type Dataset, evaluationBatches, loadMnist } from '@fineprune/datasets';
import { fromLayersModel } from '@fineprune/layers';
import { cubic } from '@fineprune/schedulers';
import { unitMovement, unitTopV } from '@fineprune/structured';
import { setBackend } from '@fineprune/tensor';

/** Options of {@link runUnitMovement}; the defaults are the example's run. */
export interface UnitMovementJobOptions {
  backend?: string;
  /** Share of the hidden neurons removed in each hidden layer (local Top-v over units). */
  sparsity?: number;
  /** Training examples used (the first N of MNIST's 60,000); default 4,000. */
  trainLimit?: number;
  /** Test examples evaluated (the first N of 10,000); default 2,000. */
  testLimit?: number;
  epochs?: number;
  batchSize?: number;
  seed?: number;
  dataset?: Dataset;
}

/** What the job measured. */
export interface UnitMovementJobResult {
  steps: number;
  denseAccuracy: number;
  prunedAccuracy: number;
  /** Remaining neurons of each hidden layer. */
  units: UnitSparsity[];
  /** Number of tensors alive after the run minus before it (0: no leak). */
  leakedTensors: number;
}

/** The 784-128-64-10 ReLU MLP with seeded Glorot initialisation; it outputs logits. */
export function buildMlp(seed: number): tfl.Sequential {
  const model = tfl.sequential({ name: 'mnist_mlp' });
  [128, 64, 10].forEach((units, index) => {
    model.add(
      tfl.layers.dense({
        name: `dense_${index + 1}`,
        units,
        activation: index < 2 ? 'relu' : 'linear',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + index }),
        ...(index === 0 ? { inputShape: [784] } : {}),
      }),
    );
  });
  return model;
}

/**
 * Structured movement pruning of an MNIST MLP: one learned score per hidden neuron (Eq. 2 of
 * Movement Pruning summed over the neuron's column and the next layer's row), local Top-v over the
 * neurons of each layer, and the cubic schedule of Eq. 5 with a dense warm-up (the scores of a
 * removed neuron get no gradient any more, so they must separate first).
 */
export async function runUnitMovement(options: UnitMovementJobOptions = {}): Promise<UnitMovementJobResult> {
  await setBackend(options.backend ?? 'wasm');
  const seed = options.seed ?? 42;
  const dataset = options.dataset ?? (await loadMnist());
  const limit = options.trainLimit ?? 4000;
  const train = {
    ...dataset.train,
    count: limit,
    images: dataset.train.images.subarray(0, limit * dataset.train.featureSize),
    labels: dataset.train.labels.subarray(0, limit),
  };
  const testLimit = options.testLimit ?? 2000;
  const test = {
    ...dataset.test,
    count: testLimit,
    images: dataset.test.images.subarray(0, testLimit * dataset.test.featureSize),
    labels: dataset.test.labels.subarray(0, testLimit),
  };
  const source = batches(train, { batchSize: options.batchSize ?? 100, seed });
  const totalSteps = (options.epochs ?? 4) * source.stepsPerEpoch;
  const before = tf.memory().numTensors;
  const model = buildMlp(seed);
  // The adapter lists the model's own units: each hidden Dense layer's neurons (a kernel column and
  // the next kernel's row); the output layer is left whole.
  const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
  const pruner = new Pruner({
    model: prunable,
    scores: unitMovement({ init: { type: 'uniform', scale: 0.01 } }),
    mask: unitTopV({ scope: 'local' }),
    schedule: cubic({
      finalSparsity: options.sparsity ?? 0.75,
      totalSteps,
      warmupSteps: source.stepsPerEpoch,
      cooldownSteps: source.stepsPerEpoch,
      interval: 10,
    }),
    parameters: ['dense_1/kernel', 'dense_2/kernel', 'dense_3/kernel'],
    optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) },
    seed,
  });
  const evaluate = async () => (await evaluateClassifier(prunable, evaluationBatches(test, 1000))).accuracy;
  await pruner.run({ data: source, untilStep: source.stepsPerEpoch });
  const denseAccuracy = await evaluate();
  await pruner.run({ data: source, untilStep: totalSteps });
  const prunedAccuracy = await evaluate();
  const units = await unitReport(prunable.structures(), prunable.parameters());
  pruner.dispose();
  prunable.dispose();
  model.dispose();
  const leakedTensors = tf.memory().numTensors - before;
  return { steps: totalSteps, denseAccuracy, prunedAccuracy, units, leakedTensors };
}
