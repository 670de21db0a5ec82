import * as tf from '@tensorflow/tfjs-core';
import { type Batch, evaluateClassifier, type Optimizer, type PrunableModel } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import type { SaliencyCriterion } from './criteria';
import { lossOn, pruneInStages, type StageReport } from './staged-pruning';
import type { StageSchedule } from './stages';

/**
 * Options of {@link trainSteps}.
 *
 * @example
 * ```ts
 * const options: TrainOptions = { optimizer: sgd({ learningRate: 0.01 }), batch: (step) => source.batch(step), steps: 500 };
 * ```
 */
export interface TrainOptions {
  /** A core optimizer (for example `sgd({ learningRate: 0.01, momentum: 0.9 })`); the caller disposes it. */
  optimizer: Optimizer;
  /** Batch of step `s` (disposed after the step). */
  batch: (step: number) => Batch;
  /** Number of steps. */
  steps: number;
  /** L2 regularisation added to every gradient as `weightDecay · θ` (PyTorch SGD semantics); default 0. */
  weightDecay?: number;
  /** Step number of the first step (for the optimizer's schedule); default 0. */
  firstStep?: number;
  /** Called after every step with its loss (reading it synchronises; pass `every` to read less often). */
  onLoss?: (step: number, loss: number) => void;
  /** Read the loss every this many steps; default 100. */
  every?: number;
}

/**
 * Trains a model's trainable variables on its masked forward pass (pruned weights get no gradient
 * through W ⊙ M, so masks stay fixed): the training and fine-tuning phases of Algorithm 1.
 *
 * @returns the mean of the losses read
 * @throws FinepruneError `NON_FINITE` when the loss diverges
 *
 * @example
 * ```ts
 * const optimizer = sgd({ learningRate: 0.01, momentum: 0.9 });
 * await trainSteps(model, { optimizer, batch: (step) => source.batch(step), steps: 500, weightDecay: 5e-4 });
 * ```
 */
export async function trainSteps(model: PrunableModel, options: TrainOptions): Promise<number> {
  const variables = model.trainableVariables();
  const decay = options.weightDecay ?? 0;
  const every = options.every ?? 100;
  const first = options.firstStep ?? 0;
  let sum = 0;
  let reads = 0;
  for (let offset = 0; offset < options.steps; offset += 1) {
    const step = first + offset;
    const batch = options.batch(step);
    try {
      const { value, grads } = tf.variableGrads(
        () => model.loss(model.forward(batch.x, { training: true }), batch),
        variables.map((entry) => entry.variable),
      );
      try {
        const entries = tf.tidy(() =>
          variables.map(({ name, variable }) => {
            const gradient = grads[variable.name]!;
            return {
              name,
              variable,
              gradient: decay > 0 ? tf.keep(tf.add(gradient, tf.mul(variable, decay))) : gradient,
            };
          }),
        );
        options.optimizer.apply(entries, step);
        if (decay > 0) tf.dispose(entries.map((entry) => entry.gradient));
        if (offset % every === every - 1 || offset === options.steps - 1) {
          const loss = (await value.data())[0]!;
          if (!Number.isFinite(loss)) {
            throw new FinepruneError({
              code: ErrorCodes.NON_FINITE,
              message: `The training loss became ${loss} at step ${step}.`,
              fix: 'Lower the learning rate or check the data.',
              details: { step },
            });
          }
          sum += loss;
          reads += 1;
          options.onLoss?.(step, loss);
        }
      } finally {
        value.dispose();
        tf.dispose(grads);
      }
    } finally {
      tf.dispose([batch.x, batch.y] as tf.TensorContainer);
    }
  }
  return reads ? sum / reads : Number.NaN;
}

/**
 * A copy of every trainable variable and mask of a model, to reset it (the reproduction trains each
 * seed's dense network once and restores it before every configuration).
 *
 * @example
 * ```ts
 * const dense = snapshot(model);
 * await pruneInStages({ model, ... });
 * dense.restore(); // weights and masks as before
 * dense.dispose();
 * ```
 */
export interface ModelSnapshot {
  restore(): void;
  dispose(): void;
}

/**
 * Copies the model's trainable variables and masks (see {@link ModelSnapshot}).
 *
 * @example
 * ```ts
 * const saved = snapshot(model);
 * ```
 */
export function snapshot(model: PrunableModel): ModelSnapshot {
  const variables = [
    ...model.trainableVariables().map((entry) => entry.variable),
    ...model.parameters().map((parameter) => parameter.mask),
  ];
  const copies = variables.map((variable) => tf.keep(variable.clone()));
  return {
    restore: () => {
      variables.forEach((variable, index) => {
        variable.assign(copies[index]!);
      });
    },
    dispose: () => tf.dispose(copies),
  };
}

/**
 * Options of {@link pruningFramework}.
 *
 * @example
 * ```ts
 * const options: PruningFrameworkOptions = { model, criterion, schedule, lossData, validationData };
 * ```
 */
export interface PruningFrameworkOptions {
  model: PrunableModel;
  criterion: SaliencyCriterion;
  schedule: StageSchedule;
  /** Algorithm 1, line 1: trains the dense network. Omit when it is already trained. */
  train?: () => void | Promise<void>;
  /** Fresh scoring batches per stage (disposed by the runner). */
  scoringData?: (stage: number) => Iterable<Batch>;
  /** Optional fine-tuning between stages (Algorithm 1, line 8). */
  fineTuneBetweenStages?: (stage: number) => void | Promise<void>;
  /** The single fine-tuning phase after the last stage (the training hyper-parameters). Omit to skip. */
  fineTune?: () => void | Promise<void>;
  /** Batches on which L(θ) is measured for ΔL (the training loss; disposed). */
  lossData: () => Iterable<Batch>;
  /** Validation batches for the error gap (disposed). */
  validationData: () => Iterable<Batch>;
  /** Also measure the loss before and after every stage; default false. */
  lossPerStage?: boolean;
}

