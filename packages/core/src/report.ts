import * as tf from '@tensorflow/tfjs-core';
import { keptUnits, type Structure } from './structures';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import type { Batch, PrunableModel, PrunableParameter } from './types';

/** How much of one parameter is kept. */
export interface ParameterSparsity {
  name: string;
  group: string;
  kind: string;
  shape: number[];
  total: number;
  kept: number;
  /** Fraction of entries masked out, in [0, 1]. */
  sparsity: number;
}

/** Per-parameter and overall sparsity, read from the masks. */
export interface SparsityReport {
  parameters: ParameterSparsity[];
  total: number;
  kept: number;
  sparsity: number;
}

/**
 * Reads every mask and counts what is kept.
 *
 * @example
 * ```ts
 * const report = await sparsityReport(prunable.parameters());
 * console.log(`${(report.sparsity * 100).toFixed(1)}% pruned`);
 * ```
 */
export async function sparsityReport(parameters: readonly PrunableParameter[]): Promise<SparsityReport> {
  const rows: ParameterSparsity[] = [];
  for (const parameter of parameters) {
    const keptTensor = tf.tidy(() => tf.sum(tf.cast(tf.notEqual(parameter.mask, 0), 'int32')));
    const kept = (await keptTensor.data())[0]!;
    keptTensor.dispose();
    rows.push({
      name: parameter.name,
      group: parameter.group,
      kind: parameter.kind,
      shape: [...parameter.shape],
      total: parameter.size,
      kept,
      sparsity: parameter.size === 0 ? 0 : 1 - kept / parameter.size,
    });
  }
  const total = rows.reduce((sum, row) => sum + row.total, 0);
  const kept = rows.reduce((sum, row) => sum + row.kept, 0);
  return { parameters: rows, total, kept, sparsity: total === 0 ? 0 : 1 - kept / total };
}

/**
 * How many units of one structure remain (see {@link keptUnits}).
 *
 * @example
 * ```ts
 * const row: UnitSparsity = { name: 'conv_1/filters', kind: 'filter', count: 32, kept: 12 };
 * ```
 */
export interface UnitSparsity {
  name: string;
  kind: string;
  count: number;
  kept: number;
}

/**
 * Counts the units each structure keeps: a unit is removed when nothing reads it any more (every
 * `input` member's slice of it is masked).
 *
 * @example
 * ```ts
 * const rows = await unitReport(model.structures?.() ?? [], model.parameters());
 * console.log(rows.map((row) => `${row.name}: ${row.kept}/${row.count}`));
 * ```
 */
export async function unitReport(
  structures: readonly Structure[],
  parameters: readonly PrunableParameter[],
): Promise<UnitSparsity[]> {
  const rows: UnitSparsity[] = [];
  for (const structure of structures) {
    const kept = await keptUnits(structure, parameters);
    rows.push({
      name: structure.name,
      kind: structure.kind,
      count: structure.count,
      kept: kept.filter(Boolean).length,
    });
  }
  return rows;
}

/** Loss and accuracy of a classifier over evaluation batches. */
export interface ClassifierMetrics {
  loss: number;
  accuracy: number;
  count: number;
  /**
   * With `options.classes`: `confusion[label][predicted]` counts, for {@link classificationScores}.
   */
  confusion?: number[][];
}

/**
 * Options of {@link evaluateClassifier}.
 *
 * @example
 * ```ts
 * const options: EvaluateClassifierOptions = { classes: 2 };
 * ```
 */
export interface EvaluateClassifierOptions {
  /** Count a confusion matrix over this many classes (labels and predictions must be below it). */
  classes?: number;
}

