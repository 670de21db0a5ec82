import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { FUSED_GATHER_KERNEL, gatherRows } from './fused-gather';
import { kernelsRun, seededValues } from './fused-test-support';

afterAll(async () => {
  await setBackend('cpu');
});

const table = { values: seededValues(50 * 12, 91), shape: [50, 12] as [number, number] };
const ids = [3, 0, 49, 3, 17, 17, 17, 8];

/** The gathered rows and the table's gradient under a seeded upstream gradient, on `backend`. */
async function rowsAndGradient(backend: string) {
  await setBackend(backend);
  return tf.tidy(() => {
    const weights = tf.tensor2d(table.values, table.shape);
    const indices = tf.tensor1d(ids, 'int32');
    const upstream = tf.tensor2d(seededValues(ids.length * 12, 92), [ids.length, 12]);
    const gradient = tf.grad((w: tf.Tensor) =>
      tf.sum(tf.mul(gatherRows(w as tf.Tensor2D, indices), upstream)),
    )(weights);
    return { rows: gatherRows(weights, indices).dataSync(), gradient: gradient.dataSync() };
  });
}

describe('gatherRows', () => {
  it('is one fused kernel on wasm, bit-identical to tf.gather on cpu, with the same gradient', async () => {
    await setBackend('wasm');
    const names = await kernelsRun(() =>
      tf.tidy(() => gatherRows(tf.zeros([50, 12]), tf.tensor1d(ids, 'int32'))),
    );
    expect(names).toContain(FUSED_GATHER_KERNEL);
    expect(names).not.toContain('GatherV2');
    const [cpu, wasm] = [await rowsAndGradient('cpu'), await rowsAndGradient('wasm')];
    expect(wasm.rows).toEqual(cpu.rows);
    // id 17 appears three times: its row gets three upstream rows summed (float32 on wasm, float64 on cpu)
    for (let index = 0; index < cpu.gradient.length; index += 1) {
      expect(Math.abs(wasm.gradient[index]! - cpu.gradient[index]!)).toBeLessThan(1e-6);
    }
  });

  it('leaves an id outside the table to tf.gather (which reports it) and honours FINEPRUNE_FUSED=0', async () => {
    await setBackend('wasm');
    const weights = tf.zeros([4, 8]) as tf.Tensor2D;
    // tfjs-backend-wasm's GatherV2 throws for an id outside [0, rows); the fused pass never sees one
    for (const bad of [
      [0, 4],
      [-1, 0],
    ]) {
      expect(() => tf.tidy(() => gatherRows(weights, tf.tensor1d(bad, 'int32')))).toThrow(
        /index value -?\d+ is not in \[0, 3\]/,
      );
    }
    process.env.FINEPRUNE_FUSED = '0';
    const off = await kernelsRun(() => tf.tidy(() => gatherRows(weights, tf.tensor1d([0, 1], 'int32'))));
    delete process.env.FINEPRUNE_FUSED;
    expect(off).toEqual(['GatherV2']);
    weights.dispose();
  });
});
