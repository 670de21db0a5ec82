/**
 * Benchmark: one prunable matrix, sparse kernel against dense product, on wasm (issue 16, "Latency").
 *
 * For each shape (784×300: the MNIST MLP's first layer; 768×768 and 768×3072: BERT-base's attention
 * and feed-forward projections), kept fraction (1, 3, 10, 30, 50%) and batch size (1, 8, 32):
 * `sparseMatMul` of @fineprune/sparse (WebAssembly SIMD over the sliced-rows layout) against TF.js's
 * `matMul` on its fast path (tfjs-wasm runs XNNPACK only for rank-2-like products without transpose
 * flags, which is what is timed here), in alternating blocks of calls in one process; the headline is
 * the CPU time per call in the best block of each (the machines are shared, and other processes only
 * add time), with the median blocks of CPU and wall-clock time written beside it.
 * As a check that the baseline is that fast path, the same product through `transposeB` (tfjs-wasm's
 * scalar fallback loop) is timed once per shape at batch 1.
 *
 * Also written: the break-even kept fraction per shape and batch (where the speed-up crosses 1,
 * interpolated on log(kept)), and the physical limit for the shape: bytes a call reads and writes,
 * dense against sparse, whose ratio bounds the speed-up when the weights come from memory.
 *
 * Writes bench/results/sparse-kernels.json. Run: `cd bench && pnpm sparse-kernels [--repeats 15]`.
 */

import { compressedRowsFromDense, type SparseMatrix, sparseMatMul, sparseMatrix } from '@fineprune/sparse';
import { createRandom } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { blocksSideBySide, median, startWasmBenchmark, writeResult, runIfScript } from './harness';

const SHAPES: Array<[number, number]> = [
  [784, 300],
  [768, 768],
  [768, 3072],
];
const KEPT = [0.01, 0.03, 0.1, 0.3, 0.5];
const BATCHES = [1, 8, 32];
/** The targets at batch 1: at least 3× at 10% kept and 6× at 3%. */
const TARGETS: Record<string, number> = { '0.1': 3, '0.03': 6 };

interface Measurement {
  kept: number;
  nonzeros: number;
  batch: number;
  /** CPU milliseconds per call of the sparse op, in the best block. */
  sparseMs: number;
  /** CPU milliseconds per call of the dense op, in the best block. */
  denseMs: number;
  /** denseMs / sparseMs. */
  speedup: number;
  /** The same from the median blocks of CPU time. */
  median: { sparseMs: number; denseMs: number; speedup: number };
  /** The same from the median blocks of wall-clock time. */
  wall: { sparseMs: number; denseMs: number; speedup: number };
  /** Sparse time per kept weight and batch element, in nanoseconds. */
  sparseNanosecondsPerNonzero: number;
  /** Dense time per weight and batch element, in nanoseconds. */
  denseNanosecondsPerWeight: number;
  /** Bytes the sparse call reads and writes (layout, input, staging, output). */
  sparseBytes: number;
  /** Bytes the dense call reads and writes (weights, input, output). */
  denseBytes: number;
  /** denseBytes / sparseBytes: the speed-up bound when the weights stream from memory. */
  byteRatio: number;
}

function round(value: number, digits: number): number {
  return Number(value.toPrecision(digits));
}

/** A [K, N] kernel with exactly round(kept·K·N) weights kept at random positions, and its mask. */
function prunedKernel(inputSize: number, outputSize: number, kept: number, seed: number) {
  const random = createRandom(seed);
  const size = inputSize * outputSize;
  const positions = Int32Array.from({ length: size }, (_, index) => index);
  const count = Math.round(kept * size);
  for (let index = 0; index < count; index += 1) {
    const other = index + Math.floor(random.next() * (size - index));
    [positions[index], positions[other]] = [positions[other]!, positions[index]!];
  }
  const mask = new Float32Array(size);
  for (let index = 0; index < count; index += 1) mask[positions[index]!] = 1;
  const weights = Float32Array.from({ length: size }, (_, index) =>
    mask[index] ? random.next() * 2 - 1 : 0,
  );
  return { weights, mask };
}

/** Bytes read and written by one call on each path (4-byte floats and ints). */
function bytesMoved(matrix: SparseMatrix, batch: number) {
  const { inputSize, outputSize, slots, groups } = matrix;
  const activations = 4 * batch * (inputSize + outputSize);
  // Batch 1 stages x with a zero after it; batch ≥ 2 writes x transposed into [K + 1][4⌈B/4⌉].
  const staging =
    batch === 1 ? 8 * (inputSize + 1) : 4 * batch * inputSize + 16 * Math.ceil(batch / 4) * (inputSize + 1);
  const layout = 2 * 16 * slots + 4 * (9 * groups + 1);
  return {
    sparseBytes: layout + activations + staging,
    denseBytes: 4 * inputSize * outputSize + activations,
  };
}

