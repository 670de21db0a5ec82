/**
 * The wasm backend on 1 thread (its single-threaded SIMD build) against N threads (the
 * multi-threaded SIMD build on Node worker threads, `setBackend('wasm', { wasmThreads })`):
 * matMul throughput (512×1024 · 1024×1024, and the MLP's first layer 100×784 · 784×300), the
 * 784-300-100-10 MLP dense training step (batch 100) and the small encoder's dense fine-tuning step
 * (16 × 128 tokens). The thread count is fixed when the backend starts, so each count runs in a
 * child process of its own; the children alternate (1, N, N, 1, 1, N, …) over several rounds so that
 * the machine's load falls on both alike, and the medians over rounds are reported.
 * Writes results/wasm-threads.json.
 *
 *   cd bench && pnpm wasm-threads [--threads 2] [--rounds 4]
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import { parseArgs, promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '@fineprune/core';
import { fromLayersModel } from '@fineprune/layers';
import { setBackend, wasmThreadsInUse } from '@fineprune/tensor';
import { batchesFromEncoded, disposeBatch } from '@fineprune/text';
import { denseEncoderPruner, SMALL_ENCODER } from './encoder-fixtures';
import { median, runIfScript, writeResult } from './harness';
import { benchmarkMlp, denseTrainingLoop } from './mlp-fixtures';

/** What one child process measures (milliseconds are medians over its repetitions). */
interface ChildResult {
  threads: number;
  initMilliseconds: number;
  matMulLarge: Timing;
  matMulMlp: Timing;
  mlpStep: Timing;
  encoderStep: Timing;
  tensorsLeaked: number;
  peakRssMiB: number;
}

const LARGE = { m: 512, k: 1024, n: 1024 };
const MLP_LAYER = { m: 100, k: 784, n: 300 };
const ENCODER_BATCH = 16;
const SEQUENCE = 128;

/** A median time: what the user waits, and the CPU time the process (all its threads) spent. */
interface Timing {
  wallMs: number;
  cpuMs: number;
}

/** Median wall-clock and CPU milliseconds of `fn` over `repeats` calls after `warmup` calls. */
async function medianTime(fn: () => Promise<void>, repeats: number, warmup: number): Promise<Timing> {
  for (let index = 0; index < warmup; index += 1) await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let index = 0; index < repeats; index += 1) {
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    await fn();
    wall.push(performance.now() - start);
    const used = process.cpuUsage(cpuStart);
    cpu.push((used.user + used.system) / 1000);
  }
  return { wallMs: median(wall), cpuMs: median(cpu) };
}

async function matMulTiming(shape: { m: number; k: number; n: number }, repeats: number): Promise<Timing> {
  const a = tf.randomNormal([shape.m, shape.k], 0, 1, 'float32', 1);
  const b = tf.randomNormal([shape.k, shape.n], 0, 1, 'float32', 2);
  const timing = await medianTime(
    async () => {
      const product = tf.matMul(a, b);
      await product.data();
      product.dispose();
    },
    repeats,
    3,
  );
  tf.dispose([a, b]);
  return timing;
}

/** The MLP dense step of mlp-step.ts, on random batches of 100 (the time does not depend on the values). */
async function mlpStepTiming(steps: number): Promise<Timing> {
  const layers = benchmarkMlp(1);
  const model = fromLayersModel(layers, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
  for (const parameter of model.parameters()) parameter.setWeightTransform((p) => p.weight);
  const trainer = denseTrainingLoop(model);
  let step = 0;
  const timing = await medianTime(
    async () => {
      const batch: Batch = {
        x: tf.randomNormal([100, 784], 0, 1, 'float32', step),
        y: tf.randomUniform([100], 0, 10, 'int32', step + 1),
      };
      step += 1;
      await trainer.train(batch);
      tf.dispose([batch.x as tf.Tensor, batch.y as tf.Tensor]);
    },
    steps,
    5,
  );
  trainer.dispose();
  model.dispose?.();
  layers.dispose();
  return timing;
}

/** Random token ids over bert-base-uncased's vocabulary, every position a real token. */
function syntheticExamples(count: number) {
  const ids = new Int32Array(count * SEQUENCE);
  let state = 12345;
  for (let index = 0; index < ids.length; index += 1) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    ids[index] = index % SEQUENCE === 0 ? 101 : 1000 + (state % 29000);
  }
  return {
    maxLength: SEQUENCE,
    inputIds: ids,
    tokenTypeIds: new Int32Array(ids.length),
    attentionMask: new Int32Array(ids.length).fill(1),
    labels: Int32Array.from({ length: count }, (_, index) => index % 15),
  };
}

/** The encoder's dense fine-tuning step of encoder-throughput.ts (Adam 1e-4, embeddings frozen). */
async function encoderStepTiming(steps: number): Promise<Timing> {
  const { pruner, dispose } = denseEncoderPruner();
  const source = batchesFromEncoded(syntheticExamples(8 * ENCODER_BATCH), {
    batchSize: ENCODER_BATCH,
    seed: 1,
    classes: 15,
  });
  let step = 0;
  const timing = await medianTime(
    async () => {
      const batch = source.batch(step);
      step += 1;
      await pruner.trainStep(batch);
      disposeBatch(batch as never);
    },
    steps,
    2,
  );
  dispose();
  return timing;
}

