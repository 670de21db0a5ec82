import type { Pruner } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { saveRunCheckpoint } from './checkpoint';
import { loadRunData } from './data-sources';
import { bestModelKeeper, evaluationMetrics } from './run-best';
import { prepareRun } from './run-check';
import { createRunMeasurement } from './run-measure';
import { disposeRunModel, openRunModel, type RunModel } from './run-model';
import { RECIPE_SHRINK, refuseUnshrinkable } from './export-shrink';
import { saveBertRunCheckpoint } from './run-model-bert';
import { createRunPruner } from './run-pruner';
import type { RunHistory } from './run-record';
import { runRecord, writeRunOutputs } from './run-results';
import { checkpointWriter, runClock, trainRun } from './run-training';
import type { RunEvent, RunOutcome, RunRecipeOptions } from './run-types';

/** Writes the checkpoint of a run's model, of its kind (TF.js layers or BERT). */
function checkpointSaver(model: RunModel, directory: string, pruner: Pruner) {
  return (metadata: Parameters<typeof saveRunCheckpoint>[3]) =>
    model.kind === 'bert'
      ? saveBertRunCheckpoint(directory, model.prunable, pruner, metadata)
      : saveRunCheckpoint(directory, model.prunable, pruner, metadata);
}

/**
 * Runs a recipe: checks it ({@link prepareRun}: plugin packages, ids and options, schedule
 * lengths, directories and their writability, all before any data is loaded), loads its data
 * (a built-in dataset, a text file, an image folder or a data module) and model (a TF.js layers
 * model or a Hugging Face BERT folder, or resumes from its checkpoint; the model must fit the data),
 * builds the plugins through the registry, trains with the `Pruner` (learning-rate schedules,
 * gradient accumulation), evaluates (accuracy, loss, F1 or macro-F1 as asked; the best model kept
 * in `<out>/best` with `training.keepBest`), measures ΔL at mask updates, writes checkpoints (every
 * `checkpoint.every` steps, on abort, at the end), and at the end writes the stripped model (in the
 * recipe's `export.format`), `run.json` and `report.html` to the output directory.
 *
 * A resumed run reaches the same masks as an uninterrupted one: batches and learning rates are
 * pure functions of the step, and checkpoints hold weights, masks, scores, optimizer slots, step,
 * random state (and a BERT model's dropout stream).
 *
 * @throws FinepruneError for invalid recipes, unknown plugins, data and I/O failures, and training failures
 *
 * @example
 * ```ts
 * const recipe = parseRecipe(await readFile('mnist.yaml', 'utf8'), { source: 'mnist.yaml' });
 * const outcome = await runRecipe({ recipe, baseDirectory: '.', onEvent: (event) => console.log(event.type) });
 * ```
 */
export async function runRecipe(options: RunRecipeOptions): Promise<RunOutcome> {
  const { recipe, baseDirectory, signal } = options;
  const { registry, outputDirectory, checkpointDirectory } = await prepareRun(options);
  const backend = await setBackend(
    recipe.backend,
    options.wasmThreads === undefined ? {} : { wasmThreads: options.wasmThreads },
  );
  const data = await loadRunData(recipe, baseDirectory, options.dataset ? { dataset: options.dataset } : {});
  const opened = await openRunModel(recipe, {
    baseDirectory,
    checkpointDirectory,
    resume: options.resume === true,
    data,
  });
  const { prunable, resumed, key } = opened;
  const emit = (event: RunEvent) => options.onEvent?.(event);
  const history: RunHistory = resumed?.metadata?.history
    ? structuredClone(resumed.metadata.history)
    : { evaluations: [], lossChanges: [], seconds: 0 };
  const totalSteps = recipe.training.steps;
  let pruner: Pruner | undefined;
  const measurement = createRunMeasurement({
    prunable,
    data,
    history,
    totalSteps,
    metrics: evaluationMetrics(recipe),
    lastTargets: new Map((resumed?.state.groups ?? []).map((group) => [group.name, group.lastTarget])),
    targets: (step) => pruner!.targets(step),
    emit,
  });
  const release = () => {
    disposeRunModel(opened);
    measurement.dispose();
  };
  let created: Awaited<ReturnType<typeof createRunPruner>>;
  try {
    // Refused before training, not after it: export.shrink on a model with nothing to remove.
    if (recipe.export.shrink && opened.kind === 'layers') refuseUnshrinkable(opened.prunable, RECIPE_SHRINK);
    created = await createRunPruner(recipe, registry, {
      model: prunable,
      data,
      baseDirectory,
      plugins: [measurement.plugin],
    });
  } catch (error) {
    if (resumed) tf.dispose(Object.values(resumed.state.tensors));
    release();
    throw error;
  }
  pruner = created.pruner;
  try {
    if (resumed) {
      try {
        pruner.loadState(resumed.state);
      } finally {
        tf.dispose(Object.values(resumed.state.tensors));
      }
    }
    emit({
      type: 'start',
      name: recipe.name,
      backend: backend.backend,
      startStep: pruner.step,
      totalSteps,
      resumed: resumed !== undefined,
      parameters: pruner.pruned().length,
      checkpointDirectory,
      outputDirectory,
    });
    const clock = runClock(history);
    const checkpoint = checkpointWriter({
      directory: checkpointDirectory,
      save: checkpointSaver(opened, checkpointDirectory, pruner),
      pruner,
      key,
      history,
      clock,
      source: opened.source,
      ...(signal ? { signal } : {}),
      emit,
    });
    const keepBest = bestModelKeeper({
      recipe,
      outputDirectory,
      model: opened,
      evaluations: history.evaluations,
    });
    await trainRun({
      recipe,
      pruner,
      prunable,
      source: data.source,
      history,
      evaluate: measurement.evaluate,
      ...(keepBest ? { onEvaluation: keepBest } : {}),
      checkpoint,
      clock,
      ...(signal ? { signal } : {}),
      emit,
    });
    if (pruner.step < totalSteps) {
      await checkpoint();
      emit({ type: 'interrupted', step: pruner.step, checkpointDirectory });
      return { status: 'interrupted', step: pruner.step, outputDirectory, checkpointDirectory };
    }
    // The final masks from the final scores (the benchmarks' pruner.updateMasks() after training).
    const finalMasks = recipe.training.finalMaskUpdate && !history.finalMasks;
    if (finalMasks) {
      await pruner.updateMasks();
      history.finalMasks = true;
    }
    const last = history.evaluations.at(-1);
    const finalPoint =
      last && last.step === totalSteps && !finalMasks ? last : await measurement.evaluate(totalSteps);
    if (finalPoint !== last) {
      history.evaluations.push(finalPoint);
      emit({ type: 'evaluate', point: finalPoint, dense: false });
      await keepBest?.(finalPoint);
    }
    await checkpoint();
    clock.update();
    const record = await runRecord({
      recipe,
      backend: backend.backend,
      pruner,
      prunable,
      scoreStrategies: created.scoreStrategies,
      history,
      finalPoint,
    });
    const written = await writeRunOutputs(recipe, outputDirectory, opened, record);
    emit({ type: 'done', record: written, outputDirectory });
    return { status: 'completed', step: pruner.step, outputDirectory, checkpointDirectory, record: written };
  } finally {
    pruner.dispose();
    release();
  }
}
