/**
 * Fine-pruning at BERT-base scale on wasm (issue 19, item 4): a random checkpoint shaped like
 * bert-base-uncased (12 layers, hidden 768, 12 heads, intermediate 3072, vocabulary 30522, 512
 * positions; a 2-label classification head) written in the Hugging Face layout by the project's own
 * safetensors writer (streamed), imported, fine-pruned with MvP global (movement scores, Top-v over
 * all 85M prunable weights, cubic schedule, Adam with its slots outside the wasm heap) for a few
 * steps, one mask selection at the final sparsity, a training checkpoint (streamed, sharded) and
 * its reload in a fresh process, which checks it bit for bit.
 *
 * Reports seconds per step (median), the time of each phase, peak RSS (VmHWM) against the analytic
 * bytes of the training state, to results/bert-base-scale.json.
 *
 *   cd bench && pnpm bert-base-scale [--batch 1] [--length 128] [--steps 3] [--layers 12]
 *   (the script runs Node with --expose-gc, to collect the import's garbage before training)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { adam, type HostArray, Pruner, type PrunerState } from '@fineprune/core';
import { topV } from '@fineprune/masks';
import type { StreamedTensor } from '@fineprune/safetensors';
import { writeSafetensorsFileStreamed } from '@fineprune/safetensors/node';
import { cubic } from '@fineprune/schedulers';
import { movement } from '@fineprune/scores';
import { WASM_HEAP_LIMIT_BYTES } from '@fineprune/tensor';
import {
  type BertModel,
  type BertTask,
  bertBaseUncasedConfig,
  configToHuggingFace,
  type EncoderConfig,
  huggingFaceNames,
} from '@fineprune/transformers';
import {
  CONFIG_FILE,
  loadBertCheckpoint,
  loadHuggingFaceDirectory,
  saveBertCheckpoint,
  WEIGHTS_FILE,
} from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';
import { median, runIfScript, selectBackend, writeResult } from './harness';

const TASK: BertTask = { type: 'classification', numLabels: 2 };
const MIB = 2 ** 20;

/** What one run of the pipeline is given. */
export interface ScaleOptions {
  config: EncoderConfig;
  batch: number;
  length: number;
  steps: number;
  /** Final sparsity of the cubic schedule and of the explicit selection (fraction pruned). */
  sparsity: number;
  directory: string;
  /** Reload the checkpoint in a child process (its peak RSS is its own); else in this process. */
  reloadInChild: boolean;
  log?: (line: string) => void;
}

/** The process's peak resident set (VmHWM) and current RSS, in bytes (Linux; else RSS only). */
export function memoryNow(): { rss: number; peakRss: number } {
  const rss = process.memoryUsage().rss;
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const peak = /VmHWM:\s+(\d+) kB/.exec(status);
    return { rss, peakRss: peak ? Number(peak[1]) * 1024 : rss };
  } catch {
    return { rss, peakRss: rss };
  }
}

/** A seeded generator of normal(0, σ) float32 values (xorshift32 + Box–Muller). */
function normalValues(size: number, std: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let state = (seed * 2654435761) >>> 0 || 1;
  const uniform = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return (state + 0.5) / 2 ** 32;
  };
  for (let index = 0; index < size; index += 2) {
    const radius = Math.sqrt(-2 * Math.log(uniform())) * std;
    const angle = 2 * Math.PI * uniform();
    out[index] = radius * Math.cos(angle);
    if (index + 1 < size) out[index + 1] = radius * Math.sin(angle);
  }
  return out;
}

/**
 * Writes a random checkpoint of `config` in the Hugging Face layout (names, [out, in] Linear
 * weights, config.json), streamed: each tensor's values are made when the writer reaches it.
 */
export async function writeRandomCheckpoint(config: EncoderConfig, directory: string): Promise<number> {
  fs.mkdirSync(directory, { recursive: true });
  const tensors: Record<string, StreamedTensor> = {};
  for (const [index, entry] of huggingFaceNames(config, TASK).entries()) {
    const size = entry.huggingFaceShape.reduce((product, dimension) => product * dimension, 1);
    tensors[entry.huggingFaceName] = {
      dtype: 'F32',
      shape: entry.huggingFaceShape,
      values: () =>
        entry.init === 'normal'
          ? normalValues(size, config.initializerRange, index + 1)
          : new Float32Array(size).fill(entry.init === 'ones' ? 1 : 0),
    };
  }
  const { bytes } = await writeSafetensorsFileStreamed(path.join(directory, WEIGHTS_FILE), tensors, {
    format: 'pt',
  });
  const hf = {
    architectures: ['BertForSequenceClassification'],
    ...configToHuggingFace(config),
    id2label: { 0: 'LABEL_0', 1: 'LABEL_1' },
    label2id: { LABEL_0: 0, LABEL_1: 1 },
  };
  fs.writeFileSync(path.join(directory, CONFIG_FILE), `${JSON.stringify(hf, null, 2)}\n`);
  return bytes;
}