/**
 * What {@link pruningFramework} measured.
 *
 * @example
 * ```ts
 * const report = await pruningFramework(options);
 * console.log(report.deltaLoss, report.gapAfterFineTuning);
 * ```
 */
export interface PruningFrameworkReport {
  /** L(θ) and L(θ + Δθ) on the loss data, and ΔL = |L(θ + Δθ) − L(θ)| (Eq. 1). */
  lossBefore: number;
  lossAfter: number;
  deltaLoss: number;
  /** Validation error (fraction) of the dense, pruned and fine-tuned networks. */
  denseError: number;
  prunedError: number;
  fineTunedError: number | undefined;
  /** prunedError − denseError and fineTunedError − denseError. */
  gapBeforeFineTuning: number;
  gapAfterFineTuning: number | undefined;
  /** Loss after fine-tuning, on the loss data. */
  fineTunedLoss: number | undefined;
  stages: StageReport[];
}

async function validationError(model: PrunableModel, batches: Iterable<Batch>): Promise<number> {
  return 1 - (await evaluateClassifier(model, batches)).accuracy;
}

/**
 * Algorithm 1 end to end: train (optional) → π stages of pruning → one fine-tuning phase; reports
 * ΔL = |L(θ+Δθ) − L(θ)|, the validation-error gap before and after fine-tuning and ‖Δθ‖₂ per stage.
 *
 * @example
 * ```ts
 * const report = await pruningFramework({
 *   model, criterion: linearModel(), schedule: stageSchedule({ stages: 14, finalSparsity: 0.9885 }),
 *   scoringData: () => scoring(1000), fineTune: () => trainSteps(model, fineTuneOptions),
 *   lossData: () => evaluationBatches(train, 1000), validationData: () => evaluationBatches(validation, 1000),
 * });
 * ```
 */
export async function pruningFramework(options: PruningFrameworkOptions): Promise<PruningFrameworkReport> {
  const { model } = options;
  await options.train?.();
  const lossBefore = await lossOn(model, options.lossData());
  const denseError = await validationError(model, options.validationData());
  const { stages } = await pruneInStages({
    model,
    criterion: options.criterion,
    schedule: options.schedule,
    ...(options.scoringData ? { scoringData: options.scoringData } : {}),
    ...(options.fineTuneBetweenStages ? { fineTune: options.fineTuneBetweenStages } : {}),
    ...(options.lossPerStage ? { lossData: options.lossData } : {}),
  });
  const lossAfter = await lossOn(model, options.lossData());
  const prunedError = await validationError(model, options.validationData());
  let fineTunedError: number | undefined;
  let fineTunedLoss: number | undefined;
  if (options.fineTune) {
    await options.fineTune();
    fineTunedError = await validationError(model, options.validationData());
    fineTunedLoss = await lossOn(model, options.lossData());
  }
  return {
    lossBefore,
    lossAfter,
    deltaLoss: Math.abs(lossAfter - lossBefore), // Eq. 1: ΔL = |L(θ + Δθ) − L(θ)|
    denseError,
    prunedError,
    fineTunedError,
    gapBeforeFineTuning: prunedError - denseError,
    gapAfterFineTuning: fineTunedError === undefined ? undefined : fineTunedError - denseError,
    fineTunedLoss,
    stages,
  };
}

/**
 * Spearman's rank correlation ρ of two equally long lists (average ranks for ties).
 *
 * @example
 * ```ts
 * spearman([1, 2, 3], [10, 30, 20]); // 0.5
 * ```
 */
export function spearman(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length < 2) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `spearman() needs two lists of the same length ≥ 2, got ${a.length} and ${b.length}.`,
      fix: 'Pass paired observations.',
    });
  }
  const ranks = (values: readonly number[]) => {
    const order = values.map((value, index) => ({ value, index })).sort((x, y) => x.value - y.value);
    const result = new Array<number>(values.length);
    for (let start = 0; start < order.length; ) {
      let end = start;
      while (end + 1 < order.length && order[end + 1]!.value === order[start]!.value) end += 1;
      for (let k = start; k <= end; k += 1) result[order[k]!.index] = (start + end) / 2 + 1;
      start = end + 1;
    }
    return result;
  };
  const ra = ranks(a);
  const rb = ranks(b);
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const ma = mean(ra);
  const mb = mean(rb);
  let covariance = 0;
  let va = 0;
  let vb = 0;
  for (let index = 0; index < ra.length; index += 1) {
    covariance += (ra[index]! - ma) * (rb[index]! - mb);
    va += (ra[index]! - ma) ** 2;
    vb += (rb[index]! - mb) ** 2;
  }
  return va === 0 || vb === 0 ? Number.NaN : covariance / Math.sqrt(va * vb);
}

/**
 * Mean and sample standard deviation.
 *
 * @example
 * ```ts
 * meanStd([1, 2, 3]); // { mean: 2, std: 1 }
 * ```
 */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
  const variance =
    values.length > 1 ? values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (values.length - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}
