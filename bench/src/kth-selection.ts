/**
 * Benchmark: k-th largest selection over 10M and 85M float32 scores (the Top-v threshold of global
 * magnitude or movement pruning), with `kthLargest` (radix select on the float bits) against
 * `tf.topk` on wasm. Writes bench/results/kth-selection.json.
 *
 * Run: `cd bench && npx tsx --conditions=source src/kth-selection.ts`
 */

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRandom, kthLargest, readFloat32, setBackend, topCountMasks } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { median, timeRepeated, writeResult } from './harness';

const KEPT_FRACTIONS = [0.01, 0.1, 0.5] as const;
const MEBIBYTE = 2 ** 20;

/** BERT-base encoder weight shapes: 12 layers × (4 attention 768×768 + 768×3072 + 3072×768) ≈ 85M. */
function bertBaseSizes(): number[] {
  const sizes: number[] = [];
  for (let layer = 0; layer < 12; layer += 1)
    sizes.push(768 * 768, 768 * 768, 768 * 768, 768 * 768, 768 * 3072, 3072 * 768);
  return sizes;
}

/** Gaussian-ish scores (sum of two uniforms, centred), as weights or movement scores look. */
function randomScores(sizes: readonly number[], seed: number): Float32Array[] {
  const random = createRandom(seed);
  return sizes.map((size) => {
    const array = new Float32Array(size);
    for (let index = 0; index < size; index += 1) array[index] = (random.next() + random.next() - 1) * 0.05;
    return array;
  });
}

/** Peak memory tracker: process.memoryUsage() sampled at each stage, plus the kernel's max RSS. */
class MemoryTracker {
  peakRssMiB = 0;
  peakHeapUsedMiB = 0;
  peakArrayBuffersMiB = 0;

  sample(): void {
    const usage = process.memoryUsage();
    this.peakRssMiB = Math.max(this.peakRssMiB, usage.rss / MEBIBYTE);
    this.peakHeapUsedMiB = Math.max(this.peakHeapUsedMiB, usage.heapUsed / MEBIBYTE);
    this.peakArrayBuffersMiB = Math.max(this.peakArrayBuffersMiB, usage.arrayBuffers / MEBIBYTE);
  }

  report(): Record<string, number> {
    this.sample();
    return {
      peakRssMiB: round(this.peakRssMiB),
      peakHeapUsedMiB: round(this.peakHeapUsedMiB),
      peakArrayBuffersMiB: round(this.peakArrayBuffersMiB),
      maxRssMiBFromKernel: round(process.resourceUsage().maxRSS / 1024),
    };
  }
}

function round(value: number, digits = 1): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function summary(times: readonly number[]): Record<string, number> {
  return {
    medianMs: round(median(times), 2),
    minMs: round(Math.min(...times), 2),
    maxMs: round(Math.max(...times), 2),
  };
}