/** The MvP-global recipe of the run (Sanh et al. 2020: movement scores, Top-v, cubic schedule). */
export function mvpGlobalPruner(model: BertModel, sparsity: number, steps: number): Pruner {
  return new Pruner({
    model,
    scores: movement(),
    mask: topV({ scope: 'global' }),
    schedule: cubic({ finalSparsity: sparsity, totalSteps: Math.max(steps, 2), warmupSteps: 1 }),
    optimizers: {
      // The moments of 85M weights and 85M scores (1.36 GB) live outside the 4 GiB wasm heap.
      weights: adam({ learningRate: 3e-5, slots: 'host' }),
      scores: adam({ learningRate: 1e-2, slots: 'host' }),
    },
    seed: 1,
  });
}

/**
 * The analytic bytes of the training state, float32: weights (every variable) + scores + weight
 * gradients (trainable variables) + score gradients + Adam m and v for trainable weights and scores.
 */
export function analyticBytes(model: BertModel, pruner: Pruner): Record<string, number> {
  const count = (variables: readonly { variable: tf.Variable }[]) =>
    variables.reduce((sum, { variable }) => sum + variable.size, 0);
  const weights = count(model.variables());
  const trainable = count(model.trainableVariables());
  const scores = pruner.pruned().reduce((sum, { scores: s }) => sum + (s?.size ?? 0), 0);
  const prunable = model.parameters().reduce((sum, parameter) => sum + parameter.size, 0);
  const floats = weights + scores + trainable + scores + 2 * trainable + 2 * scores;
  return {
    weights,
    trainableWeights: trainable,
    prunableWeights: prunable,
    scores,
    floats,
    bytes: 4 * floats,
  };
}

