import { createRandom, setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeEach, describe, expect, it } from 'vitest';
import { codeOf } from '../../test/errors';
import { SPARSE_MAT_MUL } from '../kernels/sparse-mat-mul';
import { compressedRowsFromDense } from '../layout/compressed-rows';
import { batchBucket, choiceFromTimings, clearSparseDenseChoices, staticChoice } from './break-even';
import { prepareSparseDense, prepareSparseDenseFromRows, sparseDense } from './sparse-dense';
import { sparseMatMul } from './sparse-mat-mul-op';
import { sparseMatrix, sparseMatrixFromKernel } from './sparse-matrix';

const [K, N] = [40, 24];

/** A kernel with about `kept` of its weights nonzero, its 0/1 mask, a bias and an input. */
function operands(seed: number, kept: number, batch: number) {
  const random = createRandom(seed);
  const mask = Float32Array.from({ length: K * N }, () => (random.next() < kept ? 1 : 0));
  const kernel = Float32Array.from({ length: K * N }, () => random.next() * 2 - 1);
  const bias = Float32Array.from({ length: N }, () => random.next());
  const x = Float32Array.from({ length: batch * K }, () => random.next() * 2 - 1);
  return {
    kernel: tf.tensor2d(kernel, [K, N]),
    mask: tf.tensor2d(mask, [K, N]),
    bias: tf.tensor1d(bias),
    x: tf.tensor2d(x, [batch, K]),
  };
}

/** x·(kernel ⊙ mask) + bias by TF.js's dense ops. */
function denseProduct(o: ReturnType<typeof operands>): Float32Array {
  return tf.tidy(
    () => tf.add(tf.matMul(o.x, tf.mul(o.kernel, o.mask) as tf.Tensor2D), o.bias).dataSync() as Float32Array,
  );
}

/** The values of `y`, which is disposed. */
function valuesOf(y: tf.Tensor): Float32Array {
  const values = y.dataSync() as Float32Array;
  y.dispose();
  return values;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  expect(actual.length).toBe(expected.length);
  for (let index = 0; index < expected.length; index += 1) {
    expect(Math.abs(actual[index]! - expected[index]!)).toBeLessThanOrEqual(1e-5);
  }
}

/** The TF.js kernels `run` executed (from tf.profile). */
async function kernelsRun(run: () => tf.Tensor): Promise<string[]> {
  const profile = await tf.profile(() => {
    run().dispose();
  });
  return profile.kernelNames;
}

describe('the break-even choice', () => {
  it('keeps the path with the lower median time and says by how much', () => {
    const choice = choiceFromTimings('wasm', 8, [0.5, 0.1, 0.2, 9, 0.2], [0.4, 0.5, 0.6, 0.01, 0.5]);
    expect(choice).toMatchObject({
      path: 'sparse',
      bucket: '5-8',
      measured: true,
      sparseMilliseconds: 0.2,
      denseMilliseconds: 0.5,
    });
    expect(choice.reason).toBe('sparse 0.200 ms vs dense 0.500 ms (sparse 2.50× faster) at batch 8 on wasm');
    expect(choiceFromTimings('cpu', 1, [3, 3, 3], [1, 2, 2]).path).toBe('dense');
  });

  it('buckets batch sizes by powers of two up to 32', () => {
    expect([1, 2, 4, 5, 8, 9, 16, 17, 32, 33, 512].map(batchBucket)).toEqual([
      '1',
      '2-4',
      '2-4',
      '5-8',
      '5-8',
      '9-16',
      '9-16',
      '17-32',
      '17-32',
      '33+',
      '33+',
    ]);
  });

  it('falls back to density without timing: sparse below 1/3 kept', () => {
    expect(staticChoice('webgpu', 1, 0.1)).toMatchObject({ path: 'sparse', measured: false });
    expect(staticChoice('webgpu', 1, 0.5)).toMatchObject({ path: 'dense', measured: false });
    expect(staticChoice('webgpu', 4, 0.5).reason).toContain('await weights.calibrate(4)');
  });
});

