/**
 * The exactness suite of the sparse kernels, run on every backend: random matrices at every kept
 * fraction from 0% to 100%, with empty inputs (rows of the TF.js kernel) and empty outputs (its
 * columns), explicit zeros among the kept weights, and batch sizes 1 to 70 (past the 32 of one wasm
 * chunk). Each case is compared with TF.js's dense `matMul` (plus the bias) of the masked kernel,
 * computed on the cpu backend.
 *
 * Tolerance: |y − y_dense| ≤ 1e-6 · (Σ_k |x_k·W_ko| + |b_o|) for every output. Both sides sum the
 * same float32 products, but in different orders (the sparse kernels skip the zeros, group lanes,
 * split rows across WGSL invocations), and float32 rounding depends on the order. The error of a
 * float32 sum of n products is at most ≈ n·2⁻²⁴ times the sum of their magnitudes, and for random
 * signs it grows like √n·2⁻²⁴ relative to it; 1e-6 sits above that for the n ≤ 400 used here, and far
 * below any real defect (a dropped or doubled product moves an output by a whole |x_k·W_ko|).
 */

import { createRandom, setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { sparseMatMul } from '../src/inference/sparse-mat-mul-op';
import { sparseMatrix } from '../src/inference/sparse-matrix';
import { compressedRowsFromDense } from '../src/layout/compressed-rows';

/** The kept fractions every backend is tested at. */
export const KEPT_FRACTIONS = [0, 0.01, 0.03, 0.1, 0.3, 0.5, 0.9, 1] as const;

export const TOLERANCE = 1e-6;

export interface KernelCase {
  inputSize: number;
  outputSize: number;
  kept: number;
  batch: number;
  /** Inputs k whose every weight is dropped (an empty row of the TF.js kernel). */
  emptyInputs: number[];
  /** Outputs o whose every weight is dropped (an empty column of the TF.js kernel). */
  emptyOutputs: number[];
  bias: boolean;
  seed: number;
}

export interface CaseData {
  x: Float32Array;
  kernel: Float32Array;
  mask: Float32Array;
  bias: Float32Array | undefined;
}

/** The cases: every kept fraction × a spread of shapes and batch sizes. */
export function kernelCases(batches: readonly number[] = [1, 2, 3, 5, 8, 13, 32, 33, 70]): KernelCase[] {
  const cases: KernelCase[] = [];
  let seed = 1;
  for (const kept of KEPT_FRACTIONS) {
    for (const batch of batches) {
      const random = createRandom(seed);
      const inputSize = 1 + Math.floor(random.next() * 300);
      const outputSize = 1 + Math.floor(random.next() * 90);
      const emptyInputs = seed % 3 === 0 ? [] : [0, Math.floor(inputSize / 2), inputSize - 1];
      const emptyOutputs = seed % 2 === 0 ? [] : [outputSize - 1, Math.floor(outputSize / 3)];
      cases.push({
        inputSize,
        outputSize,
        kept,
        batch,
        emptyInputs,
        emptyOutputs,
        bias: seed % 2 === 1,
        seed,
      });
      seed += 1;
    }
  }
  return cases;
}

/** The arrays of a case: exactly round(kept·free) weights kept among the positions not forced empty. */
export function caseData(testCase: KernelCase): CaseData {
  const { inputSize, outputSize, batch } = testCase;
  const random = createRandom(1000 + testCase.seed);
  const free: number[] = [];
  for (let input = 0; input < inputSize; input += 1) {
    if (testCase.emptyInputs.includes(input)) continue;
    for (let output = 0; output < outputSize; output += 1) {
      if (!testCase.emptyOutputs.includes(output)) free.push(input * outputSize + output);
    }
  }
  for (let index = free.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random.next() * (index + 1));
    [free[index], free[other]] = [free[other]!, free[index]!];
  }
  const mask = new Float32Array(inputSize * outputSize);
  for (const position of free.slice(0, Math.round(testCase.kept * free.length))) mask[position] = 1;
  // One kept weight in 20 is an explicit zero: kept by the mask, stored, and worth nothing.
  const kernel = Float32Array.from({ length: inputSize * outputSize }, () =>
    random.next() < 0.05 ? 0 : random.next() * 2 - 1,
  );
  const x = Float32Array.from({ length: batch * inputSize }, () => random.next() * 4 - 2);
  const bias = testCase.bias
    ? Float32Array.from({ length: outputSize }, () => random.next() - 0.5)
    : undefined;
  return { x, kernel, mask, bias };
}

