import type { Pruner } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { loadRecipeDataset } from './data-sources';
import { runData } from './run-data';
import { prepareRun } from './run-check';
import { createRunMeasurement } from './run-measure';
import { openRunModel } from './run-model';
import { createRunPruner } from './run-pruner';
import type { RunHistory } from './run-record';
import { runRecord, writeRunOutputs } from './run-results';
import { checkpointWriter, runClock, trainRun } from './run-training';
import type { RunEvent, RunOutcome, RunRecipeOptions } from './run-types';

/**
 * Runs a recipe: checks it ({@link prepareRun}: plugin packages, ids and options, schedule
 * lengths, directories and their writability, all before any data is loaded), loads its data and
 * model (or resumes from its checkpoint; the model must fit the data's input width and classes),
 * builds the plugins through the registry, trains with the `Pruner`, evaluates, measures ΔL at
 * mask updates, writes checkpoints (every `checkpoint.every` steps, on abort, at the end), and at
 * the end writes the stripped model, `run.json` and `report.html` to the output directory.
 *
 * A resumed run reaches the same masks as an uninterrupted one: batches are a pure function of
 * the step, and checkpoints hold weights, masks, scores, optimizer slots, step and random state.
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
  const backend = await setBackend(recipe.backend);
  const dataset = options.dataset ?? (await loadRecipeDataset(recipe.data.dataset, baseDirectory));
  const data = runData(recipe, dataset);
  const opened = await openRunModel(recipe, {
    baseDirectory,
    checkpointDirectory,
    resume: options.resume === true,
    data,
  });
  const { prunable, ownedModel, resumed, key, source: modelSource } = opened;
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
    lastTargets: new Map((resumed?.state.groups ?? []).map((group) => [group.name, group.lastTarget])),
    targets: (step) => pruner!.targets(step),
    emit,
  });
  const release = () => {
    prunable.dispose();
    ownedModel?.dispose();
    measurement.dispose();
  };
  let created: Awaited<ReturnType<typeof createRunPruner>>;
  try {
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
      prunable,
      pruner,
      key,
      history,
      clock,
      source: modelSource,
      ...(signal ? { signal } : {}),
      emit,
    });
    await trainRun({
      recipe,
      pruner,
      prunable,
      source: data.source,
      history,
      evaluate: measurement.evaluate,
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
    const last = history.evaluations.at(-1);
    const finalPoint = last && last.step === totalSteps ? last : await measurement.evaluate(totalSteps);
    if (finalPoint !== last) {
      history.evaluations.push(finalPoint);
      emit({ type: 'evaluate', point: finalPoint, dense: false });
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
    await writeRunOutputs(recipe, outputDirectory, prunable, record, modelSource);
    emit({ type: 'done', record, outputDirectory });
    return { status: 'completed', step: pruner.step, outputDirectory, checkpointDirectory, record };
  } finally {
    pruner.dispose();
    release();
  }
}
