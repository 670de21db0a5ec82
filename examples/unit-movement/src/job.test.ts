import { describe, expect, it } from 'vitest';
import { runUnitMovement } from './job';

describe('unit movement pruning of an MNIST MLP (the example run)', () => {
  it('removes exactly 75% of each hidden layer’s neurons, stays accurate, and leaks no tensor', async () => {
    const result = await runUnitMovement();
    expect(result.steps).toBe(160); // 4 epochs of 4,000 examples in batches of 100
    // Local Top-v over units: 128 − round(0.75 · 128) = 32 and 64 − 48 = 16 neurons remain.
    expect(result.units.map(({ name, kept, count }) => [name, kept, count])).toEqual([
      ['dense_1/neurons', 32, 128],
      ['dense_2/neurons', 16, 64],
    ]);
    // A quarter of the neurons keeps the accuracy of the dense warm-up within 5 points (the
    // measured run: 82.4% dense, 82.8% pruned on the first 2,000 test images), far above chance.
    expect(result.denseAccuracy).toBeGreaterThan(0.7);
    expect(result.prunedAccuracy).toBeGreaterThan(result.denseAccuracy - 0.05);
    expect(result.leakedTensors).toBe(0);
  }, 300_000);
});
