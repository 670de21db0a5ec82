import type { RecipeOptimizer } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeOptimizer, optimizerLearningRate } from './run-pruner';

function rates(options: RecipeOptimizer, steps: number): number[] {
  const rate = optimizerLearningRate(options, steps);
  return Array.from({ length: steps }, (_, step) => (typeof rate === 'number' ? rate : rate(step)));
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('recipe optimizers', () => {
  it('linear schedule: warm-up to the peak over W steps, then linear decay to 0 at T (hand values, peak 1e-3, W 2, T 6)', () => {
    // rate(s) = peak·(s+1)/W for s < W, else peak·(T − s)/(T − W) (BERT fine-tuning, the benchmark's rule)
    const got = rates({ type: 'adamw', learningRate: 1e-3, schedule: { type: 'linear', warmupSteps: 2 } }, 6);
    [5e-4, 1e-3, 1e-3, 7.5e-4, 5e-4, 2.5e-4].forEach((value, step) => {
      expect(got[step]).toBeCloseTo(value, 12);
    });
  });

  it('warmupFraction is rounded to steps (0.1 of 150 = 15), constant is the peak at every step', () => {
    const fraction = rates(
      { type: 'adam', learningRate: 3e-4, schedule: { type: 'linear', warmupFraction: 0.1 } },
      150,
    );
    const steps = rates(
      { type: 'adam', learningRate: 3e-4, schedule: { type: 'linear', warmupSteps: 15 } },
      150,
    );
    expect(fraction).toEqual(steps);
    expect(fraction[14]).toBeCloseTo(3e-4, 12);
    expect(fraction[13]).toBeCloseTo((3e-4 * 14) / 15, 12);
    expect(new Set(rates({ type: 'adam', learningRate: 0.1, schedule: { type: 'constant' } }, 5))).toEqual(
      new Set([0.1]),
    );
  });

  it('adamw: Adam plus decoupled decay 0.01 by default, θ ← θ − α·m̂/(√v̂ + ε) − α·0.01·θ (first step, tolerance 1e-7)', () => {
    const run = (options: RecipeOptimizer) => {
      const optimizer = makeOptimizer(options, 4);
      const weight = tf.tidy(() => tf.variable(tf.tensor1d([2, -1])));
      const gradient = tf.tensor1d([0.5, -0.25]);
      optimizer.apply([{ name: 'w', variable: weight, gradient }], 0);
      const values = Array.from(weight.dataSync());
      tf.dispose([weight, gradient]);
      optimizer.dispose();
      return values;
    };
    const before = tf.memory().numTensors;
    // Step 0 of a linear schedule with W = 2: α = 0.1·1/2 = 0.05. First Adam step: m̂ = g, v̂ = g².
    const alpha = 0.05;
    const adamStep = (theta: number, g: number) => theta - (alpha * g) / (Math.abs(g) + 1e-8);
    const adamw = run({ type: 'adamw', learningRate: 0.1, schedule: { type: 'linear', warmupSteps: 2 } });
    expect(adamw[0]).toBeCloseTo(adamStep(2, 0.5) - alpha * 0.01 * 2, 7);
    expect(adamw[1]).toBeCloseTo(adamStep(-1, -0.25) - alpha * 0.01 * -1, 7);
    // Plain adam has no decay; an explicit weightDecay overrides adamw's default.
    const plain = run({ type: 'adam', learningRate: 0.1, schedule: { type: 'linear', warmupSteps: 2 } });
    expect(plain[0]).toBeCloseTo(adamStep(2, 0.5), 7);
    const heavy = run({
      type: 'adamw',
      learningRate: 0.1,
      weightDecay: 0.5,
      schedule: { type: 'linear', warmupSteps: 2 },
    });
    expect(heavy[0]).toBeCloseTo(adamStep(2, 0.5) - alpha * 0.5 * 2, 7);
    expect(tf.memory().numTensors).toBe(before);
  });
});
