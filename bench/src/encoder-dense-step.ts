/**
 * One child of `encoder-speedup`: the dense fine-tuning step of the benchmark encoder (the shape and
 * step of `encoder-throughput`'s dense variant: 2 layers, hidden 128, 2 heads, intermediate 512,
 * Brown batches of 16 × 128 tokens, embeddings frozen, Adam 1e-4) on wasm, timed over `--steps`
 * steps after 2 warm-up steps. Prints one JSON line. It uses only APIs that existed before issue 19
 * (apart from the thread count, asked for only when `--threads` is above 1), so the same file also
 * runs in a checkout of an older commit, which is how `encoder-speedup` measures "today" against now.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-dense-step.ts [--steps 8] [--threads 1]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { adam, type Batch, Pruner } from '@fineprune/core';
import { topV } from '@fineprune/masks';
import { constant } from '@fineprune/schedulers';
import { magnitude } from '@fineprune/scores';
import * as tensor from '@fineprune/tensor';
import { batchesFromEncoded, disposeBatch } from '@fineprune/text';
import { createBertModel } from '@fineprune/transformers';
import { loadTask } from './encoder-data';
import { SMALL_ENCODER } from './encoder-fixtures';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '8' },
    threads: { type: 'string', default: '1' },
    data: { type: 'string' },
  },
});
const threads = Number(values.threads);
const setBackend = tensor.setBackend as (name: string, options?: Record<string, unknown>) => Promise<unknown>;
await setBackend('wasm', threads > 1 ? { wasmThreads: threads } : undefined);
const batchSize = 16;
const task = loadTask('brown-genre', values.data, 128);
const source = batchesFromEncoded(task.train, { batchSize, seed: 1, classes: 15 });
const model = createBertModel({
  config: SMALL_ENCODER,
  task: { type: 'classification', numLabels: 15 },
  seed: 1,
});
const pruner = new Pruner({
  model,
  scores: magnitude(),
  mask: topV(),
  schedule: constant({ sparsity: 0, updateInterval: 1e9 }),
  optimizers: { weights: adam({ learningRate: 1e-4 }) },
});
const steps = Number(values.steps);
const warmup = 2;
const times: number[] = [];
const cpu: number[] = [];
let tensorsBefore = 0;
for (let step = 0; step < steps + warmup; step += 1) {
  if (step === warmup) tensorsBefore = tf.memory().numTensors;
  const batch: Batch = source.batch(step);
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await pruner.trainStep(batch);
  const elapsed = performance.now() - start;
  const used = process.cpuUsage(cpuStart);
  disposeBatch(batch as never);
  if (step >= warmup) {
    times.push(elapsed);
    cpu.push((used.user + used.system) / 1000);
  }
}
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
console.log(
  JSON.stringify({
    threads,
    medianMs: median(times),
    medianCpuMs: median(cpu),
    tokensPerSecond: (batchSize * 128) / (median(times) / 1000),
    stepsMs: times,
    tensorsLeaked: tf.memory().numTensors - tensorsBefore,
  }),
);
pruner.dispose();
model.dispose();
process.exit(0);