describe.each(['cpu', 'wasm'])('sparseDense on %s', (backend) => {
  beforeEach(async () => {
    await setBackend(backend);
    clearSparseDenseChoices();
  });

  it('times both paths on first use, caches the choice per batch bucket, and runs the chosen one', async () => {
    const o = operands(1, 0.1, 3);
    const before = tf.memory().numTensors;
    const weights = await prepareSparseDense(o.kernel, { mask: o.mask, bias: o.bias });
    expect(weights.choiceFor(3)).toBeUndefined();
    const y = sparseDense(o.x, weights);
    expectClose(y.dataSync(), denseProduct(o));
    const choice = weights.choiceFor(3)!;
    expect(choice).toMatchObject({ backend, bucket: '2-4', measured: true, batch: 3 });
    expect(choice.sparseMilliseconds).toBeGreaterThan(0);
    expect(choice.denseMilliseconds).toBeGreaterThan(0);
    expect(choice.path).toBe(choice.sparseMilliseconds! <= choice.denseMilliseconds! ? 'sparse' : 'dense');
    // The second call in the bucket reuses the choice (no new timing) and runs only the chosen kernel.
    const two = tf.slice(o.x, [0, 0], [2, K]);
    const one = tf.slice(o.x, [0, 0], [1, K]);
    const ran = await kernelsRun(() => sparseDense(two, weights));
    expect(weights.choices()).toHaveLength(1);
    expect(ran.includes(SPARSE_MAT_MUL)).toBe(choice.path === 'sparse');
    // Batch 1 is another bucket: a second choice.
    sparseDense(one, weights).dispose();
    expect(weights.choices().map((made) => made.bucket)).toEqual(['2-4', '1']);
    tf.dispose([y, one, two]);
    weights.dispose();
    tf.dispose(o);
    expect(tf.memory().numTensors).toBe(before - 4);
  });

  it('runs the path a cached choice names, whatever the density', async () => {
    const o = operands(2, 0.5, 2);
    const weights = await prepareSparseDense(o.kernel, { mask: o.mask, bias: o.bias });
    const expected = denseProduct(o);
    for (const path of ['sparse', 'dense'] as const) {
      weights.remember(2, { path, backend, bucket: '2-4', measured: true, reason: 'set by the test' });
      const ran = await kernelsRun(() => sparseDense(o.x, weights));
      expect(ran.includes(SPARSE_MAT_MUL)).toBe(path === 'sparse');
      expect(ran.some((name) => /MatMul/.test(name) && name !== SPARSE_MAT_MUL)).toBe(path === 'dense');
      expectClose(valuesOf(sparseDense(o.x, weights)), expected);
    }
    weights.dispose();
    tf.dispose(o);
  });

  it("honours mode 'sparse' (no dense copy kept) and mode 'dense'", async () => {
    const o = operands(3, 0.2, 2);
    const expected = denseProduct(o);
    const sparse = await prepareSparseDense(o.kernel, { mask: o.mask, bias: o.bias, mode: 'sparse' });
    expect(sparse.dense).toBeUndefined();
    expect(await kernelsRun(() => sparseDense(o.x, sparse))).toContain(SPARSE_MAT_MUL);
    expectClose(valuesOf(sparseDense(o.x, sparse)), expected);
    expect(sparse.choices()).toEqual([]);
    const dense = await prepareSparseDense(o.kernel, { mask: o.mask, bias: o.bias, mode: 'dense' });
    expect(await kernelsRun(() => sparseDense(o.x, dense))).not.toContain(SPARSE_MAT_MUL);
    expectClose(valuesOf(sparseDense(o.x, dense)), expected);
    tf.dispose(o);
    sparse.dispose();
    dense.dispose();
  });

  it('accepts inputs of any rank whose last axis is K, and compressed rows from a loader', async () => {
    const o = operands(4, 0.3, 6);
    const rows = compressedRowsFromDense(o.kernel.dataSync(), [K, N], { mask: o.mask.dataSync() });
    const weights = prepareSparseDenseFromRows(rows, { bias: o.bias });
    const y = sparseDense(tf.reshape(o.x, [2, 3, K]), weights);
    expect(y.shape).toEqual([2, 3, N]);
    expectClose(y.dataSync(), denseProduct(o));
    const direct = sparseMatMul(tf.reshape(o.x, [2, 3, K]), weights.matrix, weights.bias);
    expectClose(direct.dataSync(), denseProduct(o));
    // A single vector [K] gives [N]; an empty batch gives an empty result.
    const vector = sparseMatMul(tf.reshape(tf.slice(o.x, [1, 0], [1, K]), [K]), weights.matrix, weights.bias);
    expect(vector.shape).toEqual([N]);
    expectClose(vector.dataSync(), denseProduct(o).subarray(N, 2 * N));
    const empty = sparseMatMul(tf.zeros([0, K]), weights.matrix);
    expect(empty.shape).toEqual([0, N]);
    tf.dispose([y, direct, vector, empty, o.kernel, o.mask, o.bias, o.x]);
    weights.dispose();
  });

  it('leaks no tensor over many calls, the first (timed) one included', async () => {
    const o = operands(5, 0.05, 4);
    const weights = await prepareSparseDense(o.kernel, { mask: o.mask, bias: o.bias });
    const before = tf.memory().numTensors;
    for (let call = 0; call < 20; call += 1) sparseDense(o.x, weights).dispose();
    expect(tf.memory().numTensors).toBe(before);
    weights.dispose();
    tf.dispose(o);
  });

  it('refuses operands that do not fit, with typed errors', async () => {
    const o = operands(6, 0.1, 2);
    const weights = await prepareSparseDense(o.kernel, { mask: o.mask });
    expect(codeOf(() => sparseDense(tf.zeros([2, K + 1]), weights))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => sparseDense(tf.zeros([2, K], 'int32'), weights))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => sparseMatMul(o.x, weights.matrix, tf.zeros([N + 1]) as tf.Tensor1D))).toBe(
      'SHAPE_MISMATCH',
    );
    await expect(prepareSparseDense(o.kernel, { mask: tf.ones([K, N + 1]) })).rejects.toMatchObject({
      code: 'SHAPE_MISMATCH',
    });
    await expect(prepareSparseDense(tf.ones([2, 2, 2]) as tf.Tensor as tf.Tensor2D)).rejects.toMatchObject({
      code: 'SHAPE_MISMATCH',
    });
    await expect(prepareSparseDense(o.kernel, { mode: 'fast' as 'auto' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(prepareSparseDense(o.kernel, { bias: tf.zeros([3]) as tf.Tensor1D })).rejects.toMatchObject({
      code: 'SHAPE_MISMATCH',
    });
    await expect(sparseMatrixFromKernel(o.kernel, { mask: tf.fill([K, N], 0.5) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    weights.dispose();
    expect(codeOf(() => sparseDense(o.x, weights))).toBe('DISPOSED');
    const matrix = sparseMatrix(compressedRowsFromDense([1, 0, 0, 1], [2, 2]));
    matrix.dispose();
    expect(codeOf(() => sparseMatMul(tf.ones([1, 2]), matrix))).toBe('DISPOSED');
    tf.dispose(o);
  });
});
