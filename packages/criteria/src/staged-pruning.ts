import * as tf from '@tensorflow/tfjs-core';
import { type Batch, evaluateClassifier, type PrunableModel, type PrunableParameter } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { readFloat32, topCountMasks } from '@fineprune/tensor/select';
import type { SaliencyCriterion } from './criteria';
import type { StageSchedule } from './stages';

/**
 * Options of {@link pruneInStages}.
 *
 * @example
 * ```ts
 * const options: StagedPruningOptions = { model, criterion: linearModel(), schedule, scoringData: () => [batch] };
 * ```
 */
export interface StagedPruningOptions {
  model: PrunableModel;
  criterion: SaliencyCriterion;
  schedule: StageSchedule;
  /**
   * Fresh scoring batches for stage `stage` (1-based), re-drawn at every stage (Appendix B.2: 1,000
   * random training examples). Required unless the criterion needs no data. The runner disposes them.
   */
  scoringData?: (stage: number) => Iterable<Batch>;
  /** The parameters to prune, selected globally together; default all of the model's. */
  parameters?: readonly PrunableParameter[];
  /** Optional fine-tuning after each stage (Algorithm 1, line 8); masks stay fixed while it runs. */
  fineTune?: (stage: number) => void | Promise<void>;
  /** Batches to measure the loss on before and after every stage (disposed by the runner). */
  lossData?: () => Iterable<Batch>;
  /** Called after every stage. */
  onStage?: (report: StageReport) => void | Promise<void>;
}

/**
 * What one stage did.
 *
 * @example
 * ```ts
 * const { stages } = await pruneInStages(options);
 * console.log(stages.map((stage) => stage.stepNorm));
 * ```
 */
export interface StageReport {
  /** 1-based stage number. */
  stage: number;
  /** Target sparsity κ_i after the stage. */
  sparsity: number;
  /** Weights kept after the stage (exact). */
  kept: number;
  /** Weights removed in this stage. */
  removed: number;
  /** ‖Δθ‖₂ of this stage's pruning step: the norm of the removed (effective) weights. */
  stepNorm: number;
  /** Loss on `lossData` before and after the stage (before any fine-tuning), when given. */
  lossBefore?: number;
  lossAfter?: number;
  /** Milliseconds spent measuring (gradients, curvature) and computing saliencies + selecting. */
  measureMs: number;
  selectMs: number;
}

/**
 * The result of {@link pruneInStages}.
 *
 * @example
 * ```ts
 * const { stages, kept, total }: StagedPruningResult = await pruneInStages(options);
 * ```
 */
export interface StagedPruningResult {
  stages: StageReport[];
  /** Total prunable weights and weights kept at the end. */
  total: number;
  kept: number;
}

/** Rethrows `error` as a FinepruneError that names the stage and, when known, the parameter. */
function atStage(
  error: unknown,
  stage: number,
  stages: number,
  parameter: string | undefined,
): FinepruneError {
  const base = FinepruneError.is(error)
    ? error
    : new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: (error as Error)?.message ?? String(error),
        fix: 'See the cause.',
        cause: error,
      });
  const name = parameter ?? (base.details?.parameter as string | undefined);
  const where = `Stage ${stage} of ${stages}${name !== undefined ? `, parameter "${name}"` : ''}`;
  const message = base.message.replace(/^\[[A-Z_]+\] /, '').replace(/ Fix: [\s\S]*$/, '');
  return new FinepruneError({
    code: base.code,
    message: `${where}: ${message}`,
    fix: base.fix,
    cause: error,
    details: { ...(base.details ?? {}), stage, parameter: name },
  });
}

/**
 * Mean loss of the model over batches (disposed).
 *
 * @example
 * ```ts
 * const loss = await lossOn(model, evaluationBatches(train, 1000));
 * ```
 */
export async function lossOn(model: PrunableModel, batches: Iterable<Batch>): Promise<number> {
  return (await evaluateClassifier(model, batches)).loss;
}

/**
 * Prunes in π stages (Algorithm 1, lines 4–8): at stage i, re-measure the criterion on fresh
 * scoring batches, rank every still-kept weight of all parameters together (global selection,
 * exact counts, ties broken by parameter order then index via `topCountMasks`), keep the
 * `keptCounts(total)[i]` largest saliencies, and optionally fine-tune. Pruned weights stay pruned.
 * The criterion's measurements are freed at the end.
 *
 * @returns one {@link StageReport} per stage
 * @throws FinepruneError naming the stage and parameter: `NON_FINITE` when the loss or a
 *   saliency is NaN, `SHAPE_MISMATCH` when a scoring batch does not fit the model,
 *   `INVALID_ARGUMENT` when a data-driven criterion gets no `scoringData`
 *
 * @example
 * ```ts
 * const result = await pruneInStages({
 *   model, criterion: quadraticModel(),
 *   schedule: stageSchedule({ stages: 14, finalSparsity: 0.9885 }),
 *   scoringData: () => [source.batch(step++)],
 * });
 * ```
 */