/** The kept fraction where the speed-up crosses 1, interpolated on log(kept); bounds when it never does. */
function breakEven(points: Measurement[]): { kept: number | null; note: string } {
  const sorted = [...points].sort((a, b) => a.kept - b.kept);
  for (let index = 1; index < sorted.length; index += 1) {
    const [low, high] = [sorted[index - 1]!, sorted[index]!];
    if (low.speedup >= 1 && high.speedup < 1) {
      const [a, b] = [Math.log(low.kept), Math.log(high.kept)];
      const t = Math.log(low.speedup) / (Math.log(low.speedup) - Math.log(high.speedup));
      return { kept: round(Math.exp(a + t * (b - a)), 3), note: 'interpolated between measured fractions' };
    }
  }
  const last = sorted.at(-1)!;
  if (last.speedup >= 1)
    return { kept: null, note: `sparse faster at every fraction measured (up to ${last.kept})` };
  return { kept: null, note: `dense faster at every fraction measured (from ${sorted[0]!.kept})` };
}

async function measureShape(
  [inputSize, outputSize]: [number, number],
  repeats: number,
  seed: number,
): Promise<Record<string, unknown>> {
  const measurements: Measurement[] = [];
  const inputs = new Map(
    BATCHES.map((batch) => {
      const random = createRandom(seed + batch);
      const values = Float32Array.from({ length: batch * inputSize }, () => random.next() * 2 - 1);
      return [batch, tf.tensor2d(values, [batch, inputSize])];
    }),
  );
  for (const kept of KEPT) {
    const { weights, mask } = prunedKernel(inputSize, outputSize, kept, seed + Math.round(kept * 1000));
    const matrix = sparseMatrix(compressedRowsFromDense(weights, [inputSize, outputSize], { mask }));
    const dense = tf.tensor2d(weights, [inputSize, outputSize]);
    for (const batch of BATCHES) {
      const x = inputs.get(batch)!;
      const [sparseTimes, denseTimes] = blocksSideBySide(
        () => sparseMatMul(x, matrix).dispose(),
        () => tf.matMul(x, dense).dispose(),
        repeats,
        4,
        300,
      );
      const [sparseMs, denseMs] = [Math.min(...sparseTimes.cpu), Math.min(...denseTimes.cpu)];
      const [sparseMedian, denseMedian] = [median(sparseTimes.cpu), median(denseTimes.cpu)];
      const [sparseWall, denseWall] = [median(sparseTimes.wall), median(denseTimes.wall)];
      const bytes = bytesMoved(matrix, batch);
      measurements.push({
        kept,
        nonzeros: matrix.nonzeros,
        batch,
        sparseMs: round(sparseMs, 4),
        denseMs: round(denseMs, 4),
        speedup: round(denseMs / sparseMs, 3),
        median: {
          sparseMs: round(sparseMedian, 4),
          denseMs: round(denseMedian, 4),
          speedup: round(denseMedian / sparseMedian, 3),
        },
        wall: {
          sparseMs: round(sparseWall, 4),
          denseMs: round(denseWall, 4),
          speedup: round(denseWall / sparseWall, 3),
        },
        sparseNanosecondsPerNonzero: round((sparseMs * 1e6) / (matrix.nonzeros * batch), 3),
        denseNanosecondsPerWeight: round((denseMs * 1e6) / (inputSize * outputSize * batch), 3),
        ...bytes,
        byteRatio: round(bytes.denseBytes / bytes.sparseBytes, 3),
      });
      console.log(
        `${inputSize}×${outputSize} kept ${kept * 100}% batch ${batch}: CPU sparse ${sparseMs.toFixed(4)} ms, dense ${denseMs.toFixed(4)} ms, ${(denseMs / sparseMs).toFixed(2)}× (median ${(denseMedian / sparseMedian).toFixed(2)}×, wall ${(denseWall / sparseWall).toFixed(2)}×)`,
      );
    }
    matrix.dispose();
    dense.dispose();
  }
  // The scalar fallback (transposeB), to show the dense baseline above is the fast path, and the
  // sparse op's fixed cost for the shape: the same call on a matrix with nothing kept.
  const { weights } = prunedKernel(inputSize, outputSize, 1, seed);
  const plain = tf.tensor2d(weights, [inputSize, outputSize]);
  const transposed = tf.transpose(plain);
  const empty = sparseMatrix(
    compressedRowsFromDense(new Float32Array(inputSize * outputSize), [inputSize, outputSize]),
  );
  const x1 = inputs.get(1)!;
  const [fastTimes, slowTimes] = blocksSideBySide(
    () => tf.matMul(x1, plain).dispose(),
    () => tf.matMul(x1, transposed, false, true).dispose(),
    Math.max(5, Math.round(repeats / 4)),
  );
  const [emptyTimes] = blocksSideBySide(
    () => sparseMatMul(x1, empty).dispose(),
    () => tf.add(x1, x1).dispose(),
    Math.max(5, Math.round(repeats / 4)),
  );
  tf.dispose([transposed, plain, ...inputs.values()]);
  empty.dispose();
  const breakEvenByBatch = Object.fromEntries(
    BATCHES.map((batch) => [batch, breakEven(measurements.filter((entry) => entry.batch === batch))]),
  );
  const targets = Object.entries(TARGETS).map(([kept, wanted]) => {
    const entry = measurements.find((point) => point.batch === 1 && String(point.kept) === kept)!;
    const shortBy = entry.speedup >= wanted ? 0 : round(wanted / entry.speedup, 3);
    return {
      kept: Number(kept),
      batch: 1,
      target: wanted,
      measured: entry.speedup,
      met: entry.speedup >= wanted,
      shortBy,
    };
  });
  return {
    shape: [inputSize, outputSize],
    denseWeightBytes: 4 * inputSize * outputSize,
    denseBaselineCheck: {
      fastPathMs: round(Math.min(...fastTimes.cpu), 4),
      transposeBFallbackMs: round(Math.min(...slowTimes.cpu), 4),
      note: 'batch 1, CPU time: matMul(x, W) (XNNPACK) against matMul(x, Wᵀ, false, true) (scalar loop)',
    },
    sparseFixedCostMs: {
      batch1: round(Math.min(...emptyTimes.cpu), 4),
      note: 'CPU time of the sparse op at batch 1 on this shape with nothing kept: dispatch, staging x, writing N outputs',
    },
    measurements,
    breakEvenKeptFraction: breakEvenByBatch,
    targets,
  };
}

