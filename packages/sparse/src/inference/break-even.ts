/**
 * The measured choice between the sparse kernel and the dense product, per backend, matrix shape,
 * nonzero count and batch bucket, cached for the life of the process.
 *
 * Static rules exist (XNNPACK runs sparse only above 2/3 zeros, TVM's tutorial converts above 80%),
 * but the crossover moves with the backend, cache residency and batch, so both paths are timed on the
 * first call of each kind and the faster is kept.
 */

import type * as tf from '@tensorflow/tfjs-core';

/**
 * Which product computed an output.
 *
 * @example
 * ```ts
 * const path: ProductPath = weights.choiceFor(1)?.path ?? 'sparse';
 * ```
 */
export type ProductPath = 'sparse' | 'dense';

/**
 * A choice between the sparse and the dense product, and why it was made.
 *
 * @example
 * ```ts
 * const choice: SparseDenseChoice = weights.choiceFor(1)!;
 * console.log(choice.path, choice.reason); // 'sparse' 'sparse 0.021 ms vs dense 0.094 ms (4.5× faster) at batch 1 on wasm'
 * ```
 */
export interface SparseDenseChoice {
  path: ProductPath;
  /** The backend it was made on. */
  backend: string;
  /** The batch bucket it covers (`'1'`, `'2-4'`, `'5-8'`, `'9-16'`, `'17-32'`, `'33+'`). */
  bucket: string;
  /** Whether both paths were timed (false: a static rule decided, see `reason`). */
  measured: boolean;
  /** The batch size timed. */
  batch?: number;
  /** Median time of the sparse path, in milliseconds. */
  sparseMilliseconds?: number;
  /** Median time of the dense path, in milliseconds. */
  denseMilliseconds?: number;
  /** One sentence. */
  reason: string;
}

/**
 * The batch bucket of a batch size: choices are made and cached per bucket.
 *
 * @example
 * ```ts
 * batchBucket(12); // '9-16'
 * ```
 */
export function batchBucket(batch: number): string {
  if (batch <= 1) return '1';
  if (batch <= 4) return '2-4';
  if (batch <= 8) return '5-8';
  if (batch <= 16) return '9-16';
  if (batch <= 32) return '17-32';
  return '33+';
}

/** The cache key: backend, shape, nonzeros and batch bucket. */
export function choiceKey(
  backend: string,
  inputSize: number,
  outputSize: number,
  nonzeros: number,
  batch: number,
) {
  return `${backend}|${inputSize}x${outputSize}|${nonzeros}|${batchBucket(batch)}`;
}

const choices = new Map<string, SparseDenseChoice>();

/** The cached choice under `key`, if any. */
export function cachedChoice(key: string): SparseDenseChoice | undefined {
  return choices.get(key);
}

/** Stores `choice` under `key`; a measured choice replaces a static one, never the reverse. */
export function storeChoice(key: string, choice: SparseDenseChoice): SparseDenseChoice {
  const existing = choices.get(key);
  if (existing?.measured && !choice.measured) return existing;
  choices.set(key, choice);
  return choice;
}

/**
 * Forgets every cached choice (for example after the machine's load changed), so that the next
 * calls measure again.
 *
 * @example
 * ```ts
 * clearSparseDenseChoices();
 * ```
 */
export function clearSparseDenseChoices(): void {
  choices.clear();
}

/** Backends whose `dataSync` is available everywhere, so a choice can be timed inside a synchronous op. */
export const SYNCHRONOUS_BACKENDS: ReadonlySet<string> = new Set(['cpu', 'wasm']);

/**
 * How the timing runs: untimed warm-up calls of both paths, at least `warmupCalls` and until
 * `warmupMilliseconds` have passed (at most `maxWarmupCalls`), so that V8 has swapped its baseline
 * WebAssembly code for optimised code; then `rounds` timed rounds alternating the paths.
 */
export const TIMING = { warmupCalls: 2, warmupMilliseconds: 20, maxWarmupCalls: 100, rounds: 5 } as const;

