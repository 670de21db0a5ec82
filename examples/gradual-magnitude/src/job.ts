import * as tfl from '@tensorflow/tfjs-layers';
import {
  Pruner,
  adam,
  evaluateClassifier,
  sparsityReport,
  type SparsityReport,
  type StepResult,
} from '@fineprune/core';
import { batches, evaluationBatches, loadMnist, type Dataset } from '@fineprune/datasets';
import { fileSystem, fromLayersModel, saveStripped } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { cubic } from '@fineprune/schedulers';
import { magnitude } from '@fineprune/scores';
import { setBackend, type BackendSelection } from '@fineprune/tensor';

/** Options of {@link runGradualMagnitude}; the defaults are the main job. */
export interface GradualMagnitudeOptions {
  backend?: string;
  /** Final sparsity v_f. */
  sparsity?: number;
  epochs?: number;
  /** Dense epochs before pruning starts (t_i). */
  warmupEpochs?: number;
  /** Epochs at the final sparsity at the end (t_f). */
  cooldownEpochs?: number;
  /** Pruning interval Δt in steps. */
  interval?: number;
  batchSize?: number;
  learningRate?: number;
  scope?: 'local' | 'global';
  seed?: number;
  /** Use only the first N training examples (for quick runs); default all 60,000. */
  trainLimit?: number;
  /** Where the stripped model is saved; nothing is saved when undefined. */
  outputDirectory?: string;
  dataset?: Dataset;
  onStep?(result: StepResult, totalSteps: number): void;
  onEvaluate?(label: string, accuracy: number): void;
}

/** What the job measured. */
export interface GradualMagnitudeResult {
  backend: BackendSelection;
  steps: number;
  denseAccuracy: number;
  prunedAccuracy: number;
  prunedLoss: number;
  report: SparsityReport;
  seconds: number;
  savedTo?: string;
}

/** The 784-300-100-10 ReLU MLP with seeded Glorot initialisation; it outputs logits. */
export function buildMlp(seed: number): tfl.Sequential {
  const model = tfl.sequential({ name: 'mnist_mlp' });
  const sizes = [300, 100, 10];
  for (const [index, units] of sizes.entries()) {
    model.add(
      tfl.layers.dense({
        name: `dense_${index + 1}`,
        units,
        activation: index < sizes.length - 1 ? 'relu' : 'linear',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + index }),
        ...(index === 0 ? { inputShape: [784] } : {}),
      }),
    );
  }
  return model;
}

/**
 * Gradual magnitude pruning (Zhu & Gupta, 2018) of an MNIST MLP: dense warm-up, then the cubic
 * schedule of Eq. (5) of Movement Pruning with global Top-v selection of |W|, then a cool-down.
 */
export async function runGradualMagnitude(
  options: GradualMagnitudeOptions = {},
): Promise<GradualMagnitudeResult> {
  const started = performance.now();
  const backend = await setBackend(options.backend ?? 'wasm');
  const seed = options.seed ?? 42;
  const batchSize = options.batchSize ?? 100;
  const epochs = options.epochs ?? 10;
  const warmupEpochs = options.warmupEpochs ?? 2;
  const cooldownEpochs = options.cooldownEpochs ?? 3;
  const dataset = options.dataset ?? (await loadMnist());
  const train =
    options.trainLimit === undefined
      ? dataset.train
      : {
          ...dataset.train,
          count: options.trainLimit,
          images: dataset.train.images.subarray(0, options.trainLimit * dataset.train.featureSize),
          labels: dataset.train.labels.subarray(0, options.trainLimit),
        };
  const source = batches(train, { batchSize, seed });
  const totalSteps = epochs * source.stepsPerEpoch;
  const warmupSteps = warmupEpochs * source.stepsPerEpoch;

  const model = buildMlp(seed);
  const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
  const pruner = new Pruner({
    model: prunable,
    scores: magnitude(),
    mask: topV({ scope: options.scope ?? 'global' }),
    schedule: cubic({
      initialSparsity: 0,
      finalSparsity: options.sparsity ?? 0.9,
      totalSteps,
      warmupSteps,
      cooldownSteps: cooldownEpochs * source.stepsPerEpoch,
      interval: options.interval ?? 100,
    }),
    optimizers: { weights: adam({ learningRate: options.learningRate ?? 1e-3 }) },
    seed,
  });
  const evaluate = async (label: string) => {
    const metrics = await evaluateClassifier(prunable, evaluationBatches(dataset.test, 1000));
    options.onEvaluate?.(label, metrics.accuracy);
    return metrics;
  };
  const onStep = (result: StepResult) => options.onStep?.(result, totalSteps);
  await pruner.run({ data: source, untilStep: warmupSteps, onStep });
  const dense = await evaluate('dense (end of warm-up)');
  await pruner.run({ data: source, untilStep: totalSteps, onStep });
  const pruned = await evaluate('pruned');
  const report = await sparsityReport(prunable.parameters());
  let savedTo: string | undefined;
  if (options.outputDirectory) {
    await saveStripped(prunable, fileSystem(options.outputDirectory));
    savedTo = options.outputDirectory;
  }
  pruner.dispose();
  prunable.dispose();
  model.dispose();
  return {
    backend,
    steps: totalSteps,
    denseAccuracy: dense.accuracy,
    prunedAccuracy: pruned.accuracy,
    prunedLoss: pruned.loss,
    report,
    seconds: (performance.now() - started) / 1000,
    ...(savedTo ? { savedTo } : {}),
  };
}
