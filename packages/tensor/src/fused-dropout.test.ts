import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { dropoutMask, FUSED_DROPOUT_MASK_KERNEL } from './fused-dropout';
import { kernelsRun } from './fused-test-support';
import { createRandom } from './random';

afterAll(async () => {
  await setBackend('cpu');
});

/** The mask written out by hand from createRandom's draws (the definition). */
function expectedMask(size: number, rate: number, seed: number): Float32Array {
  const random = createRandom(seed);
  const limit = Math.floor(rate * 4294967296);
  return Float32Array.from({ length: size }, () => (random.nextUint32() < limit ? 0 : 1 / (1 - rate)));
}

describe('dropoutMask', () => {
  it('is drawn by one fused kernel on wasm and equals the JavaScript draws bit for bit', async () => {
    await setBackend('wasm');
    expect(await kernelsRun(() => dropoutMask([8, 5], 0.1, 3))).toEqual([FUSED_DROPOUT_MASK_KERNEL]);
    for (const [rate, seed] of [
      [0.1, 0],
      [0.5, 123456789],
      [0.9, 4294967295],
    ] as const) {
      const mask = dropoutMask([64, 65], rate, seed);
      expect(mask.dataSync()).toEqual(expectedMask(64 * 65, rate, seed));
      mask.dispose();
    }
  });

  it('drops close to the rate and is the same on cpu and wasm', async () => {
    const on = async (backend: string) => {
      await setBackend(backend);
      return tf.tidy(() => dropoutMask([100_000], 0.1, 77).dataSync());
    };
    const [cpu, wasm] = [await on('cpu'), await on('wasm')];
    expect(wasm).toEqual(cpu);
    const dropped = wasm.filter((value) => value === 0).length / wasm.length;
    expect(Math.abs(dropped - 0.1)).toBeLessThan(0.003); // 3.2 standard deviations of a binomial(1e5, 0.1) fraction
  });

  it('rejects a rate outside [0, 1) with INVALID_ARGUMENT and honours FINEPRUNE_FUSED=0', async () => {
    await setBackend('wasm');
    for (const rate of [1, -0.1, Number.NaN])
      expect(() => dropoutMask([4], rate, 1)).toThrow(/dropout rate must be in \[0, 1\)/);
    process.env.FINEPRUNE_FUSED = '0';
    const off = await kernelsRun(() => dropoutMask([8], 0.1, 3));
    delete process.env.FINEPRUNE_FUSED;
    expect(off).not.toContain(FUSED_DROPOUT_MASK_KERNEL);
  });
});
