import { ErrorCodes, FinepruneError, type PrunerState } from '@fineprune/core';
import { type FromLayersModelOptions, fromLayersModel, type LayersPrunableModel } from '@fineprune/layers';
import { type Recipe, toConfig, toParameterSelector } from '@fineprune/recipes';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { hasCheckpoint, loadRunCheckpoint, type RunCheckpointMetadata } from './checkpoint';
import { type ModelSource, modelSourceOf, parseModelSource } from './model-source';
import { loadRecipeModel } from './models';
import type { RunData } from './run-data';

/**
 * The model a run trains: fresh from the recipe, or restored from its checkpoint with the pruner
 * state and run metadata to continue from.
 *
 * @example
 * ```ts
 * const { prunable, resumed } = await openRunModel(recipe, { baseDirectory, checkpointDirectory, resume: true, data });
 * ```
 */
export interface RunModel {
  prunable: LayersPrunableModel;
  /** The layers model this run built (disposed with it); undefined when restored from a checkpoint. */
  ownedModel: tfl.LayersModel | undefined;
  /** What the checkpoint held, when the run resumes. */
  resumed: { state: PrunerState; metadata: RunCheckpointMetadata | undefined } | undefined;
  /** The recipe's identity, stored in checkpoints (see {@link recipeKey}). */
  key: string;
  /** The model file the run started from (size and storage), when it came from one. */
  source: ModelSource | undefined;
}

/**
 * The recipe's identity in checkpoints: its config without the settings that may change between a
 * run and its resume without changing what is computed (export, checkpoint, description, schema,
 * evaluation spacing, the divergence guard).
 *
 * @example
 * ```ts
 * if (metadata.recipeKey !== recipeKey(recipe)) throw new Error('another recipe');
 * ```
 */
export function recipeKey(recipe: Recipe): string {
  const {
    export: _export,
    checkpoint: _checkpoint,
    description: _description,
    $schema: _schema,
    ...rest
  } = toConfig(recipe) as Record<string, unknown>;
  const training = { ...(rest.training as Record<string, unknown>) };
  delete training.evaluateEvery;
  delete training.divergenceGuard;
  return JSON.stringify({ ...rest, training });
}

function layersOptions(recipe: Recipe): FromLayersModelOptions {
  return {
    loss: recipe.model.loss,
    ...(recipe.model.fromLogits !== undefined ? { fromLogits: recipe.model.fromLogits } : {}),
    ...(recipe.parameters.include ? { include: toParameterSelector(recipe.parameters.include) } : {}),
    ...(recipe.parameters.exclude ? { exclude: toParameterSelector(recipe.parameters.exclude) } : {}),
    ...(recipe.parameters.frozen ? { freeze: toParameterSelector(recipe.parameters.frozen) } : {}),
  };
}

/**
 * Throws SHAPE_MISMATCH unless the model takes one input as wide as an example and has one output
 * with a column per class.
 */
function checkModelFitsData(model: tfl.LayersModel, recipe: Recipe, data: RunData): void {
  const inputWidth = model.inputs[0]?.shape[1];
  if (
    model.inputs.length !== 1 ||
    (inputWidth !== undefined && inputWidth !== null && inputWidth !== data.train.featureSize)
  ) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `model: the model takes inputs of width ${inputWidth}, the ${recipe.data.dataset} examples have ${data.train.featureSize} values.`,
      fix: `Use a model whose input is [${data.train.featureSize}] (for example mlp-${data.train.featureSize}-300-100-10).`,
      details: { path: 'model' },
    });
  }
  const outputWidth = model.outputs[0]?.shape.at(-1);
  if (model.outputs.length !== 1 || outputWidth !== data.classes) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `model: the model has ${model.outputs.length === 1 ? `${outputWidth ?? 'an unknown number of'} outputs` : `${model.outputs.length} output tensors`}, the ${recipe.data.dataset} task has ${data.classes} classes.`,
      fix: `Use a model with one output of ${data.classes} values, one per class (for example mlp-${data.train.featureSize}-300-100-${data.classes}).`,
      details: { path: 'model', outputs: outputWidth ?? null, classes: data.classes },
    });
  }
}

async function resumeRunModel(recipe: Recipe, checkpointDirectory: string, key: string): Promise<RunModel> {
  const loaded = await loadRunCheckpoint(checkpointDirectory, layersOptions(recipe));
  if (loaded.metadata && loaded.metadata.recipeKey !== key) {
    loaded.model.dispose();
    tf.dispose(Object.values(loaded.state.tensors));
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `The checkpoint in ${checkpointDirectory} was written by a different recipe (model, data, training or plugins differ).`,
      fix: 'Resume with the recipe that started the run, or start afresh without --resume (or remove the checkpoint).',
    });
  }
  return {
    prunable: loaded.model,
    ownedModel: undefined,
    resumed: { state: loaded.state, metadata: loaded.metadata },
    key,
    source: parseModelSource(loaded.metadata?.source),
  };
}

/**
 * Opens the model of a run: with `resume` and a checkpoint present, the checkpoint (refused when
 * another recipe wrote it); otherwise the recipe's model, checked against the data, wrapped with
 * `fromLayersModel`.
 *
 * @throws FinepruneError `CHECKPOINT_MISMATCH`, `SHAPE_MISMATCH`, or the model loader's errors
 *
 * @example
 * ```ts
 * const opened = await openRunModel(recipe, { baseDirectory: '.', checkpointDirectory: 'out/x/checkpoint', resume: false, data });
 * ```
 */
export async function openRunModel(
  recipe: Recipe,
  options: { baseDirectory: string; checkpointDirectory: string; resume: boolean; data: RunData },
): Promise<RunModel> {
  const key = recipeKey(recipe);
  if (options.resume && hasCheckpoint(options.checkpointDirectory)) {
    return resumeRunModel(recipe, options.checkpointDirectory, key);
  }
  const model = await loadRecipeModel(recipe.model, {
    seed: recipe.seed,
    baseDirectory: options.baseDirectory,
  });
  try {
    checkModelFitsData(model, recipe, options.data);
    return {
      prunable: fromLayersModel(model, layersOptions(recipe)),
      ownedModel: model,
      resumed: undefined,
      key,
      source: modelSourceOf(model),
    };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
