import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  adam,
  evaluateClassifier,
  type PrunableModel,
  Pruner,
  type Structure,
  type UnitSparsity,
  unitReport,
} from '@fineprune/core';
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
 * The neurons of each hidden Dense layer of a Dense stack as structures: a neuron is a column of
 * its layer's kernel and the row of the next kernel that reads it. (A model states its own units;
 * the adapters of `@fineprune/layers` list them for every model once they implement `structures()`.)
 */
export function denseNeurons(model: tfl.Sequential): Structure[] {
  const dense = model.layers.filter((layer) => layer.getClassName() === 'Dense');
  return dense.slice(0, -1).map((layer, index) => ({
    name: `${layer.name}/neurons`,
    kind: 'neuron',
    count: (layer.getConfig().units as number) ?? 0,
    members: [
      { parameter: `${layer.name}/kernel`, axis: 1, role: 'output' },
      { parameter: `${dense[index + 1]!.name}/kernel`, axis: 0, role: 'input' },
    ],
  }));
}

/** A prunable model with the given structures, delegating everything else to `prunable`. */
export function withStructures(prunable: PrunableModel, structures: readonly Structure[]): PrunableModel {
  return {
    specVersion: prunable.specVersion,
    name: prunable.name,
    parameters: () => prunable.parameters(),
    forward: (x, options) => prunable.forward(x, options),
    loss: (outputs, batch) => prunable.loss(outputs, batch),
    trainableVariables: () => prunable.trainableVariables(),
    frozenVariables: () => prunable.frozenVariables(),
    stateVariables: () => prunable.stateVariables?.() ?? [],
    structures: () => structures,
  };
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
  const layersModel = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
  const prunable = withStructures(layersModel, denseNeurons(model));
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
  const units = await unitReport(prunable.structures!(), prunable.parameters());
  pruner.dispose();
  layersModel.dispose();
  model.dispose();
  const leakedTensors = tf.memory().numTensors - before;
  return { steps: totalSteps, denseAccuracy, prunedAccuracy, units, leakedTensors };
}