async function child(threads: number): Promise<ChildResult> {
  const selection = await setBackend('wasm', { wasmThreads: threads });
  if (wasmThreadsInUse() !== threads)
    throw new Error(`asked for ${threads} threads, got ${wasmThreadsInUse()}`);
  const before = tf.memory().numTensors;
  const result: ChildResult = {
    threads,
    initMilliseconds: selection.attempts[0]!.millisecondsToInit!,
    matMulLarge: await matMulTiming(LARGE, 9),
    matMulMlp: await matMulTiming(MLP_LAYER, 41),
    mlpStep: await mlpStepTiming(41),
    encoderStep: await encoderStepTiming(5),
    tensorsLeaked: tf.memory().numTensors - before,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  return result;
}

function gflops(shape: { m: number; k: number; n: number }, ms: number): number {
  return Math.round(((2 * shape.m * shape.k * shape.n) / (ms * 1e6)) * 10) / 10;
}

const run = promisify(execFile);

async function runChild(threads: number): Promise<ChildResult> {
  const { stdout } = await run(
    process.execPath,
    [...process.execArgv, process.argv[1]!, '--child', '--threads', String(threads)],
    { encoding: 'utf8', maxBuffer: 1 << 24, timeout: 600_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      threads: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '4' },
      child: { type: 'boolean', default: false },
    },
  });
  const threads = Number(values.threads);
  if (values.child) {
    const result = await child(threads);
    console.log(JSON.stringify(result));
    return result as unknown as Record<string, unknown>;
  }
  const rounds = Number(values.rounds);
  const counts = [1, threads];
  const samples: Record<number, ChildResult[]> = { 1: [], [threads]: [] };
  const loadBefore = os.loadavg();
  for (let round = 0; round < rounds; round += 1) {
    // 1, N, then N, 1: each count goes first as often as the other.
    const order = round % 2 === 0 ? counts : [...counts].reverse();
    for (const count of order) {
      const result = await runChild(count);
      samples[count]!.push(result);
      console.log(`round ${round + 1}/${rounds}, ${count} thread(s): ${JSON.stringify(result)}`);
    }
  }
  const loadAfter = os.loadavg();
  const summarise = (list: ChildResult[]) => {
    type Work = 'matMulLarge' | 'matMulMlp' | 'mlpStep' | 'encoderStep';
    const wall = (key: Work) => median(list.map((entry) => entry[key].wallMs));
    const cpu = (key: Work) => Math.round(median(list.map((entry) => entry[key].cpuMs)) * 100) / 100;
    const rounded = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;
    return {
      initMilliseconds: Math.round(median(list.map((entry) => entry.initMilliseconds))),
      matMulLarge: {
        medianMs: rounded(wall('matMulLarge'), 2),
        gflops: gflops(LARGE, wall('matMulLarge')),
        cpuMs: cpu('matMulLarge'),
      },
      matMulMlpLayer: {
        medianMs: rounded(wall('matMulMlp'), 3),
        gflops: gflops(MLP_LAYER, wall('matMulMlp')),
        cpuMs: cpu('matMulMlp'),
      },
      mlpDenseStep: { medianMs: rounded(wall('mlpStep'), 2), cpuMs: cpu('mlpStep') },
      encoderStep: {
        medianMs: Math.round(wall('encoderStep')),
        tokensPerSecond: Math.round((ENCODER_BATCH * SEQUENCE * 1000) / wall('encoderStep')),
        cpuMs: Math.round(cpu('encoderStep')),
      },
      tensorsLeaked: Math.max(...list.map((entry) => entry.tensorsLeaked)),
      peakRssMiB: Math.max(...list.map((entry) => entry.peakRssMiB)),
      processes: list.length,
    };
  };
  const one = summarise(samples[1]!);
  const many = summarise(samples[threads]!);
  const speedup = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const result = {
    threads: counts,
    cores: os.availableParallelism(),
    loadAverage: { before: loadBefore, after: loadAfter },
    rounds,
    method:
      'Each thread count in a child process of its own (the count is fixed when the backend starts), ' +
      'alternating 1, N, N, 1, … over the rounds; per child: medians of 9 large matMuls, 41 MLP-layer ' +
      'matMuls, 41 MLP dense steps (batch 100, random data) and 5 encoder dense fine-tuning steps ' +
      `(${ENCODER_BATCH} × ${SEQUENCE} random tokens), after warm-ups; reported: medians over the children, wall clock (medianMs) and CPU time of the ` +
      'process, all its threads (cpuMs).',
    shapes: {
      matMulLarge: `${LARGE.m}×${LARGE.k} · ${LARGE.k}×${LARGE.n}`,
      matMulMlpLayer: `${MLP_LAYER.m}×${MLP_LAYER.k} · ${MLP_LAYER.k}×${MLP_LAYER.n}`,
      encoder: `${SMALL_ENCODER.numLayers} layers, hidden ${SMALL_ENCODER.hiddenSize}, ${SMALL_ENCODER.numHeads} heads, intermediate ${SMALL_ENCODER.intermediateSize}`,
    },
    [`threads${1}`]: one,
    [`threads${threads}`]: many,
    speedup: {
      matMulLarge: speedup(one.matMulLarge.medianMs, many.matMulLarge.medianMs),
      matMulMlpLayer: speedup(one.matMulMlpLayer.medianMs, many.matMulMlpLayer.medianMs),
      mlpDenseStep: speedup(one.mlpDenseStep.medianMs, many.mlpDenseStep.medianMs),
      encoderStep: speedup(one.encoderStep.medianMs, many.encoderStep.medianMs),
    },
  };
  const file = writeResult('wasm-threads', result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
