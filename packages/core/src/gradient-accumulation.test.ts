import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { sgd } from './optimizers';
import { Pruner } from './pruner';
import { rejectionOf, testLinearSchedule, testMagnitude, testTopK, tinyMlp } from './testing';
import type { Batch } from './types';

/** Batch `step` of 8 examples, and its two halves as micro-batches. */
function batchOf(step: number): Batch {
  return tf.tidy(() => ({
    x: tf.randomNormal([8, 6], 0, 1, 'float32', 500 + step),
    y: tf.tensor1d(
      Array.from({ length: 8 }, (_, index) => (index * 5 + step) % 3),
      'int32',
    ),
  }));
}

function halves(batch: Batch): Batch[] {
  const x = batch.x as tf.Tensor2D;
  const y = batch.y as tf.Tensor1D;
  return tf.tidy(() => [
    { x: tf.slice(x, [0, 0], [4, 6]), y: tf.slice(y, [0], [4]) },
    { x: tf.slice(x, [4, 0], [4, 6]), y: tf.slice(y, [4], [4]) },
  ]);
}

async function weightsAfter(steps: number, accumulate: boolean): Promise<Float32Array[]> {
  const model = tinyMlp();
  const pruner = new Pruner({
    model,
    scores: testMagnitude,
    mask: testTopK,
    schedule: testLinearSchedule(0.5, steps, 2),
    // Plain SGD: the update is the learning rate times the gradient, so it shows the gradient directly.
    optimizers: { weights: sgd({ learningRate: 0.1 }) },
  });
  await pruner.run({
    data: (step) => {
      const whole = batchOf(step);
      if (!accumulate) return whole;
      const parts = halves(whole);
      tf.dispose([whole.x, whole.y] as tf.TensorContainer);
      return parts;
    },
    untilStep: steps,
  });
  const values = await Promise.all(model.trainableVariables().map(({ variable }) => variable.data()));
  pruner.dispose();
  model.dispose();
  return values as Float32Array[];
}

describe('gradient accumulation (Pruner.trainStep with micro-batches)', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('two micro-batches of 4 train like one batch of 8: the mean loss has the mean gradient (within 1e-6)', async () => {
    const whole = await weightsAfter(6, false);
    const accumulated = await weightsAfter(6, true);
    let largest = 0;
    whole.forEach((values, index) => {
      values.forEach((value, at) => {
        largest = Math.max(largest, Math.abs(value - accumulated[index]![at]!));
      });
    });
    // Float32 sums in a different order: agreement to rounding, not bit for bit.
    expect(largest).toBeLessThan(1e-6);
    // And the run did move the weights (so the comparison is not of two untouched models).
    const fresh = tinyMlp();
    const initial = (await fresh.trainableVariables()[0]!.variable.data()) as Float32Array;
    fresh.dispose();
    expect(Math.max(...whole[0]!.map((value, at) => Math.abs(value - initial[at]!)))).toBeGreaterThan(1e-3);
  });

  it('reports the mean loss over the micro-batches and leaks no tensor', async () => {
    const model = tinyMlp();
    const make = () =>
      new Pruner({
        model,
        scores: testMagnitude,
        mask: testTopK,
        schedule: testLinearSchedule(0, 4, 1),
        optimizers: { weights: sgd({ learningRate: 1e-9 }) },
      });
    const batch = batchOf(0);
    const parts = halves(batch);
    const probe = make();
    const [first, second] = [await probe.trainStep(parts[0]!), await probe.trainStep(parts[1]!)];
    probe.dispose();
    const pruner = make();
    const before = tf.memory().numTensors;
    const result = await pruner.trainStep(parts);
    expect(tf.memory().numTensors).toBe(before);
    // A learning rate of 1e-9 leaves the weights as they were, so the three losses share one model.
    expect(result.loss).toBeCloseTo((first.loss + second.loss) / 2, 5);
    expect(result.taskLoss).toBeCloseTo((first.taskLoss + second.taskLoss) / 2, 5);
    expect((await rejectionOf(pruner.trainStep([]))).code).toBe('INVALID_ARGUMENT');
    pruner.dispose();
    tf.dispose([batch, parts] as unknown as tf.TensorContainer);
    model.dispose();
  });
});
