import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { classificationScores, evaluateClassifier } from './report';
import { tinyBatches, tinyMlp } from './testing';

describe('classificationScores', () => {
  it('computes accuracy, binary F1 and macro-F1 from a confusion matrix (hand values)', () => {
    // Rows are labels, columns predictions. Class 0: TP 5, 6 labelled, 7 predicted → F1 10/13;
    // class 1: TP 2, 4 labelled, 3 predicted → F1 4/7.
    const scores = classificationScores([
      [5, 1],
      [2, 2],
    ]);
    expect(scores.accuracy).toBeCloseTo(0.7, 12);
    expect(scores.f1).toBeCloseTo(4 / 7, 12);
    expect(scores.macroF1).toBeCloseTo((10 / 13 + 4 / 7) / 2, 12);
  });

  it('leaves out of macro-F1 a class that occurs neither among labels nor predictions', () => {
    // Class 2 never occurs: macro over classes 0 and 1 only (F1 1 and 0).
    const scores = classificationScores([
      [3, 0, 0],
      [2, 0, 0],
      [0, 0, 0],
    ]);
    expect(scores.macroF1).toBeCloseTo((6 / 8 + 0) / 2, 12);
    expect(scores.f1).toBe(0);
  });
});

describe('evaluateClassifier with classes', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('counts a confusion matrix whose trace gives the accuracy, without leaking', async () => {
    const model = tinyMlp();
    const source = tinyBatches();
    const batches = () => [0, 1, 2].map((step) => source(step));
    const plain = await evaluateClassifier(model, batches());
    const before = tf.memory().numTensors;
    const metrics = await evaluateClassifier(model, batches(), { classes: 3 });
    expect(tf.memory().numTensors).toBe(before); // each batch was disposed after use
    const confusion = metrics.confusion!;
    const total = confusion.flat().reduce((sum, value) => sum + value, 0);
    expect(total).toBe(24);
    expect(confusion.reduce((sum, row, index) => sum + row[index]!, 0) / total).toBe(plain.accuracy);
    expect(metrics.accuracy).toBe(plain.accuracy);
    expect(metrics.loss).toBe(plain.loss);
    // Each row sums to the examples of that label: labels are (index·7 + step·3) mod 3 = index mod 3.
    expect(confusion.map((row) => row.reduce((sum, value) => sum + value, 0))).toEqual([9, 9, 6]);
    await expect(evaluateClassifier(model, batches(), { classes: 2 })).rejects.toMatchObject({
      code: 'SHAPE_MISMATCH',
    });
    model.dispose();
  });
});
