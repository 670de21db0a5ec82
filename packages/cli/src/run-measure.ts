import {
  type Batch,
  classificationScores,
  ErrorCodes,
  evaluateClassifier,
  FinepruneError,
  type Plugin,
  type PrunableModel,
  sparsityReport,
} from '@fineprune/core';
import * as tf from '@tensorflow/tfjs-core';
import type { RunData } from './run-data';
import type { EvaluationPoint, RunHistory } from './run-record';
import type { RunEvent } from './run-types';

/**
 * Measurements of a run: evaluation on the test split, and ΔL on a fixed batch around mask updates.
 *
 * @example
 * ```ts
 * const measurement = createRunMeasurement({ prunable, data, history, totalSteps, lastTargets, targets, emit });
 * const point = await measurement.evaluate(100);
 * measurement.dispose();
 * ```
 */
export interface RunMeasurement {
  /** Accuracy, loss, remaining weights and the metrics the recipe asks for at `step`. */
  evaluate(step: number): Promise<EvaluationPoint>;
  /** A read-only hook plugin that records ΔL at mask updates and the dense baseline into the history. */
  readonly plugin: Plugin;
  /** Frees the fixed measurement batch. */
  dispose(): void;
}

/**
 * Builds the measurements of a run. ΔL(θ, Δθ) (Sec. 3 and Fig. 3 of *Revisiting Loss Modelling*) is
 * the loss on a fixed batch of test examples (`data.measureBatch()`: 256 of features data, 16 of
 * text) right before and right after each mask update that changes a target, at most about
 * `data.measureLimit` times per run (100; 20 for text, whose forward passes cost more); the dense
 * baseline is evaluated once, just before the first non-zero target. With `metrics` naming `f1` or
 * `macroF1`, evaluations count a confusion matrix and report them too.
 *
 * @example
 * ```ts
 * const measurement = createRunMeasurement({ prunable, data, history, totalSteps: 1000, lastTargets: new Map(), targets: (step) => pruner.targets(step), emit });
 * ```
 */
export function createRunMeasurement(options: {
  prunable: PrunableModel;
  data: RunData;
  history: RunHistory;
  totalSteps: number;
  /** The metrics evaluations report besides accuracy and loss. */
  metrics?: readonly string[];
  /** Last target of each group (from the checkpoint on resume); updated as masks change. */
  lastTargets: Map<string, number | null>;
  /** The target of each group at a step (the pruner's schedules). */
  targets(step: number): Record<string, number>;
  emit(event: RunEvent): void;
}): RunMeasurement {
  const { prunable, data, history, totalSteps, lastTargets, emit } = options;
  const measureBatch: Batch = data.measureBatch();
  const scores = (options.metrics ?? []).some((metric) => metric === 'f1' || metric === 'macroF1');
  if (scores && options.metrics?.includes('f1') && data.classes !== 2) {
    tf.dispose([measureBatch.x, measureBatch.y] as tf.TensorContainer);
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `training.metrics: f1 is the F1 of the positive class of a binary task, but ${data.name} has ${data.classes} classes.`,
      fix: 'Use macroF1 for tasks of more than two classes.',
      details: { path: 'training.metrics' },
    });
  }
  const lossOnMeasureBatch = async (): Promise<number> => {
    const value = tf.tidy(() =>
      prunable.loss(prunable.forward(measureBatch.x, { training: false }), measureBatch),
    );
    const result = (await value.data())[0]!;
    value.dispose();
    return result;
  };
  const evaluate = async (step: number): Promise<EvaluationPoint> => {
    const metrics = await evaluateClassifier(
      prunable,
      data.evaluationBatches(),
      scores ? { classes: data.classes } : {},
    );
    const report = await sparsityReport(prunable.parameters());
    const point: EvaluationPoint = {
      step,
      remaining: 1 - report.sparsity,
      accuracy: metrics.accuracy,
      loss: metrics.loss,
    };
    if (metrics.confusion) {
      const { f1, macroF1 } = classificationScores(metrics.confusion);
      if (options.metrics?.includes('f1')) point.f1 = f1;
      if (options.metrics?.includes('macroF1')) point.macroF1 = macroF1;
    }
    return point;
  };
  const spacing = Math.max(1, Math.floor(totalSteps / data.measureLimit));
  let lastMeasuredStep = Number.NEGATIVE_INFINITY;
  let pendingBefore: number | undefined;
  const plugin: Plugin = {
    id: 'fineprune-cli/measure',
    async onStepStart(context) {
      pendingBefore = undefined;
      const targets = options.targets(context.step);
      const changing = Object.entries(targets).some(([group, target]) => {
        const last = lastTargets.get(group) ?? null;
        return last === null ? target !== 0 : last !== target;
      });
      if (!changing) return;
      if (!history.dense && Object.values(targets).some((target) => target !== 0)) {
        const point = await evaluate(context.step);
        history.dense = { step: context.step, accuracy: point.accuracy, loss: point.loss };
        emit({ type: 'evaluate', point, dense: true });
      }
      const isFinal = context.step + 1 >= totalSteps;
      if (context.step - lastMeasuredStep >= spacing || isFinal) pendingBefore = await lossOnMeasureBatch();
    },
    async afterMaskUpdate(context) {
      const last = lastTargets.get(context.group) ?? null;
      const changed = last === null ? context.target !== 0 : last !== context.target;
      lastTargets.set(context.group, context.target);
      if (!changed || pendingBefore === undefined) return;
      const after = await lossOnMeasureBatch();
      history.lossChanges.push({
        step: context.step,
        group: context.group,
        target: context.target,
        before: pendingBefore,
        after,
      });
      lastMeasuredStep = context.step;
      pendingBefore = after;
    },
  };
  return {
    evaluate,
    plugin,
    dispose: () => tf.dispose([measureBatch.x, measureBatch.y] as tf.TensorContainer),
  };
}
