import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseWasmBackend, setBackend } from './backend';
import {
  FUSED_ADAM_KERNEL,
  type FusedAdamScalars,
  fusedAdamStep,
  fusedAdamStepHostSlots,
} from './fused-adam';
import { wasmThreadsInUse } from './wasm-threads';

/** The op chain of `adam()` in @fineprune/core, written out here as the reference. */
function opChain(w: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, s: FusedAdamScalars) {
  return tf.tidy(() => {
    const first = tf.add(tf.mul(m, s.beta1), tf.mul(g, 1 - s.beta1));
    const second = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(g), 1 - s.beta2));
    let update = tf.div(tf.mul(first, s.stepSize), tf.add(tf.sqrt(second), s.epsilonHat));
    if (s.decay > 0) update = tf.add(update, tf.mul(w, s.decay));
    return [tf.sub(w, update), first, second];
  });
}

function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/** Seeded inputs: weights, moments (v ≥ 0) and gradients spanning several orders of magnitude. */
function inputs(size: number, seed: number) {
  return tf.tidy(() => {
    const scale = tf.pow(10, tf.randomUniform([size], -6, 1, 'float32', seed + 3));
    return [
      tf.randomNormal([size], 0, 0.1, 'float32', seed),
      tf.mul(tf.randomNormal([size], 0, 1e-3, 'float32', seed + 1), scale),
      tf.mul(tf.square(tf.randomNormal([size], 0, 1e-3, 'float32', seed + 2)), scale),
      tf.mul(tf.randomNormal([size], 0, 1e-2, 'float32', seed + 4), scale),
    ];
  });
}

const cases: Array<[string, FusedAdamScalars]> = [
  [
    'Adam, early step',
    {
      beta1: 0.9,
      beta2: 0.999,
      stepSize: (1e-2 * Math.sqrt(1 - 0.999)) / 0.1,
      epsilonHat: 1e-8 * Math.sqrt(1 - 0.999),
      decay: 0,
    },
  ],
  ['AdamW, late step', { beta1: 0.9, beta2: 0.98, stepSize: 3e-4, epsilonHat: 1e-8, decay: 3e-4 * 0.01 }],
];

// One thread: the single-threaded SIMD build; two: the multi-threaded build over a shared memory.
describe.each([1, 2])('fusedAdamStep on wasm, %i thread(s)', (threads) => {
  beforeAll(async () => {
    releaseWasmBackend();
    await setBackend('wasm', { wasmThreads: threads });
    expect(wasmThreadsInUse()).toBe(threads);
  });
  afterAll(() => releaseWasmBackend());

  // Sizes: empty, one element, below one SIMD group, ragged tails (n mod 4 = 1, 2, 3), a large one.
  for (const [label, scalars] of cases) {
    it(`is bit-identical to the TF.js op chain (${label}) for sizes 1 … 235,200`, async () => {
      for (const size of [1, 3, 4, 5, 6, 7, 64, 1001, 235_200]) {
        const [w, m, v, g] = inputs(size, size);
        const before = tf.memory().numTensors;
        const fused = fusedAdamStep(w!, m!, v!, g!, scalars);
        expect(fused, 'the fused kernel runs on wasm').toBeDefined();
        const reference = opChain(w!, m!, v!, g!, scalars);
        for (let output = 0; output < 3; output += 1) {
          const got = (await fused![output]!.data()) as Float32Array;
          const want = (await reference[output]!.data()) as Float32Array;
          // Exact: every bit of every element (tolerance 0).
          expect(bits(got), `size ${size}, output ${output}`).toEqual(bits(want));
        }
        tf.dispose([...fused!, ...reference]);
        expect(tf.memory().numTensors, `size ${size} leaks`).toBe(before);
        tf.dispose([w!, m!, v!, g!]);
      }
    });
  }

  it('leaves its inputs unchanged and returns new tensors', async () => {
    const [w, m, v, g] = inputs(10, 7);
    const copies = await Promise.all([w!, m!, v!, g!].map((tensor) => tensor.data()));
    const fused = fusedAdamStep(w!, m!, v!, g!, cases[1]![1])!;
    const after = await Promise.all([w!, m!, v!, g!].map((tensor) => tensor.data()));
    expect(after).toEqual(copies);
    expect(fused.some((tensor) => [w, m, v, g].includes(tensor))).toBe(false);
    tf.dispose([...fused, w!, m!, v!, g!]);
  });

  it('declines (undefined) what it cannot do: an empty tensor, mismatched shapes, int32', () => {
    const scalars = cases[0]![1];
    const empty = tf.zeros([0]);
    expect(fusedAdamStep(empty, empty, empty, empty, scalars)).toBeUndefined();
    const [a, b] = [tf.zeros([4]), tf.zeros([5])];
    expect(fusedAdamStep(a, a, a, b, scalars)).toBeUndefined();
    const ints = tf.zeros([4], 'int32');
    expect(fusedAdamStep(ints, ints, ints, ints, scalars)).toBeUndefined();
    tf.dispose([empty, a, b, ints]);
  });
});

