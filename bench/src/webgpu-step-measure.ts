/**
 * The measurement of `webgpu-step` (Node) and `webgpu-step-browser` (Chromium): kernels and
 * read-backs per encoder fine-tuning step on WebGPU, and milliseconds per step, with fineprune's
 * fused WebGPU kernels and GPU mask selection ("fused") against TF.js's plain op chains and the
 * read-back selection ("chain"), and against the fused kernels without the masked projection's
 * ("fusedExceptProjection", the state before it); dense fine-tuning and MvP global (masks
 * re-selected every step); the six variants interleaved step by step in one process. Runs in Node and in a browser.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  countWebGPUWork,
  gpuTopCountMasks,
  registerFusedWebGPUKernels,
  unregisterFusedWebGPUKernels,
} from '@fineprune/backend-webgpu';
import { adam, type Batch, Pruner } from '@fineprune/core';
import { topV } from '@fineprune/masks';
import { constant } from '@fineprune/schedulers';
import { magnitude, movement } from '@fineprune/scores';
import { FUSED_KERNELS, registerTopCountRoute } from '@fineprune/tensor';
import { createBertModel, type EncoderConfig } from '@fineprune/transformers';

type Mode = 'chain' | 'fusedExceptProjection' | 'fused';

/** The masked projection's kernels, which `fusedExceptProjection` leaves out (the state before them). */
const PROJECTION_KERNELS = [
  FUSED_KERNELS.maskedMatMul,
  FUSED_KERNELS.maskedMatMulInputGrad,
  FUSED_KERNELS.maskedMatMulWeightGrad,
  FUSED_KERNELS.maskedMatMulBiasGrad,
];

/**
 * Switches between TF.js's op chains with read-back selection, the fused kernels with GPU selection,
 * and the fused kernels but for the masked projection (W ⊙ M, TF.js's fused matMul and GELU).
 */
export function useWebGPUMode(mode: Mode): void {
  if (mode === 'chain') {
    unregisterFusedWebGPUKernels();
    registerTopCountRoute('webgpu', undefined);
    return;
  }
  registerFusedWebGPUKernels();
  registerTopCountRoute('webgpu', gpuTopCountMasks);
  if (mode === 'fusedExceptProjection')
    for (const name of PROJECTION_KERNELS) tf.unregisterKernel(name, 'webgpu');
}

