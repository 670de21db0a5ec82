import { describe, expect, it } from 'vitest';
import {
  elementwiseFunction,
  erfLocals,
  erfVector,
  EXP_LOWEST,
  expLocals,
  expVector,
  tanhLocals,
  tanhVector,
} from './simd-math';
import { erf64 } from './fused-test-support';
import { buildModule, instantiate } from './wasm-binary';

type Map = (input: number, output: number, bytes: number) => void;

/** exp and erf as standalone wasm functions over a fresh memory, and a way to run them on values. */
function compiled() {
  const memory = new WebAssembly.Memory({ initial: 8 });
  const bytes = buildModule([
    elementwiseFunction('exp', 1, ([x], locals) => expVector(x!, expLocals(locals))),
    elementwiseFunction('erf', 1, ([x], locals) => erfVector(x!, erfLocals(locals))),
    elementwiseFunction('tanh', 1, ([x], locals) => tanhVector(x!, tanhLocals(locals))),
  ]);
  const functions = instantiate<{ exp: Map; erf: Map; tanh: Map }>(bytes, memory)!;
  const run = (name: 'exp' | 'erf' | 'tanh', values: Float32Array) => {
    const heap = new Float32Array(memory.buffer);
    heap.set(values, 0);
    functions[name](0, values.length * 4, values.length * 4);
    return heap.slice(values.length, 2 * values.length);
  };
  return { run };
}

function grid(from: number, to: number, count: number): Float32Array {
  return Float32Array.from({ length: count }, (_, index) => from + ((to - from) * index) / (count - 1));
}

describe('SIMD exp and erf', () => {
  const { run } = compiled();

  it('exp is within 1.2e-7 relative of float64 Math.exp on [−87, 88]', () => {
    const x = grid(-87, 88, 40_000);
    const y = run('exp', x);
    let worst = 0;
    for (let index = 0; index < x.length; index += 1) {
      const exact = Math.exp(x[index]!);
      worst = Math.max(worst, Math.abs(y[index]! - exact) / exact);
    }
    expect(worst).toBeLessThan(1.2e-7);
    expect(run('exp', Float32Array.of(0, 1, -1, 0.5))).toEqual(
      Float32Array.of(1, Math.fround(Math.E), Math.fround(1 / Math.E), Math.fround(Math.sqrt(Math.E))),
    );
  });

  it('exp is 0 below the smallest normal float32 and for −10000 (an attention mask)', () => {
    expect([...run('exp', Float32Array.of(EXP_LOWEST - 0.01, -100, -10000, -Infinity))]).toEqual([
      0, 0, 0, 0,
    ]);
  });

  it('erf is within 5e-7 of a float64 erf on [−6, 6], odd, and ±1 in the tails', () => {
    const x = grid(-6, 6, 40_000);
    const y = run('erf', x);
    let worst = 0;
    for (let index = 0; index < x.length; index += 1)
      worst = Math.max(worst, Math.abs(y[index]! - erf64(x[index]!)));
    expect(worst).toBeLessThan(5e-7);
    const mirrored = run(
      'erf',
      Float32Array.from(x, (value) => -value),
    );
    expect(Array.from(mirrored, (value, index) => value + y[index]!).every((sum) => sum === 0)).toBe(true);
    expect([...run('erf', Float32Array.of(-20, 20, 0, 0))]).toEqual([-1, 1, 0, 0]);
  });

  it('tanh is within 1.2e-7 of float64 Math.tanh on [−10, 10], odd, and ±1 in the tails', () => {
    const x = grid(-10, 10, 40_000);
    const y = run('tanh', x);
    let worst = 0;
    for (let index = 0; index < x.length; index += 1)
      worst = Math.max(worst, Math.abs(y[index]! - Math.tanh(x[index]!)));
    expect(worst).toBeLessThan(1.2e-7);
    expect([...run('tanh', Float32Array.of(-50, 50, 0, -0))]).toEqual([-1, 1, 0, -0]);
  });
});
