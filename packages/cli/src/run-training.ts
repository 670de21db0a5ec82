import {
  type MicroBatchProvider,
  type PrunableModel,
  type Pruner,
  type StepResult,
  sparsityReport,
} from '@fineprune/core';
import type { Recipe } from '@fineprune/recipes';
import type { RunCheckpointMetadata } from './checkpoint';
import type { ModelSource } from './model-source';
import type { EvaluationPoint, RunHistory } from './run-record';
import type { RunEvent } from './run-types';

/**
 * The clock and history of a run across resumes: seconds spent before this session plus this one's.
 *
 * @example
 * ```ts
 * const clock = runClock(history); clock.update(); // history.seconds now includes this session
 * ```
 */
export interface RunClock {
  /** When this session started (performance.now()). */
  readonly startedAt: number;
  /** Writes the total seconds so far into the history. */
  update(): void;
}

/**
 * Starts the clock of a session of a run.
 *
 * @example
 * ```ts
 * const clock = runClock(history);
 * ```
 */
export function runClock(history: RunHistory): RunClock {
  const startedAt = performance.now();
  const before = history.seconds;
  return {
    startedAt,
    update: () => {
      history.seconds = before + (performance.now() - startedAt) / 1000;
    },
  };
}

/**
 * A checkpoint writer for a run: writes at most one checkpoint per step (again after an abort), with
 * the recipe's identity and the history, and reports it.
 *
 * @example
 * ```ts
 * const checkpoint = checkpointWriter({ directory, save, pruner, key, history, clock, emit });
 * await checkpoint();
 * ```
 */
export function checkpointWriter(options: {
  directory: string;
  /** Writes the model's checkpoint (of its kind: layers or BERT) with the run metadata. */
  save(metadata: RunCheckpointMetadata): Promise<void>;
  pruner: Pruner;
  key: string;
  history: RunHistory;
  clock: RunClock;
  /** The model file the run started from, recorded in each checkpoint. */
  source?: ModelSource | undefined;
  signal?: AbortSignal;
  emit(event: RunEvent): void;
}): () => Promise<void> {
  const { directory, save, pruner, key, history, clock, emit, source } = options;
  let lastStep = -1;
  return async () => {
    if (lastStep === pruner.step && !options.signal?.aborted) return;
    lastStep = pruner.step;
    clock.update();
    await save({ formatVersion: 1, recipeKey: key, history, ...(source ? { source } : {}) });
    emit({ type: 'checkpoint', step: pruner.step, directory });
  };
}

/**
 * Trains until `training.steps` (or an abort): step events with the remaining weights and an ETA,
 * evaluations every `training.evaluateEvery` steps into the history, checkpoints every
 * `checkpoint.every` steps.
 *
 * @example
 * ```ts
 * await trainRun({ recipe, pruner, prunable, source, history, evaluate, checkpoint, clock, emit });
 * ```
 */
export async function trainRun(options: {
  recipe: Recipe;
  pruner: Pruner;
  prunable: PrunableModel;
  source: MicroBatchProvider;
  history: RunHistory;
  evaluate(step: number): Promise<EvaluationPoint>;
  /** Called with each evaluation once it is in the history (best-model keeping). */
  onEvaluation?(point: EvaluationPoint): Promise<void>;
  checkpoint(): Promise<void>;
  clock: RunClock;
  signal?: AbortSignal;
  emit(event: RunEvent): void;
}): Promise<void> {
  const { recipe, pruner, prunable, history, evaluate, checkpoint, clock, signal, emit } = options;
  const totalSteps = recipe.training.steps;
  const startStep = pruner.step;
  const every = recipe.checkpoint.every;
  let remaining = 1 - (await sparsityReport(prunable.parameters())).sparsity;
  await pruner.run({
    data: options.source,
    untilStep: totalSteps,
    ...(signal ? { signal } : {}),
    ...(recipe.training.evaluateEvery > 0
      ? {
          evaluations: [
            {
              every: recipe.training.evaluateEvery,
              evaluate: async (context) => {
                const point = await evaluate(context.step);
                history.evaluations.push(point);
                emit({ type: 'evaluate', point, dense: false });
                await options.onEvaluation?.(point);
                const { step: _step, ...metrics } = point;
                return metrics;
              },
            },
          ],
        }
      : {}),
    onStep: async (result: StepResult) => {
      if (result.masksUpdated) remaining = 1 - (await sparsityReport(prunable.parameters())).sparsity;
      const elapsed = (performance.now() - clock.startedAt) / 1000;
      const done = result.step - startStep;
      emit({
        type: 'step',
        step: result.step,
        totalSteps,
        loss: result.loss,
        taskLoss: result.taskLoss,
        targets: { ...result.targets },
        remaining,
        learningRates: { ...result.learningRates },
        elapsedSeconds: elapsed,
        etaSeconds: done > 0 ? (elapsed / done) * (totalSteps - result.step) : Number.NaN,
      });
      if (every > 0 && result.step % every === 0 && result.step < totalSteps && !signal?.aborted) {
        await checkpoint();
      }
    },
  });
}
