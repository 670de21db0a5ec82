/**
 * The dense encoder fine-tuning step on wasm with fineprune's fused kernels (the sliced batched
 * products, the fused GELU, softmax, layer norm, column sums and transposes of @fineprune/tensor)
 * against the plain TF.js op chains they replace (`FINEPRUNE_FUSED=0`), interleaved step by step in
 * one process on two models with the same weights, so both share the machine's noise. Brown genre
 * batches of 16 × 128 tokens, the offline encoder's shape, embeddings frozen. Also profiles one step
 * of each (tf.profile) and lists the kernels that took the most time.
 * Writes results/encoder-step-wasm.json.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-step.ts [--steps 12] [--batch 16]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { Batch, Pruner } from '@fineprune/core';
import { batchesFromEncoded, disposeBatch } from '@fineprune/text';
import { loadTask } from './encoder-data';
import { denseEncoderPruner, SMALL_ENCODER } from './encoder-fixtures';
import { median, runIfScript, selectBackend, writeResult } from './harness';

type Route = 'fused' | 'plain';

function useRoute(route: Route): void {
  process.env.FINEPRUNE_FUSED = route === 'fused' ? '1' : '0';
}

/** The kernels of one profiled step, by total time, the top `count`. */
async function topKernels(pruner: Pruner, batch: Batch, count: number) {
  const profile = await tf.profile(async () => {
    await pruner.trainStep(batch);
  });
  const byName = new Map<string, { ms: number; calls: number }>();
  for (const kernel of profile.kernels) {
    const entry = byName.get(kernel.name) ?? { ms: 0, calls: 0 };
    entry.ms += kernel.kernelTimeMs as number;
    entry.calls += 1;
    byName.set(kernel.name, entry);
  }
  const kernels = profile.kernels.length;
  const rows = [...byName]
    .filter(([name]) => !name.endsWith('__op') && name !== 'unnamed scope') // scopes nest kernels already listed
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, count)
    .map(([name, { ms, calls }]) => ({ name, ms: Math.round(ms * 10) / 10, calls }));
  return { kernels, top: rows };
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '12' },
      batch: { type: 'string', default: '16' },
      data: { type: 'string' },
    },
  });
  const backend = await selectBackend('wasm');
  if (backend.backend !== 'wasm') throw new Error('this benchmark needs the wasm backend');
  const steps = Number(values.steps);
  const batchSize = Number(values.batch);
  const task = loadTask('brown-genre', values.data, 128);
  const source = batchesFromEncoded(task.train, { batchSize, seed: 1, classes: 15 });
  const routes: Record<Route, ReturnType<typeof denseEncoderPruner>> = {
    fused: denseEncoderPruner(),
    plain: denseEncoderPruner(),
  };
  const times: Record<Route, number[]> = { fused: [], plain: [] };
  const losses: Record<Route, number[]> = { fused: [], plain: [] };
  const warmup = 2;
  let tensorsBefore = 0;
  for (let step = 0; step < steps + warmup; step += 1) {
    if (step === warmup) tensorsBefore = tf.memory().numTensors;
    const order: Route[] = step % 2 === 0 ? ['fused', 'plain'] : ['plain', 'fused'];
    for (const route of order) {
      useRoute(route);
      const batch: Batch = source.batch(step);
      const start = performance.now();
      const result = await routes[route].pruner.trainStep(batch);
      const elapsed = performance.now() - start;
      disposeBatch(batch as never);
      losses[route].push(result.loss);
      if (step >= warmup) times[route].push(elapsed);
    }
    console.log(
      `step ${step + 1}/${steps + warmup}: fused ${times.fused.at(-1)?.toFixed(0)} ms, plain ${times.plain.at(-1)?.toFixed(0)} ms`,
    );
  }
  const tensorsLeaked = tf.memory().numTensors - tensorsBefore;
  const profiles: Record<string, unknown> = {};
  for (const route of ['fused', 'plain'] as const) {
    useRoute(route);
    const batch = source.batch(steps + warmup);
    profiles[route] = await topKernels(routes[route].pruner, batch, 12);
    disposeBatch(batch as never);
  }
  delete process.env.FINEPRUNE_FUSED;
  const tokens = batchSize * 128;
  const row = (route: Route) => {
    const ms = median(times[route]);
    return {
      medianMsPerStep: Math.round(ms),
      tokensPerSecond: Math.round((tokens / ms) * 1000),
      samplesMs: times[route].map((value) => Math.round(value)),
    };
  };
  const largestLossDifference = Math.max(
    ...losses.fused.map((loss, index) => Math.abs(loss - losses.plain[index]!)),
  );
  const result = {
    backend: backend.backend,
    model: `${SMALL_ENCODER.numLayers} layers, hidden ${SMALL_ENCODER.hiddenSize}, ${SMALL_ENCODER.numHeads} heads, intermediate ${SMALL_ENCODER.intermediateSize}; classification head (15 Brown genres); embeddings frozen`,
    batch: `${batchSize} × 128 tokens`,
    method:
      'dense fine-tuning steps (Adam 1e-4), fused and plain interleaved (order alternating) on two identically seeded models; medians after 2 warm-up steps',
    fused: row('fused'),
    plain: row('plain'),
    speedup: Math.round((median(times.plain) / median(times.fused)) * 100) / 100,
    largestLossDifference,
    lossesFused: losses.fused.map((loss) => Number(loss.toPrecision(7))),
    lossesPlain: losses.plain.map((loss) => Number(loss.toPrecision(7))),
    profiles,
    tensorsLeaked,
  };
  for (const route of Object.values(routes)) route.dispose();
  const file = writeResult(`encoder-step-${backend.backend}`, result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
