// Data modules for recipes: `data: { module: ./data-module.mjs, export: createData }`.
import * as tf from '@tensorflow/tfjs-core';

/** Two classes of 4 values: class 1 has a larger first value. Batch i is a pure function of i. */
export function createData({ seed, batchSize }) {
  const example = (index) => {
    const label = (index + seed) % 2;
    return { x: [label + (index % 5) / 10, 0.5, -0.5, (index % 3) / 3], y: label };
  };
  const batchOf = (start, size) => {
    const rows = Array.from({ length: size }, (_, offset) => example(start + offset));
    return {
      x: tf.tensor2d(rows.map((row) => row.x)),
      y: tf.tensor1d(
        rows.map((row) => row.y),
        'int32',
      ),
    };
  };
  return {
    classes: 2,
    labels: ['low', 'high'],
    trainCount: 1000,
    testCount: 20,
    featureSize: 4,
    batch: (index) => batchOf(index * batchSize, batchSize),
    *evaluationBatches() {
      yield batchOf(10_000, 10);
      yield batchOf(10_010, 10);
    },
  };
}

export function notData() {
  return { classes: 1, batch: 'nope' };
}

export function badBatches(context) {
  return { ...createData(context), batch: () => ({ x: [1, 2, 3], y: 0 }) };
}
