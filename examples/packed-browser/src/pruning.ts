/**
 * The pruning the packed packages must do, written once against their public API: a one-shot
 * magnitude pruning of a small LayersModel to 50% and a short gradual pruning (cubic schedule, a
 * few SGD steps). The browser page runs it on wasm and WebGPU; the Node consumers run it as an ES
 * module and as CommonJS. It reports raw numbers; the test computes what they must be on its own.
 */
import { type Batch, Pruner, type PrunableParameter, pruneOnce, sgd } from '@fineprune/core';
import { fromLayersModel } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { magnitude } from '@fineprune/scores';
import { cubic } from '@fineprune/schedulers';
import { createRandom } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** The model: 12 inputs, a ReLU layer of 16, 4 logits. Its kernels hold 12·16 + 16·4 = 256 weights. */
export const LAYER_SIZES = [12, 16, 4] as const;

/** One prunable kernel, read back as plain numbers. */
export interface KernelReport {
  name: string;
  shape: number[];
  /** Raw weights W (the adapter keeps them; the mask hides the pruned ones). */
  weights: number[];
  /** The mask M. */
  mask: number[];
  /** What the layer computes with: W ⊙ M. */
  effective: number[];
}

/** What one backend did. */
export interface PruningReport {
  backend: string;
  /** `kept` is what pruneOnce's report says it kept. */
  oneShot: { sparsity: number; kept: number; kernels: KernelReport[] };
  gradual: {
    finalSparsity: number;
    totalSteps: number;
    warmupSteps: number;
    cooldownSteps: number;
    /** Per step: the step number after it, its target, the kept weights after it, the task loss. */
    steps: Array<{ step: number; target: number; kept: number; loss: number }>;
    /** The loss of the dense model on the training batch, before any step. */
    initialLoss: number;
    kernels: KernelReport[];
  };
  /** Live tensors before and after (the runs dispose everything they make). */
  tensorsBefore: number;
  tensorsAfter: number;
}

/** A seeded model, the same on every backend and in every format. */
function seededModel(seed: number): tfl.Sequential {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ units: LAYER_SIZES[1], activation: 'relu', inputShape: [LAYER_SIZES[0]] }),
      tfl.layers.dense({ units: LAYER_SIZES[2] }),
    ],
  });
  const random = createRandom(seed);
  const values = model.weights.map((weight) => {
    const shape = weight.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const entries = Float32Array.from({ length: size }, () =>
      weight.name.includes('kernel') ? (random.next() * 2 - 1) * 0.6 : 0,
    );
    return tf.tensor(entries, shape);
  });
  model.setWeights(values);
  tf.dispose(values);
  return model;
}

async function kernels(parameters: readonly PrunableParameter[]): Promise<KernelReport[]> {
  const reports: KernelReport[] = [];
  for (const parameter of parameters) {
    const effective = parameter.effectiveWeight();
    reports.push({
      name: parameter.name,
      shape: [...parameter.shape],
      weights: Array.from(await parameter.weight.data()),
      mask: Array.from(await parameter.mask.data()),
      effective: Array.from(await effective.data()),
    });
    effective.dispose();
  }
  return reports;
}

/** A fixed training batch: 32 examples whose class is the sign pattern of their first two inputs. */
function trainingBatch(seed: number): Batch {
  const random = createRandom(seed);
  const count = 32;
  const x = Float32Array.from({ length: count * LAYER_SIZES[0] }, () => random.next() * 2 - 1);
  const labels = Int32Array.from({ length: count }, (_, row) => {
    const a = x[row * LAYER_SIZES[0]]! > 0 ? 1 : 0;
    const b = x[row * LAYER_SIZES[0] + 1]! > 0 ? 2 : 0;
    return a + b;
  });
  return { x: tf.tensor2d(x, [count, LAYER_SIZES[0]]), y: tf.tensor1d(labels, 'int32') };
}

async function keptCount(parameters: readonly PrunableParameter[]): Promise<number> {
  let kept = 0;
  for (const parameter of parameters) {
    const sum = tf.sum(parameter.mask);
    kept += (await sum.data())[0]!;
    sum.dispose();
  }
  return kept;
}

async function gradualPruning(): Promise<PruningReport['gradual']> {
  const options = { finalSparsity: 0.5, totalSteps: 8, warmupSteps: 2, cooldownSteps: 2 };
  const model = seededModel(2);
  const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
  const pruner = new Pruner({
    model: prunable,
    scores: magnitude(),
    mask: topV({ scope: 'global' }),
    schedule: cubic({ ...options, interval: 1 }),
    optimizers: { weights: sgd({ learningRate: 0.5 }) },
  });
  const batch = trainingBatch(3);
  const initial = tf.tidy(() => prunable.loss(prunable.forward(batch.x, { training: false }), batch));
  const initialLoss = (await initial.data())[0]!;
  initial.dispose();
  const steps: PruningReport['gradual']['steps'] = [];
  for (let step = 0; step < options.totalSteps; step += 1) {
    // trainStep leaves the batch to its caller: the same one serves every step.
    const result = await pruner.trainStep(batch);
    steps.push({
      step: result.step,
      target: Object.values(result.targets)[0]!,
      kept: await keptCount(prunable.parameters()),
      loss: result.taskLoss,
    });
  }
  const report = { ...options, steps, initialLoss, kernels: await kernels(prunable.parameters()) };
  tf.dispose([batch.x as tf.Tensor, batch.y as tf.Tensor]);
  pruner.dispose();
  prunable.dispose();
  model.dispose();
  return report;
}

async function oneShotPruning(sparsity: number): Promise<PruningReport['oneShot']> {
  const model = seededModel(1);
  const prunable = fromLayersModel(model); // no loss, no optimizer: nothing is trained
  const result = await pruneOnce(prunable, {
    scores: magnitude(),
    mask: topV({ scope: 'global' }),
    sparsity,
  });
  const report = { sparsity, kept: result.kept, kernels: await kernels(prunable.parameters()) };
  prunable.dispose();
  model.dispose();
  return report;
}

/**
 * Runs both prunings on the active backend.
 *
 * @example
 * ```ts
 * await setBackend('wasm');
 * const report = await runPruning();
 * ```
 */
export async function runPruning(): Promise<PruningReport> {
  const tensorsBefore = tf.memory().numTensors;
  const oneShot = await oneShotPruning(0.5);
  const gradual = await gradualPruning();
  return { backend: tf.getBackend(), oneShot, gradual, tensorsBefore, tensorsAfter: tf.memory().numTensors };
}
