/**
 * Training-step time of the 784-300-100-10 MLP on MNIST batches of 100, measured side by side in
 * one process: dense fine-tuning vs gradual magnitude pruning at 90% (global Top-v, masks
 * re-selected every 100 steps), both through fineprune's fast dense path; plus the stock TF.js
 * Layers dense for reference. Writes results/mlp-step.json.
 *
 *   cd bench && npx tsx --conditions=source src/mlp-step.ts [--backend wasm] [--steps 300]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { Pruner, adam, type Batch } from '@fineprune/core';
import { batches, loadMnist } from '@fineprune/datasets';
import { fromLayersModel } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { constant } from '@fineprune/schedulers';
import { magnitude } from '@fineprune/scores';
import { median, writeResult, selectBackend, runIfScript } from './harness';
import { benchmarkMlp, denseTrainingLoop } from './mlp-fixtures';

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: { backend: { type: 'string', default: 'wasm' }, steps: { type: 'string', default: '300' } },
  });
  const backend = await selectBackend(values.backend!);
  const steps = Number(values.steps);
  const dataset = await loadMnist();
  const source = batches(dataset.train, { batchSize: 100, seed: 3 });
  const rssBefore = process.memoryUsage().rss;

  // Dense: the adapter with the masks bypassed (the forward pass reads the raw weights).
  const denseModel = benchmarkMlp(1);
  const dense = fromLayersModel(denseModel, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
  for (const parameter of dense.parameters()) parameter.setWeightTransform((p) => p.weight);
  const denseTrainer = denseTrainingLoop(dense);

  // Pruned: magnitude scores, global Top-v at 90%, masks re-selected every 100 steps.
  const prunedModel = benchmarkMlp(1);
  const pruned = fromLayersModel(prunedModel, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
  const pruner = new Pruner({
    model: pruned,
    scores: magnitude(),
    mask: topV({ scope: 'global' }),
    schedule: constant({ sparsity: 0.9, updateInterval: 100 }),
    optimizers: { weights: adam({ learningRate: 1e-3 }) },
  });

  // Stock: TF.js Layers' own Dense (matMul with transpose flags in the gradient).
  const stockModel = benchmarkMlp(1);
  const stockOptimizer = tf.train.adam(1e-3);
  const stockStep = async (batch: Batch) => {
    const loss = stockOptimizer.minimize(
      () =>
        tf.losses.softmaxCrossEntropy(
          tf.oneHot(batch.y as tf.Tensor1D, 10),
          stockModel.apply(batch.x as tf.Tensor, { training: true }) as tf.Tensor,
        ) as tf.Scalar,
      true,
    )!;
    await loss.data();
    loss.dispose();
  };

  const variants: Array<[string, (batch: Batch) => Promise<unknown>]> = [
    ['dense', (batch) => denseTrainer.train(batch)],
    ['pruned', (batch) => pruner.trainStep(batch)],
    ['stock', stockStep],
  ];
  const times: Record<string, number[]> = { dense: [], pruned: [], stock: [] };
  const warmup = 5;
  let tensorsBefore = 0;
  // Interleave the variants step by step so that machine noise hits all of them alike.
  for (let step = 0; step < steps + warmup; step += 1) {
    if (step === warmup) tensorsBefore = tf.memory().numTensors; // optimizer slots exist by now
    for (const [name, train] of variants) {
      if (name === 'stock' && step % 3 !== 0) continue; // the slow reference needs fewer samples
      const batch = source.batch(step);
      const start = performance.now();
      await train(batch);
      const elapsed = performance.now() - start;
      tf.dispose([batch.x, batch.y]);
      if (step >= warmup) times[name]!.push(elapsed);
    }
  }
  const tensorsAfter = tf.memory().numTensors;
  const summary = (list: number[]) => ({
    medianMs: Math.round(median(list) * 100) / 100,
    meanMs: Math.round((list.reduce((a, b) => a + b, 0) / list.length) * 100) / 100,
    samples: list.length,
  });
  const result = {
    backend: backend.backend,
    batchSize: 100,
    steps,
    dense: summary(times.dense!),
    pruned: summary(times.pruned!),
    stockLayers: summary(times.stock!),
    prunedOverDense: Math.round((median(times.pruned!) / median(times.dense!)) * 1000) / 1000,
    targetPrunedOverDense: 1.1,
    stockOverDense: Math.round((median(times.stock!) / median(times.dense!)) * 100) / 100,
    referenceFastPathMs: 21,
    prunedOverReferenceFastPath: Math.round((median(times.pruned!) / 21) * 100) / 100,
    maskUpdateInterval: 100,
    memory: {
      tfBytes: tf.memory().numBytes,
      tensorsLeakedDuringRun: tensorsAfter - tensorsBefore,
      rssIncreaseMiB: Math.round((process.memoryUsage().rss - rssBefore) / 2 ** 20),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    },
  };
  denseTrainer.dispose();
  pruner.dispose();
  const file = writeResult(`mlp-step-${backend.backend}`, result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