/** TF.js's dense product of the masked kernel on the cpu backend, and each output's error scale. */
export async function denseReference(
  testCase: KernelCase,
  data: CaseData,
): Promise<{ expected: Float32Array; scale: Float64Array }> {
  const previous = tf.getBackend();
  // @fineprune/tensor's setBackend registers the cpu backend when no earlier test file did.
  await setBackend('cpu');
  const { inputSize, outputSize, batch } = testCase;
  const expected = tf.tidy(() => {
    const masked = tf.mul(
      tf.tensor2d(data.kernel, [inputSize, outputSize]),
      tf.tensor2d(data.mask, [inputSize, outputSize]),
    );
    const product = tf.matMul(tf.tensor2d(data.x, [batch, inputSize]), masked as tf.Tensor2D);
    return (data.bias ? tf.add(product, tf.tensor1d(data.bias)) : product).dataSync() as Float32Array;
  });
  await tf.setBackend(previous);
  const scale = new Float64Array(batch * outputSize);
  for (let element = 0; element < batch; element += 1) {
    for (let output = 0; output < outputSize; output += 1) {
      let total = data.bias ? Math.abs(data.bias[output]!) : 0;
      for (let input = 0; input < inputSize; input += 1) {
        const weight = data.kernel[input * outputSize + output]! * data.mask[input * outputSize + output]!;
        total += Math.abs(data.x[element * inputSize + input]! * weight);
      }
      scale[element * outputSize + output] = total;
    }
  }
  return { expected, scale };
}

/** The largest |y − expected| / scale (scale 0 → the raw difference, which must then be 0). */
export function worstScaledError(
  actual: ArrayLike<number>,
  expected: Float32Array,
  scale: Float64Array,
): number {
  let worst = 0;
  for (let index = 0; index < expected.length; index += 1) {
    const difference = Math.abs(actual[index]! - expected[index]!);
    const error = scale[index]! === 0 ? difference : difference / scale[index]!;
    if (!(error <= worst)) worst = Number.isNaN(error) ? Number.POSITIVE_INFINITY : error;
  }
  return worst;
}

export function describeCase(testCase: KernelCase): string {
  const empties = `${testCase.emptyInputs.length} empty inputs, ${testCase.emptyOutputs.length} empty outputs`;
  return `${testCase.inputSize}×${testCase.outputSize} kept ${testCase.kept * 100}% batch ${testCase.batch} (${empties}${testCase.bias ? ', bias' : ''})`;
}

/** Runs one case on the active backend; returns the worst scaled error (tensors are all disposed). */
export async function runCase(
  testCase: KernelCase,
  product: (x: tf.Tensor2D, data: CaseData, bias: tf.Tensor1D | undefined) => tf.Tensor,
): Promise<{ error: number; leaked: number; shape: number[] }> {
  const data = caseData(testCase);
  const { expected, scale } = await denseReference(testCase, data);
  const before = tf.memory().numTensors;
  const x = tf.tensor2d(data.x, [testCase.batch, testCase.inputSize]);
  const bias = data.bias ? tf.tensor1d(data.bias) : undefined;
  const y = product(x, data, bias);
  const actual = await y.data();
  const shape = y.shape;
  tf.dispose([x, y, ...(bias ? [bias] : [])]);
  return { error: worstScaledError(actual, expected, scale), leaked: tf.memory().numTensors - before, shape };
}

/** The product under test: the case's kernel and mask as a sparse matrix, through `sparseMatMul`. */
export function sparseProduct(testCase: KernelCase) {
  return (x: tf.Tensor2D, data: CaseData, bias: tf.Tensor1D | undefined): tf.Tensor => {
    const matrix = sparseMatrix(
      compressedRowsFromDense(data.kernel, [testCase.inputSize, testCase.outputSize], { mask: data.mask }),
    );
    const y = sparseMatMul(x, matrix, bias);
    matrix.dispose();
    return y;
  };
}
