/**
 * Fine-pruning throughput of the small encoder on wasm: tokens per second of a training step of
 * MaP, MvP (local, global), SMvP and L0, with and without distillation, against dense fine-tuning of
 * the same model, all interleaved step by step in one process (so they share the machine's noise).
 * Brown genre batches of 16 × 128 tokens; embeddings frozen as in the paper.
 * Writes results/encoder-throughput-<backend>.json.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-throughput.ts [--steps 12] [--batch 16]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { adam, type Batch, type LossTerm, Pruner, type PrunerOptions } from '@fineprune/core';
import { distillation } from '@fineprune/distillation';
import { hardConcrete, l0Penalty, sigmoidPenalty, threshold, topV } from '@fineprune/masks';
import { constant, cubicThreshold, noTarget } from '@fineprune/schedulers';
import { l0, magnitude, movement } from '@fineprune/scores';
import { batchesFromEncoded, disposeBatch } from '@fineprune/text';
import { createBertModel } from '@fineprune/transformers';
import { loadTask } from './encoder-data';
import { SMALL_ENCODER } from './encoder-fixtures';
import { median, writeResult, selectBackend, runIfScript } from './harness';

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      steps: { type: 'string', default: '12' },
      batch: { type: 'string', default: '16' },
      // The tokenized tasks from `pnpm encoder-data` (default: tokenize the corpora packages now).
      data: { type: 'string' },
    },
  });
  const backend = await selectBackend(values.backend!);
  const steps = Number(values.steps);
  const batchSize = Number(values.batch);
  const task = loadTask('brown-genre', values.data, 128);
  const source = batchesFromEncoded(task.train, { batchSize, seed: 1, classes: 15 });
  const newModel = () =>
    createBertModel({ config: SMALL_ENCODER, task: { type: 'classification', numLabels: 15 }, seed: 1 });
  const teacher = newModel();
  const kd = (): LossTerm => distillation({ teacher, temperature: 2, alphaDistil: 0.5, alphaCe: 0.5 });
  type Recipe = Omit<PrunerOptions, 'model' | 'optimizers'> & { learned: boolean };
  const recipes: Record<string, Recipe> = {
    dense: {
      scores: magnitude(),
      mask: topV(),
      schedule: constant({ sparsity: 0, updateInterval: 1e9 }),
      learned: false,
    },
    MaP: {
      scores: magnitude(),
      mask: topV(),
      schedule: constant({ sparsity: 0.9, updateInterval: 10 }),
      learned: false,
    },
    MvPLocal: {
      scores: movement(),
      mask: topV({ scope: 'local' }),
      schedule: constant({ sparsity: 0.9 }),
      learned: true,
    },
    MvPGlobal: {
      scores: movement(),
      mask: topV({ scope: 'global' }),
      schedule: constant({ sparsity: 0.9 }),
      learned: true,
    },
    SMvP: {
      scores: movement(),
      mask: threshold({ on: 'sigmoid', minKeptFraction: 0.005 }),
      schedule: cubicThreshold({ initialThreshold: 0, finalThreshold: 0.1, totalSteps: 1000, on: 'sigmoid' }),
      lossTerms: [sigmoidPenalty({ lambda: 1e-5, rampWithThreshold: { finalThreshold: 0.1 } })],
      learned: true,
    },
    L0: {
      scores: l0(),
      mask: hardConcrete(),
      schedule: noTarget(),
      lossTerms: [l0Penalty({ lambda: 5e-4 })],
      learned: true,
    },
  };
  const variants: Array<{ name: string; pruner: Pruner; dispose: () => void }> = [];
  for (const [name, { learned, ...recipe }] of Object.entries(recipes)) {
    for (const withKd of [false, true]) {
      const model = newModel();
      const pruner = new Pruner({
        model,
        ...recipe,
        lossTerms: [...(recipe.lossTerms ?? []), ...(withKd ? [kd()] : [])],
        optimizers: {
          weights: adam({ learningRate: 1e-4 }),
          ...(learned ? { scores: adam({ learningRate: 1e-2 }) } : {}),
        },
      });
      variants.push({
        name: withKd ? `${name}+KD` : name,
        pruner,
        dispose: () => {
          pruner.dispose();
          model.dispose();
        },
      });
    }
  }
  const times: Record<string, number[]> = Object.fromEntries(variants.map(({ name }) => [name, []]));
  const warmup = 2;
  let tensorsBefore = 0;
  for (let step = 0; step < steps + warmup; step += 1) {
    if (step === warmup) tensorsBefore = tf.memory().numTensors;
    for (let offset = 0; offset < variants.length; offset += 1) {
      const { name, pruner } = variants[(step + offset) % variants.length]!;
      const batch: Batch = source.batch(step);
      const start = performance.now();
      await pruner.trainStep(batch);
      const elapsed = performance.now() - start;
      disposeBatch(batch as never);
      if (step >= warmup) times[name]!.push(elapsed);
    }
    console.log(`step ${step + 1}/${steps + warmup}`);
  }
  const tensorsLeaked = tf.memory().numTensors - tensorsBefore;
  const tokens = batchSize * 128;
  const dense = median(times.dense!);
  const rows = Object.fromEntries(
    variants.map(({ name }) => {
      const ms = median(times[name]!);
      return [
        name,
        {
          medianMsPerStep: Math.round(ms),
          tokensPerSecond: Math.round((tokens / ms) * 1000),
          overDense: Math.round((ms / dense) * 1000) / 1000,
          samples: times[name]!.length,
        },
      ];
    }),
  );
  const result = {
    backend: backend.backend,
    model: `${SMALL_ENCODER.numLayers} layers, hidden ${SMALL_ENCODER.hiddenSize}, ${SMALL_ENCODER.numHeads} heads, intermediate ${SMALL_ENCODER.intermediateSize}; classification head (15 Brown genres); embeddings frozen`,
    batch: `${batchSize} × 128 tokens`,
    optimizers: 'Adam 1e-4 for weights, Adam 1e-2 for scores; MvP masks re-selected every step, MaP every 10',
    variants: rows,
    tensorsLeaked,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  for (const variant of variants) variant.dispose();
  teacher.dispose();
  const file = writeResult(`encoder-throughput-${backend.backend}`, result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