/** SHA-256 over the named tensors' (or host arrays') float32 bytes, in name order, read one at a time. */
export async function tensorsDigest(tensors: Record<string, tf.Tensor | HostArray>): Promise<string> {
  const hash = createHash('sha256');
  for (const name of Object.keys(tensors).sort()) {
    const saved = tensors[name]!;
    const values = saved instanceof tf.Tensor ? ((await saved.data()) as Float32Array) : saved.values;
    hash.update(name).update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return hash.digest('hex');
}

/**
 * The model's variables and masks with the pruner's state, by checkpoint name; the host-memory
 * optimizer slots as arrays (as tensors they would be copied onto the wasm heap).
 */
function checkpointTensors(model: BertModel, state: PrunerState): Record<string, tf.Tensor | HostArray> {
  const named: Record<string, tf.Tensor | HostArray> = {};
  for (const { name, variable } of model.variables()) named[`variable/${name}`] = variable;
  for (const [key, saved] of [...Object.entries(state.tensors), ...Object.entries(state.arrays ?? {})])
    named[`state/${key}`] = saved;
  return named;
}

/** Loads the checkpoint, restores a pruner from it, and digests what was restored. */
export async function reloadCheckpoint(
  directory: string,
  sparsity: number,
  steps: number,
): Promise<{ digest: string; seconds: number; step: number; peakRss: number }> {
  const start = performance.now();
  const { model, state } = await loadBertCheckpoint(directory);
  const pruner = mvpGlobalPruner(model, sparsity, steps);
  pruner.loadState(state);
  tf.dispose(Object.values(state.tensors));
  const seconds = (performance.now() - start) / 1000;
  const exported = pruner.exportState({ hostArrays: true });
  const digest = await tensorsDigest(checkpointTensors(model, exported));
  tf.dispose(Object.values(exported.tensors));
  pruner.dispose();
  model.dispose();
  return { digest, seconds, step: exported.step, peakRss: memoryNow().peakRss };
}

/** A batch of seeded random token ids and labels. */
function randomBatch(batch: number, length: number, vocabulary: number, step: number) {
  return tf.tidy(() => ({
    x: { inputIds: tf.randomUniform([batch, length], 0, vocabulary, 'int32', 1000 + step) as tf.Tensor2D },
    y: tf.tensor1d(
      Array.from({ length: batch }, (_, row) => (row + step) % 2),
      'int32',
    ),
  }));
}

/** One growth of the wasm heap: the phase, the sizes before and after, and the fineprune frame that asked. */
export interface HeapGrowth {
  phase: string;
  fromMiB: number;
  toMiB: number;
  at: string;
}

/**
 * Records each growth of the wasm backend's heap (it never shrinks, so its high-water mark is what
 * RSS pays): wraps the backend's `_malloc` and, when the memory grew, notes the phase and the first
 * stack frames in fineprune's packages. Returns the list it fills and the current phase setter;
 * `undefined` off wasm.
 */
export function traceHeapGrowth(): { growth: HeapGrowth[]; setPhase(name: string): void } | undefined {
  const backend = tf.backend() as unknown as {
    wasm?: {
      _malloc?(bytes: number): number;
      asm?: { memory?: WebAssembly.Memory };
      wasmMemory?: WebAssembly.Memory;
    };
  };
  const wasm = backend.wasm;
  const memory = wasm?.asm?.memory ?? wasm?.wasmMemory;
  if (!wasm?._malloc || !(memory instanceof WebAssembly.Memory)) return undefined;
  const malloc = wasm._malloc.bind(wasm);
  const growth: HeapGrowth[] = [];
  let phase = 'start';
  let bytes = memory.buffer.byteLength;
  wasm._malloc = (size: number) => {
    const offset = malloc(size);
    if (memory.buffer.byteLength > bytes) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 40;
      const frames = (new Error().stack ?? '').split('\n').filter((line) => line.includes('/packages/'));
      Error.stackTraceLimit = limit;
      const at = frames.slice(0, 3).map((line) =>
        line
          .trim()
          .replace(/^at /, '')
          .replace(/\(.*\/packages\//, '('),
      );
      growth.push({
        phase,
        fromMiB: Math.round(bytes / MIB),
        toMiB: Math.round(memory.buffer.byteLength / MIB),
        at: at.join(' < '),
      });
      bytes = memory.buffer.byteLength;
    }
    return offset;
  };
  return {
    growth,
    setPhase: (name) => {
      phase = name;
    },
  };
}

/** Runs the whole pipeline and returns its figures (timings in seconds, memory in bytes). */
export async function runScalePipeline(options: ScaleOptions): Promise<Record<string, unknown>> {
  const log = options.log ?? (() => undefined);
  const phases: Record<string, { seconds: number; rssMiB: number; peakRssMiB: number; heapMiB?: number }> =
    {};
  let heapTrace: ReturnType<typeof traceHeapGrowth>;
  const heapMiB = () => {
    const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length;
    return heap === undefined ? {} : { heapMiB: Math.round(heap / MIB) };
  };
  const phase = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    heapTrace?.setPhase(name);
    const start = performance.now();
    const result = await work();
    const { rss, peakRss } = memoryNow();
    phases[name] = {
      seconds: Math.round((performance.now() - start) / 10) / 100,
      rssMiB: Math.round(rss / MIB),
      peakRssMiB: Math.round(peakRss / MIB),
      ...heapMiB(),
    };
    log(`${name}: ${JSON.stringify(phases[name])}`);
    return result;
  };
  const source = path.join(options.directory, 'hf');
  const checkpoint = path.join(options.directory, 'checkpoint');
  const fileBytes = await phase('writeHuggingFaceCheckpoint', () =>
    writeRandomCheckpoint(options.config, source),
  );
  const { model } = await phase('import', () => loadHuggingFaceDirectory(source));
  // Traced from here on: the import builds the backend's kernels and model (its heap is in `phases`).
  heapTrace = traceHeapGrowth();
  // The import's file buffer and decoded arrays (0.9 GB) are garbage now; with --expose-gc (as
  // `pnpm bert-base-scale` runs) they are collected here instead of whenever V8 gets to them.
  const collect = (globalThis as { gc?: () => void }).gc;
  collect?.();
  const pruner = mvpGlobalPruner(model, options.sparsity, options.steps);
  const analytic = analyticBytes(model, pruner);
  const stepSeconds: number[] = [];
  const losses: number[] = [];
  let tensorsAfterFirst = 0;
  for (let step = 0; step < options.steps; step += 1) {
    const batch = randomBatch(options.batch, options.length, options.config.vocabSize, step);
    const result = await phase(`step${step}`, () => pruner.trainStep(batch as never));
    tf.dispose([batch.x.inputIds, batch.y]);
    stepSeconds.push(phases[`step${step}`]!.seconds);
    losses.push(result.loss);
    // The first step also creates the Adam slots: leaks are counted from there on.
    if (step === 0) tensorsAfterFirst = tf.memory().numTensors;
  }
  const tensorsLeaked = tf.memory().numTensors - tensorsAfterFirst;
  await phase('selectMasks', () => pruner.updateMasks(undefined, options.sparsity));
  let kept = 0;
  for (const parameter of model.parameters()) {
    const sum = tf.sum(parameter.mask);
    kept += (await sum.data())[0]!;
    sum.dispose();
  }
  const exported = pruner.exportState({ hostArrays: true });
  const digest = await tensorsDigest(checkpointTensors(model, exported));
  tf.dispose(Object.values(exported.tensors));
  await phase('saveCheckpoint', () => saveBertCheckpoint(model, pruner, checkpoint));
  const checkpointFiles = fs
    .readdirSync(checkpoint)
    .map((name) => ({ name, bytes: fs.statSync(path.join(checkpoint, name)).size }));
  const trainingPeak = memoryNow().peakRss;
  pruner.dispose();
  model.dispose();
  const reload = options.reloadInChild
    ? (JSON.parse(
        execFileSync(
          process.execPath,
          [
            ...process.execArgv,
            fileURLToPath(import.meta.url),
            '--reload',
            checkpoint,
            '--sparsity',
            `${options.sparsity}`,
            '--steps',
            `${options.steps}`,
          ],
          { encoding: 'utf8', maxBuffer: 1 << 20 },
        )
          .trim()
          .split('\n')
          .at(-1)!,
      ) as Awaited<ReturnType<typeof reloadCheckpoint>>)
    : await reloadCheckpoint(checkpoint, options.sparsity, options.steps);
  const steady = stepSeconds.length > 1 ? stepSeconds.slice(1) : stepSeconds;
  return {
    model: {
      layers: options.config.numLayers,
      hidden: options.config.hiddenSize,
      heads: options.config.numHeads,
      intermediate: options.config.intermediateSize,
      vocabulary: options.config.vocabSize,
      task: '2-label classification, embeddings frozen',
      ...analytic,
    },
    huggingFaceFileBytes: fileBytes,
    garbageCollectedAfterImport: collect !== undefined,
    batch: `${options.batch} × ${options.length} tokens`,
    recipe: `MvP global: movement scores, Top-v over all prunable weights, cubic schedule to ${options.sparsity} over ${options.steps} steps, Adam 3e-5 (weights) and 1e-2 (scores), slots in JavaScript memory`,
    secondsPerStepMedian: median(steady),
    stepSeconds,
    tokensPerSecond: Math.round((options.batch * options.length) / median(steady)),
    losses,
    phases,
    mask: { kept, prunable: analytic.prunableWeights, keptFraction: kept / analytic.prunableWeights! },
    tensorsLeakedAfterFirstStep: tensorsLeaked,
    checkpointFiles,
    reload: { ...reload, bitForBit: reload.digest === digest },
    peakRssBytes: trainingPeak,
    analyticBytes: analytic.bytes,
    peakRssOverAnalytic: Math.round((trainingPeak / analytic.bytes!) * 1000) / 1000,
    wasmHeapBytes: (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length,
    wasmHeapGrowth: heapTrace?.growth ?? [],
    wasmHeapLimitBytes: WASM_HEAP_LIMIT_BYTES,
  };
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown> | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: {
      batch: { type: 'string', default: '1' },
      length: { type: 'string', default: '128' },
      steps: { type: 'string', default: '3' },
      layers: { type: 'string', default: '12' },
      sparsity: { type: 'string', default: '0.9' },
      directory: { type: 'string' },
      reload: { type: 'string' },
    },
  });
  await selectBackend('wasm');
  if (values.reload !== undefined) {
    // The child of a run: reload the checkpoint and print the result as the last line.
    const result = await reloadCheckpoint(values.reload, Number(values.sparsity), Number(values.steps));
    console.log(JSON.stringify(result));
    return undefined;
  }
  const directory = values.directory ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fineprune-bert-base-scale-'));
  try {
    const result = await runScalePipeline({
      config: { ...bertBaseUncasedConfig, numLayers: Number(values.layers) },
      batch: Number(values.batch),
      length: Number(values.length),
      steps: Number(values.steps),
      sparsity: Number(values.sparsity),
      directory,
      reloadInChild: true,
      log: (line) => console.log(line),
    });
    const shape = `${values.layers}-layers-b${values.batch}x${values.length}`;
    const file = writeResult(
      shape === '12-layers-b1x128' ? 'bert-base-scale' : `bert-base-scale-${shape}`,
      result,
    );
    console.log(JSON.stringify(result, null, 2));
    console.log(`written to ${file}`);
    return result;
  } finally {
    if (values.directory === undefined) fs.rmSync(directory, { recursive: true, force: true });
  }
}

runIfScript(import.meta.url, main);
