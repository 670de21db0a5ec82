import {
  type Batch,
  evaluateClassifier,
  type Plugin,
  type PrunableModel,
  sparsityReport,
} from '@fineprune/core';
import { evaluationBatches } from '@fineprune/datasets';
import * as tf from '@tensorflow/tfjs-core';
import { subset, type RunData } from './run-data';
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
  /** Accuracy, loss and remaining weights at `step`. */
  evaluate(step: number): Promise<EvaluationPoint>;
  /** A read-only hook plugin that records ΔL at mask updates and the dense baseline into the history. */
  readonly plugin: Plugin;
  /** Frees the fixed measurement batch. */
  dispose(): void;
}

/**
 * Builds the measurements of a run. ΔL(θ, Δθ) (Sec. 3 and Fig. 3 of *Revisiting Loss Modelling*) is
 * the loss on a fixed batch of up to 256 test examples right before and right after each mask update
 * that changes a target, at most about 100 times per run; the dense baseline is evaluated once, just
 * before the first non-zero target.
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
  /** Last target of each group (from the checkpoint on resume); updated as masks change. */
  lastTargets: Map<string, number | null>;
  /** The target of each group at a step (the pruner's schedules). */
  targets(step: number): Record<string, number>;
  emit(event: RunEvent): void;
}): RunMeasurement {
  const { prunable, data, history, totalSteps, lastTargets, emit } = options;
  const measureCount = Math.min(256, data.test.count);
  const measureBatch: Batch = tf.tidy(() => {
    const first = evaluationBatches(subset(data.test, measureCount), measureCount).next().value as Batch;
    return { x: first.x, y: first.y };
  });
  const lossOnMeasureBatch = async (): Promise<number> => {
    const value = tf.tidy(() =>
      prunable.loss(prunable.forward(measureBatch.x, { training: false }), measureBatch),
    );
    const result = (await value.data())[0]!;
    value.dispose();
    return result;
  };
  const evaluate = async (step: number): Promise<EvaluationPoint> => {
    const metrics = await evaluateClassifier(prunable, evaluationBatches(data.test, 1000));
    const report = await sparsityReport(prunable.parameters());
    return { step, remaining: 1 - report.sparsity, accuracy: metrics.accuracy, loss: metrics.loss };
  };
  const spacing = Math.max(1, Math.floor(totalSteps / 100));
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