/** Runs the benchmark and writes its JSON result; returns the result. */
export async function main(): Promise<Record<string, unknown>> {
  const memory = new MemoryTracker();
  const sizes = { '10M': [10_000_000], '85M': bertBaseSizes() };
  const selection: Record<string, unknown>[] = [];

  for (const [label, shape] of Object.entries(sizes)) {
    const scores = randomScores(shape, 42);
    const n = shape.reduce((sum, size) => sum + size, 0);
    memory.sample();
    const repeats = n > 20_000_000 ? 3 : 7;
    for (const backend of ['wasm', 'cpu'] as const) {
      await setBackend(backend);
      for (const fraction of KEPT_FRACTIONS) {
        const k = Math.round(n * fraction);
        let value = 0;
        const times = await timeRepeated(() => {
          value = kthLargest(scores, k);
        }, repeats);
        memory.sample();
        const perTenMillion = (median(times) * 10_000_000) / n;
        selection.push({
          backend,
          scores: label,
          n,
          arrays: shape.length,
          keptFraction: fraction,
          k,
          value,
          ...summary(times),
          medianMsPer10M: round(perTenMillion, 2),
        });
        console.log(
          `kthLargest ${label} on ${backend}, ${fraction * 100}% kept: ${round(median(times), 1)} ms ` +
            `(${round(perTenMillion, 1)} ms per 10M)`,
        );
      }
    }
    // Masks with exactly k ones (selection + one pass writing the masks), on the 10% setting: fresh
    // masks each call (allocation and page faults included) and reused ones (`out`).
    const keep = Math.round(n * 0.1);
    const maskRepeats = n > 20_000_000 ? 3 : 5;
    const maskTimes = await timeRepeated(() => topCountMasks(scores, keep), maskRepeats, 1);
    memory.sample();
    const out = scores.map((array) => new Float32Array(array.length));
    const reusedTimes = await timeRepeated(() => topCountMasks(scores, keep, out), maskRepeats, 1);
    memory.sample();
    selection.push({
      operation: 'topCountMasks (new masks)',
      scores: label,
      n,
      keptFraction: 0.1,
      ...summary(maskTimes),
    });
    selection.push({
      operation: 'topCountMasks (reused out)',
      scores: label,
      n,
      keptFraction: 0.1,
      ...summary(reusedTimes),
    });
    console.log(
      `topCountMasks ${label}, 10% kept: ${round(median(maskTimes), 1)} ms new masks, ` +
        `${round(median(reusedTimes), 1)} ms reused`,
    );
  }

  // The TF.js route on wasm at 10M: reading the scores back, and tf.topk.
  await setBackend('wasm');
  const [scores] = randomScores([10_000_000], 7);
  const tensor = tf.tensor1d(scores!);
  const readTimes = await timeRepeated(() => readFloat32(tensor), 5);
  memory.sample();
  const comparison: Record<string, unknown>[] = [
    { operation: 'readFloat32 (wasm, 10M)', ...summary(readTimes) },
  ];
  console.log(`readFloat32 10M on wasm: ${round(median(readTimes), 1)} ms`);
  const values = await readFloat32(tensor);
  for (const fraction of KEPT_FRACTIONS) {
    const k = Math.round(10_000_000 * fraction);
    let topkValue = 0;
    const topkTimes = await timeRepeated(
      async () => {
        const { values: top, indices } = tf.topk(tensor, k);
        const last = tf.slice(top, [k - 1], [1]);
        topkValue = (await last.data())[0]!;
        tf.dispose([top, indices, last]);
      },
      3,
      1,
    );
    memory.sample();
    const radixTimes = await timeRepeated(() => kthLargest(values, k), 5);
    const radixValue = kthLargest(values, k);
    comparison.push({
      operation: 'tf.topk (wasm, 10M) then read the k-th value',
      keptFraction: fraction,
      k,
      ...summary(topkTimes),
      agreesWithKthLargest: topkValue === radixValue,
    });
    comparison.push({
      operation: 'kthLargest (same scores)',
      keptFraction: fraction,
      k,
      ...summary(radixTimes),
    });
    console.log(
      `tf.topk 10M on wasm, ${fraction * 100}% kept: ${round(median(topkTimes), 1)} ms ` +
        `(kthLargest ${round(median(radixTimes), 1)} ms, same value: ${topkValue === radixValue})`,
    );
  }
  tensor.dispose();

  const result = {
    description:
      'k-th largest of float32 scores: radix select on the float bit patterns (kthLargest) vs tf.topk on wasm. ' +
      'The JS selection is backend-independent; both backends are listed to show it. 85M = BERT-base encoder ' +
      'shapes (72 arrays), selected globally. tf.topk on cpu is not run (seconds and ~1 GB per call).',
    targetMsPer10M: 60,
    selection,
    comparison,
    memory: memory.report(),
  };
  const file = writeResult('kth-selection', result);
  console.log(`wrote ${file}`);
  return result;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
