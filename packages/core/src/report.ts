import * as tf from '@tensorflow/tfjs-core';
import { keptUnits, type Structure } from './structures';
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
): Promise<ClassifierMetrics> {
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  for (const batch of batches) {
    const [lossTensor, correctTensor] = tf.tidy(() => {
      const outputs = model.forward(batch.x, { training: false });
      const logits = (Array.isArray(outputs) ? outputs[0] : outputs) as tf.Tensor;
      const labels = batch.y as tf.Tensor;
      const target = labels.rank === 1 ? labels : tf.argMax(labels, -1);
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, -1), tf.cast(target, 'int32')), 'float32'));
      return [model.loss(outputs, batch), hits];
    });
    const size = (batch.y as tf.Tensor).shape[0]!;
    lossSum += (await lossTensor.data())[0]! * size;
    correct += (await correctTensor.data())[0]!;
    count += size;
    tf.dispose([lossTensor, correctTensor, batch.x, batch.y] as tf.TensorContainer);
  }
  return {
    loss: count ? lossSum / count : Number.NaN,
    accuracy: count ? correct / count : Number.NaN,
    count,
  };
}
