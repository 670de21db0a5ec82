import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { batchMatMul, SLICED_BATCH_MAT_MUL_KERNEL } from './batch-mat-mul';
import { kernelsRun, largestDifference, seededValues, valueAndGradients } from './fused-test-support';

afterAll(async () => {
  await setBackend('cpu');
});

// [2, 3, 8, 4]·[2, 3, 4, 12]: six matrix pairs with distinct values, so a slice taken at the wrong
// offset changes the result.
const inputs = [
  { values: seededValues(2 * 3 * 8 * 4, 81), shape: [2, 3, 8, 4] },
  { values: seededValues(2 * 3 * 4 * 12, 82), shape: [2, 3, 4, 12] },
];
const product = (a: tf.Tensor, b: tf.Tensor) => batchMatMul(a, b);

describe('batchMatMul', () => {
  it('runs one sliced kernel forward and two backward on wasm, never BatchMatMul on the batch', async () => {
    await setBackend('wasm');
    const [a, b] = inputs.map(({ values, shape }) => tf.tensor(values, shape));
    const names = await kernelsRun(() => tf.grads(product)([a!, b!]));
    expect(names.filter((name) => name === SLICED_BATCH_MAT_MUL_KERNEL)).toHaveLength(3);
    expect(names).not.toContain('BatchMatMul');
    tf.dispose([a!, b!]);
  });

  it('matches the cpu product and gradients within 1e-6 (measured 1.2e-7, 3.6e-7, 2.4e-7)', async () => {
    const cpu = await valueAndGradients('cpu', product, inputs);
    const wasm = await valueAndGradients('wasm', product, inputs);
    expect(largestDifference(wasm.value, cpu.value)).toBeLessThan(1e-6);
    for (const index of [0, 1])
      expect(largestDifference(wasm.gradients[index]!, cpu.gradients[index]!)).toBeLessThan(1e-6);
  });

  it('neither leaks tensors nor grows the heap over 200 calls', async () => {
    await setBackend('wasm');
    // [4, 64, 64]·[4, 64, 128]: XNNPACK packs each 32 KiB right operand; a view left registered would
    // keep its packed copy alive (26 MB over 200 calls).
    const a = tf.tensor(seededValues(4 * 64 * 64, 83), [4, 64, 64]);
    const b = tf.tensor(seededValues(4 * 64 * 128, 84), [4, 64, 128]);
    tf.dispose(batchMatMul(a, b));
    const memory = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm;
    const [tensors, bytes] = [tf.memory().numTensors, memory.HEAPU8.length];
    for (let call = 0; call < 200; call += 1) tf.dispose(batchMatMul(a, b));
    expect(tf.memory().numTensors).toBe(tensors);
    expect(memory.HEAPU8.length).toBe(bytes);
    tf.dispose([a, b]);
  });

  it('takes tf.matMul when FINEPRUNE_FUSED=0, for rank 2, or for broadcast leading axes', async () => {
    await setBackend('wasm');
    const run = (f: () => tf.Tensor) => kernelsRun(() => tf.tidy(f));
    process.env.FINEPRUNE_FUSED = '0';
    const off = await run(() => batchMatMul(tf.ones([2, 4, 4]), tf.ones([2, 4, 4])));
    delete process.env.FINEPRUNE_FUSED;
    const matrix = await run(() => batchMatMul(tf.ones([4, 4]), tf.ones([4, 4])));
    const broadcast = await run(() => batchMatMul(tf.ones([2, 4, 4]), tf.ones([1, 4, 4])));
    for (const names of [off, matrix, broadcast]) {
      expect(names).toContain('BatchMatMul');
      expect(names).not.toContain(SLICED_BATCH_MAT_MUL_KERNEL);
    }
  });
});