/** Whether a warm-up of `calls` calls that took `milliseconds` is enough. */
function warmedUp(calls: number, milliseconds: number): boolean {
  return (
    calls >= TIMING.maxWarmupCalls ||
    (calls >= TIMING.warmupCalls && milliseconds >= TIMING.warmupMilliseconds)
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The choice from two lists of timings. */
export function choiceFromTimings(
  backend: string,
  batch: number,
  sparse: number[],
  dense: number[],
): SparseDenseChoice {
  const sparseMilliseconds = median(sparse);
  const denseMilliseconds = median(dense);
  const path: ProductPath = sparseMilliseconds <= denseMilliseconds ? 'sparse' : 'dense';
  const ratio =
    path === 'sparse' ? denseMilliseconds / sparseMilliseconds : sparseMilliseconds / denseMilliseconds;
  const format = (value: number) => value.toPrecision(3);
  return {
    path,
    backend,
    bucket: batchBucket(batch),
    measured: true,
    batch,
    sparseMilliseconds,
    denseMilliseconds,
    reason: `sparse ${format(sparseMilliseconds)} ms vs dense ${format(denseMilliseconds)} ms (${path} ${ratio.toFixed(2)}× faster) at batch ${batch} on ${backend}`,
  };
}

/** Times `run` once, reading its output synchronously; the output is disposed. */
function timeOnce(run: () => tf.Tensor): number {
  const start = performance.now();
  const y = run();
  y.dataSync();
  const elapsed = performance.now() - start;
  y.dispose();
  return elapsed;
}

/** Times `run` once, awaiting its output; the output is disposed. */
async function timeOnceAsync(run: () => tf.Tensor): Promise<number> {
  const start = performance.now();
  const y = run();
  await y.data();
  const elapsed = performance.now() - start;
  y.dispose();
  return elapsed;
}

/** Times both paths synchronously (cpu, wasm): warm-up, then alternating rounds. */
export function measureSynchronously(sparse: () => tf.Tensor, dense: () => tf.Tensor): [number[], number[]] {
  for (let calls = 0, milliseconds = 0; !warmedUp(calls, milliseconds); calls += 1) {
    milliseconds += timeOnce(sparse) + timeOnce(dense);
  }
  const times: [number[], number[]] = [[], []];
  for (let round = 0; round < TIMING.rounds; round += 1) {
    times[0].push(timeOnce(sparse));
    times[1].push(timeOnce(dense));
  }
  return times;
}

/** Times both paths, awaiting each output (any backend). */
export async function measure(
  sparse: () => tf.Tensor,
  dense: () => tf.Tensor,
): Promise<[number[], number[]]> {
  for (let calls = 0, milliseconds = 0; !warmedUp(calls, milliseconds); calls += 1) {
    milliseconds += (await timeOnceAsync(sparse)) + (await timeOnceAsync(dense));
  }
  const times: [number[], number[]] = [[], []];
  for (let round = 0; round < TIMING.rounds; round += 1) {
    times[0].push(await timeOnceAsync(sparse));
    times[1].push(await timeOnceAsync(dense));
  }
  return times;
}

/** Below this density, an unmeasured choice is sparse (XNNPACK's rule: more than 2/3 of weights zero). */
export const STATIC_DENSITY_THRESHOLD = 1 / 3;

/** The choice made without timing, on backends that cannot read synchronously and were not calibrated. */
export function staticChoice(backend: string, batch: number, density: number): SparseDenseChoice {
  const path: ProductPath = density < STATIC_DENSITY_THRESHOLD ? 'sparse' : 'dense';
  return {
    path,
    backend,
    bucket: batchBucket(batch),
    measured: false,
    reason: `not measured: ${backend} cannot read results synchronously, so density ${density.toPrecision(3)} ${path === 'sparse' ? '<' : '≥'} 1/3 chose ${path}; await weights.calibrate(${batch}) to time both`,
  };
}