/** What {@link measureWebGPUSteps} needs. */
export interface WebGPUStepOptions {
  config: EncoderConfig;
  /** Timed steps per variant (after one untimed warm-up step). */
  steps: number;
  /** The batch of a step (the same for every variant); the measurement disposes it. */
  batch: (step: number) => Batch;
  log: (line: string) => void;
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

function disposeBatchTensors(batch: Batch): void {
  const x = batch.x;
  tf.dispose([
    ...(x instanceof tf.Tensor ? [x] : Array.isArray(x) ? x : Object.values(x)),
    ...[batch.y].flat(),
  ]);
}

/**
 * Runs the six variants (dense and MvP global, each with the op chains, the fused kernels but the
 * projection's, and all fused kernels)
 * step by step, interleaved, on the active `'webgpu'` backend.
 *
 * @returns per variant: median ms per step, dispatches and read-backs per step, losses, the most
 *   launched programs; the chain/fused ratios; tensors leaked over the timed steps
 */
export async function measureWebGPUSteps(options: WebGPUStepOptions): Promise<Record<string, unknown>> {
  const { config, steps } = options;
  const recipes = {
    dense: {
      scores: magnitude(),
      mask: topV(),
      schedule: constant({ sparsity: 0, updateInterval: 1e9 }),
      learned: false,
    },
    MvPGlobal: {
      scores: movement(),
      mask: topV({ scope: 'global' }),
      schedule: constant({ sparsity: 0.9 }),
      learned: true,
    },
  };
  const variants = Object.entries(recipes).flatMap(([name, { learned, ...recipe }]) =>
    (['chain', 'fusedExceptProjection', 'fused'] as const).map((mode) => {
      const model = createBertModel({ config, task: { type: 'classification', numLabels: 15 }, seed: 1 });
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
  const samples: Record<
    string,
    Array<{ ms: number; kernels: number; dispatches: number; readBacks: number; loss: number }>
  > = Object.fromEntries(variants.map(({ name }) => [name, []]));
  const programs: Record<string, Array<[string, number]>> = {};
  const warmup = 1;
  let tensorsBefore = 0;
  for (let step = 0; step < steps + warmup; step += 1) {
    if (step === warmup) tensorsBefore = tf.memory().numTensors;
    for (let offset = 0; offset < variants.length; offset += 1) {
      const { name, mode, pruner } = variants[(step + offset) % variants.length]!;
      useWebGPUMode(mode);
      const batch = options.batch(step);
      counter.reset();
      const start = performance.now();
      const { loss } = await pruner.trainStep(batch);
      const ms = performance.now() - start;
      const { kernels, dispatches, readBacks, byProgram } = counter.counts();
      disposeBatchTensors(batch);
      if (step >= warmup) samples[name]!.push({ ms, kernels, dispatches, readBacks, loss });
      programs[name] = byProgram.slice(0, 12);
      options.log(
        `step ${step + 1}/${steps + warmup} ${name}: ${ms.toFixed(0)} ms, ${kernels} kernels, ${dispatches} dispatches, ${readBacks} read-backs, loss ${loss.toFixed(5)}`,
      );
    }
  }
  counter.stop();
  useWebGPUMode('fused');
  const tensorsLeaked = tf.memory().numTensors - tensorsBefore;
  const rows: Record<
    string,
    { medianMsPerStep: number; dispatchesPerStep: number } & Record<string, unknown>
  > = Object.fromEntries(
    variants.map(({ name }) => {
      const list = samples[name]!;
      return [
        name,
        {
          medianMsPerStep: Math.round(median(list.map((sample) => sample.ms))),
          kernelsPerStep: median(list.map((sample) => sample.kernels)),
          dispatchesPerStep: median(list.map((sample) => sample.dispatches)),
          readBacksPerStep: median(list.map((sample) => sample.readBacks)),
          losses: list.map((sample) => Math.round(sample.loss * 1e5) / 1e5),
          samples: list.length,
          mostLaunched: programs[name],
        },
      ];
    }),
  );
  const ratio = (name: string, field: 'medianMsPerStep' | 'dispatchesPerStep', over = 'chain') =>
    Math.round((rows[`${name}/${over}`]![field] / rows[`${name}/fused`]![field]) * 100) / 100;
  for (const { pruner, model } of variants) {
    pruner.dispose();
    model.dispose();
  }
  return {
    model: `${config.numLayers} layers, hidden ${config.hiddenSize}, ${config.numHeads} heads, intermediate ${config.intermediateSize}; classification head (15 labels); embeddings frozen`,
    modes: {
      chain:
        "TF.js's op chains for softmax, LayerNorm, GELU and Adam; MvP masks selected on the host after reading the scores back",
      fusedExceptProjection:
        'fineprune fused WebGPU kernels (attention softmax, LayerNorm, GELU with gradients; Adam), MvP masks selected on the GPU; masked projections as W ⊙ M, then TF.js fused matMul (and GELU): the state before the fused masked projection',
      fused:
        'as fusedExceptProjection, with each masked projection (+ bias + GELU) one fineprune tiled program forward and three backward',
    },
    variants: rows,
    chainOverFused: {
      dense: { dispatches: ratio('dense', 'dispatchesPerStep'), ms: ratio('dense', 'medianMsPerStep') },
      MvPGlobal: {
        dispatches: ratio('MvPGlobal', 'dispatchesPerStep'),
        ms: ratio('MvPGlobal', 'medianMsPerStep'),
      },
    },
    fusedExceptProjectionOverFused: Object.fromEntries(
      ['dense', 'MvPGlobal'].map((name) => [
        name,
        {
          dispatches: ratio(name, 'dispatchesPerStep', 'fusedExceptProjection'),
          ms: ratio(name, 'medianMsPerStep', 'fusedExceptProjection'),
        },
      ]),
    ),
    tensorsLeaked,
  };
}