export async function pruneInStages(options: StagedPruningOptions): Promise<StagedPruningResult> {
  const { model, criterion, schedule } = options;
  const parameters = options.parameters ?? model.parameters();
  const total = parameters.reduce((sum, parameter) => sum + parameter.size, 0);
  const needsData = Object.values(criterion.needs).some(Boolean);
  if (needsData && !options.scoringData) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Criterion "${criterion.id}" is measured on data, but no scoringData was given.`,
      fix: 'Pass scoringData: (stage) => batches (for example 1,000 fresh training examples per stage).',
    });
  }
  const counts = schedule.keptCounts(total);
  const reports: StageReport[] = [];
  const context = { step: 0, model, random: { next: () => 0, nextUint32: () => 0 } };
  const readLoss = async () => (options.lossData ? await lossOn(model, options.lossData()) : undefined);
  let lossBefore = await readLoss();
  for (let stage = 1; stage <= schedule.stages; stage += 1) {
    const started = performance.now();
    if (options.scoringData) {
      const batches = [...options.scoringData(stage)];
      try {
        await criterion.measure(model, batches);
      } catch (error) {
        throw atStage(error, stage, schedule.stages, undefined);
      } finally {
        tf.dispose(batches.flatMap((batch) => [batch.x, batch.y]) as tf.TensorContainer);
      }
    }
    const measured = performance.now();
    const scores: Float32Array[] = [];
    const thetas: Float32Array[] = [];
    const oldMasks: Float32Array[] = [];
    for (const parameter of parameters) {
      let saliency: tf.Tensor;
      try {
        saliency = await criterion.compute({ parameter, scores: undefined }, { ...context, step: stage });
      } catch (error) {
        throw atStage(error, stage, schedule.stages, parameter.name);
      }
      if (!tf.util.arraysEqual(saliency.shape, [...parameter.shape])) {
        saliency.dispose();
        throw atStage(
          new FinepruneError({
            code: ErrorCodes.SHAPE_MISMATCH,
            message: `Criterion "${criterion.id}" returned saliencies of shape [${saliency.shape}] for a weight of shape [${parameter.shape}].`,
            fix: 'Return one saliency per weight entry.',
          }),
          stage,
          schedule.stages,
          parameter.name,
        );
      }
      const [masked, theta] = tf.tidy(() => {
        const kept = tf.greater(parameter.mask, 0);
        // Pruned weights stay pruned: they rank below every kept one.
        return [
          tf.where(kept, saliency, tf.fill(parameter.shape as number[], Number.NEGATIVE_INFINITY)),
          tf.mul(parameter.weight, parameter.mask),
        ];
      });
      saliency.dispose();
      scores.push(await readFloat32(masked));
      thetas.push(await readFloat32(theta));
      oldMasks.push(await readFloat32(parameter.mask));
      tf.dispose([masked, theta]);
    }
    let masks: Float32Array[];
    try {
      masks = topCountMasks(scores, counts[stage - 1]!);
    } catch (error) {
      const index = FinepruneError.is(error) ? (error.details?.arrayIndex as number | undefined) : undefined;
      const name = parameters[index ?? 0]?.name;
      throw atStage(error, stage, schedule.stages, name);
    }
    let squaredStep = 0;
    let removed = 0;
    masks.forEach((mask, index) => {
      const theta = thetas[index]!;
      const old = oldMasks[index]!;
      for (let entry = 0; entry < mask.length; entry += 1) {
        if (old[entry]! > 0 && mask[entry] === 0) {
          squaredStep += theta[entry]! * theta[entry]!; // Δθ_k = −θ_k for every removed weight
          removed += 1;
        }
      }
      const parameter = parameters[index]!;
      tf.tidy(() => parameter.mask.assign(tf.tensor(mask, [...parameter.shape])));
    });
    const selected = performance.now();
    const lossAfter = await readLoss();
    const report: StageReport = {
      stage,
      sparsity: schedule.sparsityAt(stage),
      kept: counts[stage - 1]!,
      removed,
      stepNorm: Math.sqrt(squaredStep),
      ...(lossBefore !== undefined ? { lossBefore } : {}),
      ...(lossAfter !== undefined ? { lossAfter } : {}),
      measureMs: measured - started,
      selectMs: selected - measured,
    };
    reports.push(report);
    if (options.fineTune) {
      await options.fineTune(stage);
      lossBefore = await readLoss();
    } else {
      lossBefore = lossAfter;
    }
    await options.onStage?.(report);
  }
  criterion.dispose();
  return { stages: reports, total, kept: counts.at(-1) ?? total };
}