/**
 * About a second of calls of both paths at every batch size on a throwaway matrix, before anything is
 * timed: V8 runs new WebAssembly functions in its baseline compiler and swaps in optimised code only
 * after they have run a while, which would otherwise fall on the first shape measured.
 */
function warmUp(): void {
  const { weights, mask } = prunedKernel(256, 256, 0.1, 1);
  const matrix = sparseMatrix(compressedRowsFromDense(weights, [256, 256], { mask }));
  const dense = tf.tensor2d(weights, [256, 256]);
  for (const batch of BATCHES) {
    const x = tf.ones([batch, 256]) as tf.Tensor2D;
    blocksSideBySide(
      () => sparseMatMul(x, matrix).dispose(),
      () => tf.matMul(x, dense).dispose(),
      1,
      4,
      300,
    );
    x.dispose();
  }
  matrix.dispose();
  dense.dispose();
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const repeats = await startWasmBenchmark(argv, 15);
  const tensorsAtStart = tf.memory().numTensors;
  warmUp();
  const shapes = [];
  for (const [index, shape] of SHAPES.entries())
    shapes.push(await measureShape(shape, repeats, 100 * (index + 1)));
  const tensorsLeaked = tf.memory().numTensors - tensorsAtStart;
  if (tensorsLeaked !== 0) throw new Error(`${tensorsLeaked} tensors leaked`);
  const result = {
    backend: 'wasm (tfjs-backend-wasm 4.22, SIMD, one thread)',
    repeats,
    method:
      'alternating blocks of calls (sparse block, dense block; each block about 4 ms of CPU; 300 ms of untimed calls of each first, so V8 tiers both wasm modules up), `repeats` blocks each; a call is the op plus the dispose of its output (wasm runs kernels synchronously). Headline (sparseMs, denseMs, speedup = dense / sparse): CPU time of this process per call in the best block of each, because the machine is shared and other processes only add time (waiting for a core, evicted caches); `median` gives the median blocks of CPU time and `wall` the median blocks of wall-clock time',
    kept: KEPT,
    batches: BATCHES,
    shapes,
    tensorsLeaked,
  };
  const file = writeResult('sparse-kernels', result);
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
