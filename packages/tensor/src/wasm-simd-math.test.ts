import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { createRandom } from './random';
import {
  address,
  buildModule,
  get,
  I32,
  i32Const,
  instantiate,
  loopWhileBelow,
  memarg,
  op,
  set,
  simd,
  simdOp,
  V128,
} from './wasm-binary';
import { wasmHeapOf } from './wasm-heap';
import { vExp, vLog, vSigmoid } from './wasm-simd-math';

type Apply = (source: number, destination: number, n: number) => void;

/** A function f(source, destination, n) applying `math` to n floats (n a multiple of 4). */
function applyFunction(name: string, math: (x: number) => number[]) {
  const [source, destination, n] = [0, 1, 2];
  const [cursor, end] = [3, 4];
  const x = 5; // locals 6–9 are the math's scratch
  return {
    name,
    params: [I32, I32, I32],
    results: [],
    locals: [I32, I32, V128, V128, V128, V128, V128],
    body: [
      ...get(n),
      ...i32Const(2),
      op.i32Shl,
      ...set(end),
      ...loopWhileBelow(cursor, end, 16, [
        ...address(source, cursor),
        ...simd(simdOp.v128Load),
        ...memarg(),
        ...set(x),
        ...address(destination, cursor),
        ...math(x),
        ...simd(simdOp.v128Store),
        ...memarg(),
      ]),
    ],
  };
}

let functions: { log: Apply; exp: Apply; sigmoid: Apply };

/** Runs one function over `values` in the wasm heap and returns the results. */
async function evaluate(apply: Apply, values: Float32Array): Promise<Float32Array> {
  const input = tf.tensor1d(values);
  const output = tf.zerosLike(input);
  const { offsetOf } = wasmHeapOf()!;
  apply(offsetOf(input), offsetOf(output), values.length);
  const result = (await output.data()) as Float32Array;
  tf.dispose([input, output]);
  return result;
}

/** |actual − exact| in units of the float32 spacing at `exact`. */
function ulpError(actual: number, exact: number): number {
  const spacing = 2 ** (Math.floor(Math.log2(Math.abs(exact))) - 23);
  return Math.abs(actual - exact) / spacing;
}

function worstUlp(actual: Float32Array, inputs: Float32Array, exact: (x: number) => number): number {
  let worst = 0;
  for (let index = 0; index < inputs.length; index += 1)
    worst = Math.max(worst, ulpError(actual[index]!, exact(inputs[index]!)));
  return worst;
}

/** A multiple of 4 values: a log-uniform sweep over [low, high] and seeded uniform draws. */
function sweep(low: number, high: number, uniformLow: number, uniformHigh: number): Float32Array {
  const random = createRandom(9);
  const count = 40_000;
  return Float32Array.from({ length: count }, (_, index) =>
    index % 2 === 0
      ? low * (high / low) ** (index / count)
      : uniformLow + (uniformHigh - uniformLow) * random.next(),
  );
}

describe('SIMD log, exp and sigmoid (wasm-simd-math)', () => {
  beforeAll(async () => {
    await setBackend('wasm');
    const { memory } = wasmHeapOf()!;
    const bytes = buildModule([
      applyFunction('log', (x) => vLog(x, { exponent: 6, mantissa: 7, t: 8, t2: 9 })),
      applyFunction('exp', (x) => vExp(x, { reduced: 6, k: 7 })),
      applyFunction('sigmoid', (x) => vSigmoid(x, { reduced: 6, k: 7 })),
    ]);
    functions = instantiate<typeof functions>(bytes, memory)!;
  });
  afterAll(async () => {
    await setBackend('cpu');
  });

  it('log is within 2 ulp of float64 over the positive normal floats, 3 ulp next to 1', async () => {
    const wide = sweep(1.2e-38, 3e38, 1e-6, 1e6);
    expect(worstUlp(await evaluate(functions.log, wide), wide, Math.log)).toBeLessThanOrEqual(2);
    // Next to 1, where log x is small: 2.6 ulp measured (the rounding of m + 1 in t = (m − 1)/(m + 1)).
    const near = sweep(0.5, 2, 0.999, 1.001).filter((value) => value !== 1);
    const nearFour = near.subarray(0, near.length - (near.length % 4));
    expect(worstUlp(await evaluate(functions.log, nearFour), nearFour, Math.log)).toBeLessThanOrEqual(3);
  });

  it('exp is within 2 ulp of float64 on [−87, 88] and clamps outside', async () => {
    const values = sweep(1e-6, 88, -87, 88);
    for (let index = 0; index < values.length; index += 4) values[index] = -values[index]! / 1.02;
    expect(worstUlp(await evaluate(functions.exp, values), values, Math.exp)).toBeLessThanOrEqual(2);
    const outside = await evaluate(functions.exp, new Float32Array([-1000, -88, 89, 1000]));
    const clamped = new Float32Array([-87, -87, 88, 88]);
    expect(worstUlp(outside, clamped, Math.exp)).toBeLessThanOrEqual(2);
  });

  it('sigmoid is within 4e-7 relative of float64 on [−80, 80]', async () => {
    const values = sweep(1e-6, 80, -80, 80);
    for (let index = 0; index < values.length; index += 4) values[index] = -values[index]!;
    const actual = await evaluate(functions.sigmoid, values);
    let worst = 0;
    for (let index = 0; index < values.length; index += 1) {
      const exact = 1 / (1 + Math.exp(-values[index]!));
      worst = Math.max(worst, Math.abs(actual[index]! - exact) / exact);
    }
    expect(worst).toBeLessThanOrEqual(4e-7);
  });
});
