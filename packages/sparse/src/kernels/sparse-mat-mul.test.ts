import { releaseWasmBackend, setBackend, wasmThreadsInUse } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeCase, kernelCases, runCase, sparseProduct, TOLERANCE } from '../../test/kernel-suite';
import { sparseMatMul } from '../inference/sparse-mat-mul-op';
import { sparseMatrix } from '../inference/sparse-matrix';
import { compressedRowsFromDense } from '../layout/compressed-rows';

// wasm on one thread (its single-threaded SIMD build) and on two (the multi-threaded build, whose
// memory is shared: the spmm module must link to it too).
const configurations = [
  { backend: 'cpu', threads: 1 },
  { backend: 'wasm', threads: 1 },
  { backend: 'wasm', threads: 2 },
];

describe.each(configurations)(
  'FinepruneSparseMatMul on $backend ($threads thread(s)) against dense tf.matMul (cpu)',
  ({ backend, threads }) => {
    beforeAll(async () => {
      if (backend !== 'wasm') return;
      releaseWasmBackend();
      await setBackend('wasm', { wasmThreads: threads });
      expect(wasmThreadsInUse()).toBe(threads);
    });
    afterAll(() => {
      if (backend === 'wasm') releaseWasmBackend();
    });

    it.each(kernelCases().map((testCase) => [describeCase(testCase), testCase] as const))(
      '%s',
      async (_, testCase) => {
        await setBackend(backend);
        const { error, leaked, shape } = await runCase(testCase, sparseProduct(testCase));
        expect(tf.getBackend()).toBe(backend);
        expect(shape).toEqual([testCase.batch, testCase.outputSize]);
        expect(error).toBeLessThanOrEqual(TOLERANCE);
        expect(leaked).toBe(0);
      },
    );

    it('is exact on small integers (every partial sum is representable in float32)', async () => {
      await setBackend(backend);
      // W (3 inputs × 5 outputs), x (2 × 3); y = x·W + b derived by hand:
      // W = [[1, 0, -2, 0, 0], [0, 3, 0, 0, 0], [4, 0, 5, 0, 0]], b = [0.5, 0, 0, 0, -1]
      // x = [[1, 2, 3], [-1, 0, 2]] → y = [[13.5, 6, 13, 0, -1], [7.5, 0, 12, 0, -1]]
      const kernel = [1, 0, -2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 5, 0, 0];
      const before = tf.memory().numTensors;
      const matrix = sparseMatrix(compressedRowsFromDense(kernel, [3, 5]));
      const [x, single, bias] = [
        tf.tensor2d([1, 2, 3, -1, 0, 2], [2, 3]),
        tf.tensor2d([1, 2, 3], [1, 3]),
        tf.tensor1d([0.5, 0, 0, 0, -1]),
      ];
      const [y, ySingle] = [sparseMatMul(x, matrix, bias), sparseMatMul(single, matrix)];
      expect(Array.from(await y.data())).toEqual([13.5, 6, 13, 0, -1, 7.5, 0, 12, 0, -1]);
      expect(Array.from(await ySingle.data())).toEqual([13, 6, 13, 0, 0]);
      tf.dispose([x, single, bias, y, ySingle]);
      matrix.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });
  },
);
