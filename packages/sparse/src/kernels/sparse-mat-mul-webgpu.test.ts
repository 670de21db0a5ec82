import { disposeWebGPU, registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeCase, kernelCases, runCase, sparseProduct, TOLERANCE } from '../../test/kernel-suite';
import { clearSparseDenseChoices } from '../inference/break-even';
import { prepareSparseDense, sparseDense } from '../inference/sparse-dense';
import { sparseMatMul } from '../inference/sparse-mat-mul-op';
import { sparseMatrix } from '../inference/sparse-matrix';
import { compressedRowsFromDense } from '../layout/compressed-rows';

// WebGPU through Dawn in Node: Vulkan where a GPU is present, else OpenGL on Mesa's llvmpipe (software),
// which is what runs on machines without a GPU. The adapter is printed so a log says which ran.
beforeAll(async () => {
  registerWebGPUBackend();
  await setBackend('webgpu');
  console.log(`webgpu adapter: ${JSON.stringify(webgpuSelection()?.adapter)}`);
});
afterAll(async () => {
  await disposeWebGPU();
  await setBackend('wasm');
});

describe('FinepruneSparseMatMul on webgpu (WGSL, Dawn) against dense tf.matMul (cpu)', () => {
  it.each(
    kernelCases([1, 2, 3, 5, 8, 13, 32, 70]).map((testCase) => [describeCase(testCase), testCase] as const),
  )('%s', async (_, testCase) => {
    await setBackend('webgpu');
    const { error, leaked, shape } = await runCase(testCase, sparseProduct(testCase));
    expect(tf.getBackend()).toBe('webgpu');
    expect(shape).toEqual([testCase.batch, testCase.outputSize]);
    expect(error).toBeLessThanOrEqual(TOLERANCE);
    expect(leaked).toBe(0);
  });

  it('folds a dispatch of more than 65,535 workgroups and still writes every output', async () => {
    await setBackend('webgpu');
    // 262,150 outputs → 65,538 groups of four: the backend reshapes the 1-D dispatch into 2-D.
    const outputSize = 262_150;
    const kernel = Float32Array.from({ length: 2 * outputSize }, (_, index) => (index % 7) - 3);
    const matrix = sparseMatrix(compressedRowsFromDense(kernel, [2, outputSize]));
    const y = sparseMatMul(tf.tensor2d([1, -2], [1, 2]), matrix);
    const values = await y.data();
    let wrong = 0;
    for (let output = 0; output < outputSize; output += 1) {
      if (values[output] !== kernel[output]! - 2 * kernel[outputSize + output]!) wrong += 1;
    }
    expect(wrong).toBe(0);
    tf.dispose(y);
    matrix.dispose();
  });
});

describe('sparseDense on webgpu (no synchronous reads in Node)', () => {
  it('picks by density until calibrated, then by the measured times', async () => {
    await setBackend('webgpu');
    clearSparseDenseChoices();
    const kernel = tf.tensor2d(
      Float32Array.from({ length: 64 * 32 }, (_, index) => ((index * 37) % 11) - 5),
      [64, 32],
    );
    const mask = tf.tensor2d(
      Float32Array.from({ length: 64 * 32 }, (_, index) => (index % 10 === 0 ? 1 : 0)),
      [64, 32],
    );
    const x = tf.tensor2d(
      Float32Array.from({ length: 2 * 64 }, (_, index) => (index % 5) - 2),
      [2, 64],
    );
    const expected = await tf.tidy(() => tf.matMul(x, tf.mul(kernel, mask) as tf.Tensor2D)).data();
    const weights = await prepareSparseDense(kernel, { mask });
    const before = tf.memory().numTensors;
    const first = sparseDense(x, weights);
    expect(Array.from(await first.data())).toEqual(Array.from(expected));
    expect(weights.choiceFor(2)).toMatchObject({ path: 'sparse', measured: false });
    const calibrated = await weights.calibrate(2);
    expect(calibrated).toMatchObject({ backend: 'webgpu', bucket: '2-4', measured: true, batch: 2 });
    expect(weights.choiceFor(2)).toEqual(calibrated);
    const second = sparseDense(x, weights);
    expect(Array.from(await second.data())).toEqual(Array.from(expected));
    tf.dispose([first, second]);
    expect(tf.memory().numTensors).toBe(before);
    weights.dispose();
    tf.dispose([kernel, mask, x]);
  });
});