describe('fusedAdamStepHostSlots on wasm', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  // 2^20 + 7 crosses the 2^20-element heap window once, with a ragged tail in the second window.
  it('updates in place, bit-identical to the op chain across heap windows, with m and v in JavaScript memory', async () => {
    for (const [label, scalars] of cases) {
      for (const size of [5, 1001, 2 ** 20 + 7]) {
        const [w, m, v, g] = inputs(size, size + 11);
        // A variable that owns its data alone (tf.variable(w) would share w's).
        const variable = tf.tidy(() => tf.variable(tf.add(w!, 0)));
        const hostM = Float32Array.from((await m!.data()) as Float32Array);
        const hostV = Float32Array.from((await v!.data()) as Float32Array);
        const reference = opChain(w!, m!, v!, g!, scalars);
        const before = tf.memory().numTensors;
        expect(fusedAdamStepHostSlots(variable, hostM, hostV, g!, scalars), 'runs on wasm').toBe(true);
        expect(tf.memory().numTensors, `${label}, size ${size}: no tensor is made`).toBe(before);
        const want = await Promise.all(reference.map((tensor) => tensor.data() as Promise<Float32Array>));
        // Exact: every bit of every element (tolerance 0).
        expect(bits((await variable.data()) as Float32Array), `${label}, size ${size}, w'`).toEqual(
          bits(want[0]!),
        );
        expect(bits(hostM), `${label}, size ${size}, m'`).toEqual(bits(want[1]!));
        expect(bits(hostV), `${label}, size ${size}, v'`).toEqual(bits(want[2]!));
        tf.dispose([variable, ...reference, w!, m!, v!, g!]);
      }
    }
  });

  it('declines (false, nothing changed) slots of the wrong length and a variable whose data a clone shares', async () => {
    const w = tf.tidy(() => tf.variable(tf.tensor1d([1, 2, 3, 4])));
    const g = tf.ones([4]);
    const [m, v] = [new Float32Array(4), new Float32Array(4)];
    expect(fusedAdamStepHostSlots(w, new Float32Array(3), v, g, cases[0]![1])).toBe(false);
    const snapshot = tf.clone(w);
    expect(fusedAdamStepHostSlots(w, m, v, g, cases[0]![1])).toBe(false);
    expect(Array.from(await snapshot.data())).toEqual([1, 2, 3, 4]);
    expect(Array.from(await w.data())).toEqual([1, 2, 3, 4]);
    expect(Array.from(m)).toEqual([0, 0, 0, 0]);
    snapshot.dispose();
    expect(fusedAdamStepHostSlots(w, m, v, g, cases[0]![1])).toBe(true);
    expect(Array.from(await w.data())).not.toEqual([1, 2, 3, 4]);
    tf.dispose([w, g]);
  });
});

describe('fusedAdamStep on cpu', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });
  afterAll(() => {
    // Registered for wasm only.
    expect(tf.getKernel(FUSED_ADAM_KERNEL, 'cpu')).toBeUndefined();
  });

  it('is not used: the caller runs the op chain', () => {
    const t = tf.zeros([8]);
    expect(fusedAdamStep(t, t, t, t, cases[0]![1])).toBeUndefined();
    t.dispose();
  });
});
