import { ErrorCodes, FinepruneError, type PrunerState } from '@fineprune/core';
import { type FromLayersModelOptions, fromLayersModel, type LayersPrunableModel } from '@fineprune/layers';
import { type Recipe, toConfig, toParameterSelector } from '@fineprune/recipes';
import type { BertModel } from '@fineprune/transformers';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { hasCheckpoint, loadRunCheckpoint, type RunCheckpointMetadata } from './checkpoint';
import { type ModelSource, modelSourceOf, parseModelSource } from './model-source';
import { type LayersModelSection, loadRecipeModel } from './models';
import type { RunData } from './run-data';
import type { ExportTarget } from './run-export';
import { hasBertRunCheckpoint, openBertModel, resumeBertModel } from './run-model-bert';

/**
 * What a checkpoint held, when the run resumes: the pruner state and the run metadata.
 *
 * @example
 * ```ts
 * if (opened.resumed) pruner.loadState(opened.resumed.state);
 * ```
 */
export interface ResumedState {
  state: PrunerState;
  metadata: RunCheckpointMetadata | undefined;
}

/**
 * The model a run trains: fresh from the recipe, or restored from its checkpoint with the pruner
 * state and run metadata to continue from. A TF.js layers model (`builtin`, `path`, `module`) or a
 * BERT encoder (`huggingFace`).
 *
 * @example
 * ```ts
 * const opened = await openRunModel(recipe, { baseDirectory, checkpointDirectory, resume: true, data });
 * opened.prunable.parameters();
 * ```
 */
export type RunModel = (
  | {
      kind: 'layers';
      prunable: LayersPrunableModel;
      /** The layers model this run built (disposed with it); undefined when restored from a checkpoint. */
      ownedModel: tfl.LayersModel | undefined;
    }
  | { kind: 'bert'; prunable: BertModel }
) & {
  resumed: ResumedState | undefined;
  /** The recipe's identity, stored in checkpoints (see {@link recipeKey}). */
  key: string;
  /** The model file the run started from (size and storage), when it came from one. */
  source: ModelSource | undefined;
};

/**
 * The recipe's identity in checkpoints: its config without the settings that may change between a
 * run and its resume without changing what is computed (export, checkpoint, description, schema,
 * evaluation spacing and metrics, best-model keeping, the divergence guard).
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
  delete training.metrics;
  delete training.keepBest;
  return JSON.stringify({ ...rest, training });
}

function layersOptions(recipe: Recipe, section: LayersModelSection): FromLayersModelOptions {
  return {
    loss: section.loss,
    ...(section.fromLogits !== undefined ? { fromLogits: section.fromLogits } : {}),
    ...(recipe.parameters.include ? { include: toParameterSelector(recipe.parameters.include) } : {}),
    ...(recipe.parameters.exclude ? { exclude: toParameterSelector(recipe.parameters.exclude) } : {}),
    ...(recipe.parameters.frozen ? { freeze: toParameterSelector(recipe.parameters.frozen) } : {}),
  };
}

function shapeMismatch(message: string, fix: string, details: Record<string, unknown> = {}): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.SHAPE_MISMATCH,
    message,
    fix,
    details: { path: 'model', ...details },
  });
}

/**
 * Throws SHAPE_MISMATCH unless the layers model takes one input as wide as an example (when the
 * data says how wide) and has one output with a column per class; text data needs a BERT model.
 */
function checkModelFitsData(model: tfl.LayersModel, data: RunData): void {
  if (data.kind === 'text')
    throw shapeMismatch(
      `model: ${data.name} is text (token ids), which a TF.js layers model does not read.`,
      'Give model.huggingFace: a BERT folder (config.json + model.safetensors) for text data.',
    );
  const width = data.featureSize;
  const inputWidth = model.inputs[0]?.shape[1];
  if (
    model.inputs.length !== 1 ||
    (width !== undefined && inputWidth !== undefined && inputWidth !== null && inputWidth !== width)
  ) {
    throw shapeMismatch(
      `model: the model takes inputs of width ${inputWidth}, the ${data.name} examples have ${width} values.`,
      `Use a model whose input is [${width}] (for example mlp-${width}-300-100-10; a convolutional model starts with a reshape layer).`,
    );
  }
  const outputWidth = model.outputs[0]?.shape.at(-1);
  if (model.outputs.length !== 1 || outputWidth !== data.classes) {
    throw shapeMismatch(
      `model: the model has ${model.outputs.length === 1 ? `${outputWidth ?? 'an unknown number of'} outputs` : `${model.outputs.length} output tensors`}, the ${data.name} task has ${data.classes} classes.`,
      `Use a model with one output of ${data.classes} values, one per class (for example mlp-${width ?? 784}-300-100-${data.classes}).`,
      { outputs: outputWidth ?? null, classes: data.classes },
    );
  }
}