/**
 * Accuracy and F1 scores from a confusion matrix (`confusion[label][predicted]`). F1 of a class is
 * 2·TP / (2·TP + FP + FN) (0 when the class has no true or predicted example); `f1` is the F1 of
 * class 1, the positive class of a binary task; `macroF1` is the mean F1 over the classes that occur
 * among the labels or the predictions (as scikit-learn's `f1_score(average='macro')` does).
 *
 * @example
 * ```ts
 * classificationScores([[5, 1], [2, 2]]); // { accuracy: 0.7, f1: 4/7 ≈ 0.5714, macroF1: (10/13 + 4/7)/2 ≈ 0.6703 }
 * ```
 */
export function classificationScores(confusion: readonly (readonly number[])[]): {
  accuracy: number;
  f1: number;
  macroF1: number;
} {
  const classes = confusion.length;
  let total = 0;
  let correct = 0;
  const perClass: number[] = [];
  for (let c = 0; c < classes; c++) {
    const truePositives = confusion[c]![c]!;
    let labelled = 0;
    let predicted = 0;
    for (let other = 0; other < classes; other++) {
      labelled += confusion[c]![other]!;
      predicted += confusion[other]![c]!;
    }
    total += labelled;
    correct += truePositives;
    if (labelled + predicted > 0) perClass[c] = (2 * truePositives) / (labelled + predicted);
  }
  const present = perClass.filter((value) => value !== undefined);
  return {
    accuracy: total ? correct / total : Number.NaN,
    f1: classes >= 2 ? (perClass[1] ?? 0) : Number.NaN,
    macroF1: present.length ? present.reduce((sum, value) => sum + value, 0) / present.length : Number.NaN,
  };
}

/**
 * Evaluates a classifier (masks applied, training off) over batches whose `y` holds integer labels
 * `[b]` or one-hot rows `[b, classes]`. Each batch's tensors are disposed after use.
 *
 * @example
 * ```ts
 * const { accuracy } = await evaluateClassifier(prunable, evaluationBatches(mnist.test, 1000));
 * ```
 */
export async function evaluateClassifier(
  model: PrunableModel,
  batches: Iterable<Batch>,
  options: EvaluateClassifierOptions = {},
): Promise<ClassifierMetrics> {
  const classes = options.classes;
  const confusion =
    classes === undefined
      ? undefined
      : Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  for (const batch of batches) {
    const [lossTensor, correctTensor, targetTensor, predictedTensor] = tf.tidy(() => {
      const outputs = model.forward(batch.x, { training: false });
      const logits = (Array.isArray(outputs) ? outputs[0] : outputs) as tf.Tensor;
      const labels = batch.y as tf.Tensor;
      const target = tf.cast(labels.rank === 1 ? labels : tf.argMax(labels, -1), 'int32');
      const predicted = tf.argMax(logits, -1);
      const hits = tf.sum(tf.cast(tf.equal(predicted, target), 'float32'));
      return [model.loss(outputs, batch), hits, target, predicted];
    });
    try {
      const size = (batch.y as tf.Tensor).shape[0]!;
      lossSum += (await lossTensor.data())[0]! * size;
      correct += (await correctTensor.data())[0]!;
      count += size;
      if (confusion) {
        const [target, predicted] = await Promise.all([targetTensor.data(), predictedTensor.data()]);
        for (let i = 0; i < target.length; i++) {
          const row = confusion[target[i]!];
          if (row === undefined || predicted[i]! >= classes!) {
            throw new FinepruneError({
              code: ErrorCodes.SHAPE_MISMATCH,
              message: `evaluateClassifier: label ${target[i]} or prediction ${predicted[i]} is not below classes ${classes}.`,
              fix: 'Pass the number of classes of the task, and a model with one output per class.',
            });
          }
          row[predicted[i]!]! += 1;
        }
      }
    } finally {
      tf.dispose([
        lossTensor,
        correctTensor,
        targetTensor,
        predictedTensor,
        batch.x,
        batch.y,
      ] as tf.TensorContainer);
    }
  }
  return {
    loss: count ? lossSum / count : Number.NaN,
    accuracy: count ? correct / count : Number.NaN,
    count,
    ...(confusion ? { confusion } : {}),
  };
}
