import path from 'node:path';
import {
  type Batch,
  ErrorCodes,
  FinepruneError,
  type Optimizer,
  type Plugin,
  Pruner,
  type ScoreStrategy,
  type StepResult,
  adam,
  evaluateClassifier,
  sgd,
  sparsityReport,
} from '@fineprune/core';
import { type Dataset, type Split, batches, evaluationBatches } from '@fineprune/datasets';
import {
  type FromLayersModelOptions,
  fileSystem,
  fromLayersModel,
  type LayersPrunableModel,
  saveStripped,
} from '@fineprune/layers';
import {
  checkRecipePlugins,
  loadPluginPackage,
  type PackageImporter,
  type PluginRegistry,
  type Recipe,
  type RecipeOptimizer,
  resolvePlugins,
  toConfig,
  toParameterSelector,
} from '@fineprune/recipes';
import { createRandom, readFloat32, setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { builtinRegistry } from './builtins';
import { loadRecipeDataset } from './data-sources';
import {
  hasCheckpoint,
  loadRunCheckpoint,
  type RunCheckpointMetadata,
  saveRunCheckpoint,
} from './checkpoint';
import { writeFileAtomic } from './files';
import { loadRecipeModel } from './models';
import { renderHtmlReport } from './report/html';
import { sampleParameter } from './report/samples';
import type { EvaluationPoint, LayerRow, ParameterSample, RunHistory, RunRecord } from './run-record';

/**
 * What {@link runRecipe} reports while it runs (also printed as NDJSON by `fineprune run --json`).
 *
 * @example
 * ```ts
 * const onEvent = (event: RunEvent) => { if (event.type === 'evaluate') console.log(event.point.accuracy); };
 * ```
 */
export type RunEvent =
  | {
      type: 'start';
      name: string;
      backend: string;
      startStep: number;
      totalSteps: number;
      resumed: boolean;
      parameters: number;
      checkpointDirectory: string;
      outputDirectory: string;
    }
  | {
      type: 'step';
      step: number;
      totalSteps: number;
      loss: number;
      taskLoss: number;
      targets: Record<string, number>;
      /** Fraction of prunable weights kept, read from the masks when they last changed. */
      remaining: number;
      learningRates: Record<string, number>;
      elapsedSeconds: number;
      etaSeconds: number;
    }
  | { type: 'evaluate'; point: EvaluationPoint; dense: boolean }
  | { type: 'checkpoint'; step: number; directory: string }
  | { type: 'interrupted'; step: number; checkpointDirectory: string }
  | { type: 'done'; record: RunRecord; outputDirectory: string };

/**
 * Options of {@link runRecipe}.
 *
 * @example
 * ```ts
 * const options: RunRecipeOptions = { recipe, baseDirectory: '.', resume: true };
 * ```
 */
export interface RunRecipeOptions {
  recipe: Recipe;
  /** Directory that relative paths of the recipe start from (the recipe file's). */
  baseDirectory: string;
  /** A name for messages (the recipe file). */
  source?: string;
  /** Default: {@link builtinRegistry}. Packages in `recipe.plugins` are loaded into it. */
  registry?: PluginRegistry;
  /** Continue from the checkpoint when one exists. */
  resume?: boolean;
  /** Override the checkpoint directory (default `recipe.checkpoint.directory`, else `<output>/checkpoint`). */
  checkpointDirectory?: string;
  /** Override the output directory (default `recipe.export.directory`, else `out/<name>`). */
  outputDirectory?: string;
  /** Abort to stop after the current step; a checkpoint is written before returning. */
  signal?: AbortSignal;
  onEvent?(event: RunEvent): void;
  /** Reuse an already loaded dataset (tests). */
  dataset?: Dataset;
  /** How plugin packages are imported (tests, bundlers). */
  importer?: PackageImporter;
}

/**
 * What {@link runRecipe} returns.
 *
 * @example
 * ```ts
 * const outcome: RunOutcome = await runRecipe(options);
 * if (outcome.status === 'interrupted') process.exitCode = 130;
 * ```
 */
export interface RunOutcome {
  status: 'completed' | 'interrupted';
  step: number;
  outputDirectory: string;
  checkpointDirectory: string;
  record?: RunRecord;
}

/** Settings that may change between a run and its resume without changing what is computed. */
function recipeKey(recipe: Recipe): string {
  const {
    export: _export,
    checkpoint: _checkpoint,
    description: _description,
    $schema: _schema,
    ...rest
  } = toConfig(recipe) as Record<string, unknown>;
  const training = { ...(rest.training as Record<string, unknown>) };
  delete training.evaluateEvery;
  return JSON.stringify({ ...rest, training });
}

function makeOptimizer(options: RecipeOptimizer): Optimizer {
  if (options.type === 'sgd') {
    return sgd({
      learningRate: options.learningRate,
      ...(options.momentum !== undefined ? { momentum: options.momentum } : {}),
    });
  }
  return adam({
    learningRate: options.learningRate,
    ...(options.beta1 !== undefined ? { beta1: options.beta1 } : {}),
    ...(options.beta2 !== undefined ? { beta2: options.beta2 } : {}),
    ...(options.epsilon !== undefined ? { epsilon: options.epsilon } : {}),
    ...(options.weightDecay !== undefined ? { weightDecay: options.weightDecay } : {}),
  });
}

function subset(split: Split, limit: number | undefined): Split {
  if (limit === undefined || limit >= split.count) return split;
  return {
    ...split,
    count: limit,
    images: split.images.subarray(0, limit * split.featureSize),
    labels: split.labels.subarray(0, limit),
  };
}

/**
 * A short label of the method, from the plugin ids: `magnitude+topV(global)/cubic`.
 *
 * @example
 * ```ts
 * methodLabel(recipe); // 'magnitude+topV(global)/cubic'
 * ```
 */
export function methodLabel(recipe: Recipe): string {
  return recipe.pruning
    .map((group) => {
      const scope = typeof group.mask.options.scope === 'string' ? `(${group.mask.options.scope})` : '';
      return `${group.scores.id}+${group.mask.id}${scope}/${group.schedule.id}`;
    })
    .join(', ');
}

/**
 * Resolved output and checkpoint directories of a recipe.
 *
 * @example
 * ```ts
 * const { outputDirectory, checkpointDirectory } = runDirectories(recipe, '.');
 * ```
 */
export function runDirectories(
  recipe: Recipe,
  baseDirectory: string,
  overrides: { outputDirectory?: string; checkpointDirectory?: string } = {},
): { outputDirectory: string; checkpointDirectory: string } {
  const outputDirectory = path.resolve(
    baseDirectory,
    overrides.outputDirectory ?? recipe.export.directory ?? path.join('out', recipe.name),
  );
  const checkpointDirectory = overrides.checkpointDirectory
    ? path.resolve(overrides.checkpointDirectory)
    : recipe.checkpoint.directory
      ? path.resolve(baseDirectory, recipe.checkpoint.directory)
      : path.join(outputDirectory, 'checkpoint');
  return { outputDirectory, checkpointDirectory };
}

/**
 * Runs a recipe: loads its plugin packages, data and model (or resumes from its checkpoint),
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
  const { recipe, baseDirectory } = options;
  const registry = options.registry ?? builtinRegistry();
  for (const name of recipe.plugins) {
    await loadPluginPackage(registry, name, {
      from: baseDirectory,
      ...(options.importer ? { importer: options.importer } : {}),
    });
  }
  checkRecipePlugins(recipe, registry, options.source);
  const { outputDirectory, checkpointDirectory } = runDirectories(recipe, baseDirectory, options);
  const backend = await setBackend(recipe.backend);
  const dataset = options.dataset ?? (await loadRecipeDataset(recipe.data.dataset, baseDirectory));
  const train = subset(dataset.train, recipe.data.trainLimit);
  const test = subset(dataset.test, recipe.data.testLimit);
  if (recipe.data.batchSize > train.count) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `data.batchSize ${recipe.data.batchSize} is larger than the ${train.count} training examples.`,
      fix: 'Lower data.batchSize or raise data.trainLimit.',
      details: { path: 'data.batchSize' },
    });
  }
  const source = batches(train, { batchSize: recipe.data.batchSize, seed: recipe.seed });
  const totalSteps = recipe.training.steps;
  const layersOptions: FromLayersModelOptions = {
    loss: recipe.model.loss,
    ...(recipe.model.fromLogits !== undefined ? { fromLogits: recipe.model.fromLogits } : {}),
    ...(recipe.parameters.include ? { include: toParameterSelector(recipe.parameters.include) } : {}),
    ...(recipe.parameters.exclude ? { exclude: toParameterSelector(recipe.parameters.exclude) } : {}),
    ...(recipe.parameters.frozen ? { freeze: toParameterSelector(recipe.parameters.frozen) } : {}),
  };
  const key = recipeKey(recipe);

  let prunable: LayersPrunableModel;
  let ownedModel: { dispose(): void } | undefined;
  let loaded: Awaited<ReturnType<typeof loadRunCheckpoint>> | undefined;
  if (options.resume && hasCheckpoint(checkpointDirectory)) {
    loaded = await loadRunCheckpoint(checkpointDirectory, layersOptions);
    prunable = loaded.model;
    if (loaded.metadata && loaded.metadata.recipeKey !== key) {
      prunable.dispose();
      tf.dispose(Object.values(loaded.state.tensors));
      throw new FinepruneError({
        code: ErrorCodes.CHECKPOINT_MISMATCH,
        message: `The checkpoint in ${checkpointDirectory} was written by a different recipe (model, data, training or plugins differ).`,
        fix: 'Resume with the recipe that started the run, or start afresh without --resume (or remove the checkpoint).',
      });
    }
  } else {
    const model = await loadRecipeModel(recipe.model, { seed: recipe.seed, baseDirectory });
    const inputWidth = model.inputs[0]?.shape[1];
    if (
      model.inputs.length !== 1 ||
      (inputWidth !== undefined && inputWidth !== null && inputWidth !== train.featureSize)
    ) {
      model.dispose();
      throw new FinepruneError({
        code: ErrorCodes.SHAPE_MISMATCH,
        message: `model: the model takes inputs of width ${inputWidth}, the ${recipe.data.dataset} examples have ${train.featureSize} values.`,
        fix: `Use a model whose input is [${train.featureSize}] (for example mlp-${train.featureSize}-300-100-10).`,
        details: { path: 'model' },
      });
    }
    ownedModel = model;
    prunable = fromLayersModel(model, layersOptions);
  }

  const measureCount = Math.min(256, test.count);
  const measureBatch: Batch = tf.tidy(() => {
    const first = evaluationBatches(subset(test, measureCount), measureCount).next().value as Batch;
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
    const metrics = await evaluateClassifier(prunable, evaluationBatches(test, 1000));
    const report = await sparsityReport(prunable.parameters());
    return { step, remaining: 1 - report.sparsity, accuracy: metrics.accuracy, loss: metrics.loss };
  };

  const history: RunHistory = loaded?.metadata?.history
    ? structuredClone(loaded.metadata.history)
    : { evaluations: [], lossChanges: [], seconds: 0 };
  const lastTargets = new Map<string, number | null>(
    (loaded?.state.groups ?? []).map((group) => [group.name, group.lastTarget]),
  );
  const spacing = Math.max(1, Math.floor(totalSteps / 100));
  let lastMeasuredStep = Number.NEGATIVE_INFINITY;
  let pendingBefore: number | undefined;
  let pruner: Pruner | undefined;
  const emit = (event: RunEvent) => options.onEvent?.(event);

  // ΔL at mask updates (Fig. 3 of Revisiting Loss Modelling) and the dense baseline; reads only.
  const measurePlugin: Plugin = {
    id: 'fineprune-cli/measure',
    async onStepStart(context) {
      pendingBefore = undefined;
      const targets = pruner!.targets(context.step);
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

  let prunerCreated: Pruner;
  let resolvedScores: Map<string, ScoreStrategy>;
  try {
    const { groups, lossTerms, hooks } = await resolvePlugins(recipe, registry, {
      seed: recipe.seed,
      totalSteps,
      model: prunable,
      data: source,
      evaluationData: () => evaluationBatches(test, 1000),
      baseDirectory,
    });
    resolvedScores = new Map(groups.map((group) => [group.name ?? 'default', group.scores]));
    prunerCreated = new Pruner({
      model: prunable,
      groups,
      lossTerms,
      plugins: [...hooks, measurePlugin],
      optimizers: {
        weights: makeOptimizer(recipe.training.optimizer),
        ...(recipe.training.scoreOptimizer ? { scores: makeOptimizer(recipe.training.scoreOptimizer) } : {}),
      },
      ...(recipe.training.gradientClipping
        ? { gradientClipping: { maxNorm: recipe.training.gradientClipping } }
        : {}),
      seed: recipe.seed,
    });
  } catch (error) {
    if (loaded) tf.dispose(Object.values(loaded.state.tensors));
    prunable.dispose();
    ownedModel?.dispose();
    tf.dispose([measureBatch.x, measureBatch.y] as tf.TensorContainer);
    throw error;
  }
  pruner = prunerCreated;
  const startedAt = performance.now();
  const secondsSoFar = history.seconds;
  let lastCheckpointStep = -1;
  const checkpoint = async () => {
    if (lastCheckpointStep === pruner!.step && !options.signal?.aborted) return;
    lastCheckpointStep = pruner!.step;
    history.seconds = secondsSoFar + (performance.now() - startedAt) / 1000;
    const metadata: RunCheckpointMetadata = { formatVersion: 1, recipeKey: key, history };
    await saveRunCheckpoint(checkpointDirectory, prunable, pruner!, metadata);
    emit({ type: 'checkpoint', step: pruner!.step, directory: checkpointDirectory });
  };

  try {
    if (loaded) {
      try {
        pruner.loadState(loaded.state);
      } finally {
        tf.dispose(Object.values(loaded.state.tensors));
      }
    }
    const startStep = pruner.step;
    emit({
      type: 'start',
      name: recipe.name,
      backend: backend.backend,
      startStep,
      totalSteps,
      resumed: loaded !== undefined,
      parameters: pruner.pruned().length,
      checkpointDirectory,
      outputDirectory,
    });
    let remaining = 1 - (await sparsityReport(prunable.parameters())).sparsity;
    const every = recipe.checkpoint.every;
    await pruner.run({
      data: source,
      untilStep: totalSteps,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(recipe.training.evaluateEvery > 0
        ? {
            evaluations: [
              {
                every: recipe.training.evaluateEvery,
                evaluate: async (context) => {
                  const point = await evaluate(context.step);
                  history.evaluations.push(point);
                  emit({ type: 'evaluate', point, dense: false });
                  return { accuracy: point.accuracy, loss: point.loss, remaining: point.remaining };
                },
              },
            ],
          }
        : {}),
      onStep: async (result: StepResult) => {
        if (result.masksUpdated) remaining = 1 - (await sparsityReport(prunable.parameters())).sparsity;
        const elapsed = (performance.now() - startedAt) / 1000;
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
        if (every > 0 && result.step % every === 0 && result.step < totalSteps && !options.signal?.aborted) {
          await checkpoint();
        }
      },
    });
    if (pruner.step < totalSteps) {
      await checkpoint();
      emit({ type: 'interrupted', step: pruner.step, checkpointDirectory });
      return { status: 'interrupted', step: pruner.step, outputDirectory, checkpointDirectory };
    }
    const last = history.evaluations.at(-1);
    const finalPoint = last && last.step === totalSteps ? last : await evaluate(totalSteps);
    if (finalPoint !== last) {
      history.evaluations.push(finalPoint);
      emit({ type: 'evaluate', point: finalPoint, dense: false });
    }
    await checkpoint();
    const report = await sparsityReport(prunable.parameters());
    const layers: LayerRow[] = report.parameters.map((row) => ({
      name: row.name,
      group: row.group,
      shape: row.shape,
      total: row.total,
      kept: row.kept,
      sparsity: row.sparsity,
    }));
    const samples: ParameterSample[] = [];
    for (const entry of pruner.pruned()) {
      const weights = await readFloat32(entry.parameter.weight);
      const mask = await readFloat32(entry.parameter.mask);
      let scores: Float32Array;
      let scoreSource: ParameterSample['scoreSource'];
      if (entry.scores) {
        scores = await readFloat32(entry.scores);
        scoreSource = 'learned';
      } else {
        const strategy = resolvedScores.get(entry.group)!;
        const computed = await strategy.compute(
          { parameter: entry.parameter, scores: undefined },
          { step: pruner.step, model: prunable, random: createRandom(0) },
        );
        scores = await readFloat32(computed);
        computed.dispose();
        scoreSource = strategy.id === 'magnitude' ? 'magnitude' : 'computed';
      }
      samples.push(sampleParameter(entry.parameter.name, weights, scores, mask, scoreSource));
    }
    history.seconds = secondsSoFar + (performance.now() - startedAt) / 1000;
    const record: RunRecord = {
      formatVersion: 1,
      name: recipe.name,
      method: methodLabel(recipe),
      backend: backend.backend,
      steps: totalSteps,
      seed: recipe.seed,
      ...history,
      final: { accuracy: finalPoint.accuracy, loss: finalPoint.loss, remaining: 1 - report.sparsity },
      layers,
      samples,
      recipe: toConfig(recipe),
      finishedAt: new Date().toISOString(),
    };
    if (recipe.export.strip) await saveStripped(prunable, fileSystem(path.join(outputDirectory, 'model')));
    if (recipe.export.report) {
      await writeFileAtomic(path.join(outputDirectory, 'run.json'), `${JSON.stringify(record)}\n`);
      await writeFileAtomic(path.join(outputDirectory, 'report.html'), renderHtmlReport([record]));
    }
    emit({ type: 'done', record, outputDirectory });
    return { status: 'completed', step: pruner.step, outputDirectory, checkpointDirectory, record };
  } finally {
    pruner.dispose();
    prunable.dispose();
    ownedModel?.dispose();
    tf.dispose([measureBatch.x, measureBatch.y] as tf.TensorContainer);
  }
}