function checkpointMismatch(checkpointDirectory: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.CHECKPOINT_MISMATCH,
    message: `The checkpoint in ${checkpointDirectory} was written by a different recipe (model, data, training or plugins differ).`,
    fix: 'Resume with the recipe that started the run, or start afresh without --resume (or remove the checkpoint).',
  });
}

async function resumeLayersModel(
  recipe: Recipe,
  section: LayersModelSection,
  checkpointDirectory: string,
  key: string,
): Promise<RunModel> {
  const loaded = await loadRunCheckpoint(checkpointDirectory, layersOptions(recipe, section));
  if (loaded.metadata && loaded.metadata.recipeKey !== key) {
    loaded.model.dispose();
    tf.dispose(Object.values(loaded.state.tensors));
    throw checkpointMismatch(checkpointDirectory);
  }
  return {
    kind: 'layers',
    prunable: loaded.model,
    ownedModel: undefined,
    resumed: { state: loaded.state, metadata: loaded.metadata },
    key,
    source: parseModelSource(loaded.metadata?.source),
  };
}

/**
 * Opens the model of a run: with `resume` and a checkpoint present, the checkpoint (refused when
 * another recipe wrote it); otherwise the recipe's model, checked against the data — a layers model
 * wrapped with `fromLayersModel`, or a BERT folder with a classification head of one output per
 * label.
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
  const section = recipe.model;
  if ('huggingFace' in section) {
    if (options.resume && hasBertRunCheckpoint(options.checkpointDirectory)) {
      const resumed = await resumeBertModel(options.checkpointDirectory, options.data);
      if (resumed.metadata && resumed.metadata.recipeKey !== key) {
        resumed.model.dispose();
        tf.dispose(Object.values(resumed.state.tensors));
        throw checkpointMismatch(options.checkpointDirectory);
      }
      return {
        kind: 'bert',
        prunable: resumed.model,
        resumed: { state: resumed.state, metadata: resumed.metadata },
        key,
        source: undefined,
      };
    }
    const model = await openBertModel(recipe, section, {
      baseDirectory: options.baseDirectory,
      data: options.data,
    });
    return { kind: 'bert', prunable: model, resumed: undefined, key, source: undefined };
  }
  if (options.resume && hasCheckpoint(options.checkpointDirectory)) {
    return resumeLayersModel(recipe, section, options.checkpointDirectory, key);
  }
  const model = await loadRecipeModel(section, { seed: recipe.seed, baseDirectory: options.baseDirectory });
  try {
    checkModelFitsData(model, options.data);
    return {
      kind: 'layers',
      prunable: fromLayersModel(model, layersOptions(recipe, section)),
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

/**
 * The model of a run as an export writer takes it.
 *
 * @example
 * ```ts
 * await exportRunModel(recipe, exportTargetOf(opened, recipe.export.dtype), 'out/run/model');
 * ```
 */
export function exportTargetOf(model: RunModel, dtype: 'F32' | 'F16'): ExportTarget {
  return model.kind === 'bert'
    ? { kind: 'bert', model: model.prunable, dtype }
    : { kind: 'layers', model: model.prunable, dtype, source: model.source };
}

/**
 * Frees the model of a run (and the layers model it built).
 *
 * @example
 * ```ts
 * disposeRunModel(opened);
 * ```
 */
export function disposeRunModel(model: RunModel): void {
  model.prunable.dispose();
  if (model.kind === 'layers') model.ownedModel?.dispose();
}
