/** A seeded TF.js MLP pruned by magnitude, for the compact export's tests. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect } from 'vitest';
import { pruneByMagnitude, seededValues } from './compact-support';

/**
 * The 784-300-100-10 MLP of the papers' MNIST experiments (ReLU, logits out, or softmax), with
 * seeded weights and every kernel pruned to `kept` of its weights by magnitude (biases kept).
 */
export function prunedMlp(kept: number, sizes = [784, 300, 100, 10], softmax = false): tfl.Sequential {
  const layers = sizes.slice(1).map((units, index) =>
    tfl.layers.dense({
      units,
      ...(index === 0 ? { inputShape: [sizes[0]!] } : {}),
      activation: index === sizes.length - 2 ? (softmax ? 'softmax' : 'linear') : 'relu',
    }),
  );
  const model = tfl.sequential({ layers });
  setPrunedWeights(model, kept, 1);
  return model;
}

/** Seeded weights, every rank-2 weight pruned to `kept` by magnitude. */
export function setPrunedWeights(model: tfl.LayersModel, kept: number, seed: number): void {
  const values = model.weights.map((weight, index) => {
    const shape = weight.shape as number[];
    const data = seededValues(
      shape.reduce((a, b) => a * b, 1),
      seed + index,
      shape.length >= 2 ? 0.1 : 0.5,
    );
    if (shape.length >= 2) pruneByMagnitude(data, kept);
    return tf.tensor(data, shape);
  });
  model.setWeights(values);
  tf.dispose(values);
}

/** Predicts `shape` inputs with both models and expects the same outputs, bit for bit. */
export function expectSamePredictions(
  model: tfl.LayersModel,
  loaded: tfl.LayersModel,
  batch: number,
  shape: number[],
): void {
  const x = seededInput(batch, shape, 2);
  const [expected, actual] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
  expect(actual.dataSync()).toEqual(expected.dataSync());
  tf.dispose([x, expected, actual]);
}

/** Seeded inputs [batch, ...shape]. */
export function seededInput(batch: number, shape: number[], seed: number): tf.Tensor {
  const size = batch * shape.reduce((a, b) => a * b, 1);
  return tf.tensor(seededValues(size, seed, 2), [batch, ...shape]);
}

/**
 * The largest |a − b| of two outputs, each row scaled by its largest |b|: the float32 products are
 * summed in another order (sparse kernels skip zeros), so outputs agree to about 1e-7 of their scale.
 */
export function relativeDifference(a: tf.Tensor, b: tf.Tensor): number {
  const [x, y] = [a.dataSync(), b.dataSync()];
  const width = a.shape.at(-1)!;
  let worst = 0;
  for (let row = 0; row < x.length / width; row += 1) {
    let scale = 0;
    for (let column = 0; column < width; column += 1)
      scale = Math.max(scale, Math.abs(y[row * width + column]!));
    for (let column = 0; column < width; column += 1) {
      const index = row * width + column;
      worst = Math.max(worst, Math.abs(x[index]! - y[index]!) / Math.max(scale, 1e-30));
    }
  }
  return worst;
}
