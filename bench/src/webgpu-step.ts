/**
 * Kernels and read-backs per encoder fine-tuning step on WebGPU, and milliseconds per step, with
 * fineprune's fused WebGPU kernels and GPU mask selection against TF.js's plain op chains and the
 * read-back selection: dense fine-tuning and MvP global (masks re-selected every step), four
 * variants interleaved step by step in one process. The kernel counts do not depend on the machine;
 * the milliseconds do (on a machine without a GPU Dawn runs on Mesa's llvmpipe, in software).
 * Writes results/webgpu-step[-<label>].json.
 *
 *   cd bench && npx tsx --conditions=source src/webgpu-step.ts [--steps 4] [--batch 16] [--label h100]
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import {
  countWebGPUWork,
  disposeWebGPU,
  gpuTopCountMasks,
  registerFusedWebGPUKernels,
  unregisterFusedWebGPUKernels,
  webgpuSelection,
} from '@fineprune/backend-webgpu';
import { adam, type Batch, Pruner } from '@fineprune/core';
import { topV } from '@fineprune/masks';
import { constant } from '@fineprune/schedulers';
import { magnitude, movement } from '@fineprune/scores';
import { registerTopCountRoute } from '@fineprune/tensor';
import { batchesFromEncoded, disposeBatch } from '@fineprune/text';
import { createBertModel } from '@fineprune/transformers';
import { loadTask } from './encoder-data';
import { SMALL_ENCODER } from './encoder-fixtures';
import { median, runIfScript, selectBackend, writeResult } from './harness';

type Mode = 'chain' | 'fused';

/** Switches between TF.js's op chains with read-back selection and the fused kernels with GPU selection. */
function useMode(mode: Mode): void {
  if (mode === 'fused') {
    registerFusedWebGPUKernels();
    registerTopCountRoute('webgpu', gpuTopCountMasks);
  } else {
    unregisterFusedWebGPUKernels();
    registerTopCountRoute('webgpu', undefined);
  }
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '4' },
      batch: { type: 'string', default: '16' },
      label: { type: 'string' },
      data: { type: 'string' },
    },
  });
  const backend = await selectBackend('webgpu');
  const steps = Number(values.steps);
  const batchSize = Number(values.batch);
  const task = loadTask('brown-genre', values.data, 128);
  const source = batchesFromEncoded(task.train, { batchSize, seed: 1, classes: 15 });
  const recipes = {
    dense: { scores: magnitude(), mask: topV(), schedule: constant({ sparsity: 0, updateInterval: 1e9 }), learned: false },
    MvPGlobal: { scores: movement(), mask: topV({ scope: 'global' }), schedule: constant({ sparsity: 0.9 }), learned: true },
  };
  const variants = Object.entries(recipes).flatMap(([name, { learned, ...recipe }]) =>
    (['chain', 'fused'] as const).map((mode) => {
      const model = createBertModel({ config: SMALL_ENCODER, task: { type: 'classification', numLabels: 15 }, seed: 1 });
      const pruner = new Pruner({
        model,
        ...recipe,
        optimizers: {
          weights: adam({ learningRate: 1e-4 }),
          ...(learned ? { scores: adam({ learningRate: 1e-2 }) } : {}),
        },
      });
      return { name: `${name}/${mode}`, mode, pruner, model };
    }),
  );
  const counter = countWebGPUWork();
  const samples: Record<string, Array<{ ms: number; dispatches: number; readBacks: number; loss: number }>> =
    Object.fromEntries(variants.map(({ name }) => [name, []]));
  const programs: Record<string, Array<[string, number]>> = {};
  const warmup = 1;
  let tensorsBefore = 0;
  for (let step = 0; step < steps + warmup; step += 1) {
    if (step === warmup) tensorsBefore = tf.memory().numTensors;
    for (let offset = 0; offset < variants.length; offset += 1) {
      const { name, mode, pruner } = variants[(step + offset) % variants.length]!;
      useMode(mode);
      const batch: Batch = source.batch(step);
      counter.reset();
      const start = performance.now();
      const { loss } = await pruner.trainStep(batch);
      const ms = performance.now() - start;
      const { dispatches, readBacks, byProgram } = counter.counts();
      disposeBatch(batch as never);
      if (step >= warmup) samples[name]!.push({ ms, dispatches, readBacks, loss });
      programs[name] = byProgram.slice(0, 12);
      console.log(`step ${step + 1}/${steps + warmup} ${name}: ${ms.toFixed(0)} ms, ${dispatches} dispatches, ${readBacks} read-backs, loss ${loss.toFixed(5)}`);
    }
  }
  counter.stop();
  const tensorsLeaked = tf.memory().numTensors - tensorsBefore;
  const rows = Object.fromEntries(
    variants.map(({ name }) => {
      const list = samples[name]!;
      return [
        name,
        {
          medianMsPerStep: Math.round(median(list.map((sample) => sample.ms))),
          dispatchesPerStep: median(list.map((sample) => sample.dispatches)),
          readBacksPerStep: median(list.map((sample) => sample.readBacks)),
          losses: list.map((sample) => Math.round(sample.loss * 1e5) / 1e5),
          samples: list.length,
          mostLaunched: programs[name],
        },
      ];
    }),
  );
  const ratio = (name: string, field: 'medianMsPerStep' | 'dispatchesPerStep') =>
    Math.round(((rows[`${name}/chain`] as Record<string, number>)[field]! / (rows[`${name}/fused`] as Record<string, number>)[field]!) * 100) / 100;
  const result = {
    backend: backend.backend,
    adapter: webgpuSelection()?.adapter,
    model: `${SMALL_ENCODER.numLayers} layers, hidden ${SMALL_ENCODER.hiddenSize}, ${SMALL_ENCODER.numHeads} heads, intermediate ${SMALL_ENCODER.intermediateSize}; classification head (15 Brown genres); embeddings frozen`,
    batch: `${batchSize} × 128 tokens`,
    modes: {
      chain: "TF.js's op chains for softmax, LayerNorm, GELU; MvP masks selected on the host after reading the scores back",
      fused: 'fineprune fused WebGPU kernels (attention softmax, LayerNorm, GELU, forward and backward); MvP masks selected on the GPU',
    },
    variants: rows,
    chainOverFused: {
      dense: { dispatches: ratio('dense', 'dispatchesPerStep'), ms: ratio('dense', 'medianMsPerStep') },
      MvPGlobal: { dispatches: ratio('MvPGlobal', 'dispatchesPerStep'), ms: ratio('MvPGlobal', 'medianMsPerStep') },
    },
    tensorsLeaked,
  };
  for (const { pruner, model } of variants) {
    pruner.dispose();
    model.dispose();
  }
  const file = writeResult(values.label ? `webgpu-step-${values.label}` : 'webgpu-step', result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  await disposeWebGPU();
  return result;
}

runIfScript(import.meta.url, main);
