import * as tf from '@tensorflow/tfjs-core';
import type { PrunableModel, PrunerState, SPEC_VERSION } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import {
  type FromLayersModelOptions,
  fromLayersModel,
  type LayersPrunableModel,
  ownModel,
} from './from-layers-model';
import {
  CHECKPOINT_FORMAT_VERSION,
  CHECKPOINT_PREFIX,
  type CheckpointMetadata,
  type DecodeSavedModelOptions,
  decodeSavedModel,
} from './checkpoint-contents';
import { modelFromTopology, modelTopology, type NamedTensor } from './strip';

/**
 * What {@link saveCheckpoint} needs of a pruner: a `Pruner` from `@fineprune/core` fits.
 *
 * @example
 * ```ts
 * const source: PrunerStateSource = pruner;
 * ```
 */
export interface PrunerStateSource {
  /** The model the pruner prunes; when present it must be the model being saved. */
  readonly model?: PrunableModel;
  exportState(options?: { includeVariables?: boolean }): PrunerState;
}

/**
 * What {@link loadCheckpoint} returns: the wrapped model (weights and masks restored) and the
 * pruner state to pass to `pruner.loadState()`. The caller owns `state.tensors` and disposes them
 * after loading them.
 *
 * @example
 * ```ts
 * const { model, state }: LoadedCheckpoint = await loadCheckpoint(fileSystem(dir), { loss: 'meanSquaredError' });
 * ```
 */
export interface LoadedCheckpoint {
  model: LayersPrunableModel;
  state: PrunerState;
}

function mismatch(message: string, fix: string, details?: Record<string, unknown>): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.CHECKPOINT_MISMATCH,
    message,
    fix,
    ...(details ? { details } : {}),
  });
}

function corrupt(message: string, fix: string, cause?: unknown): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.CHECKPOINT_CORRUPT,
    message,
    fix,
    ...(cause !== undefined ? { cause } : {}),
  });
}

function saveHandler(handler: tf.io.IOHandler | string): tf.io.IOHandler {
  if (typeof handler !== 'string') return handler;
  const handlers = tf.io.getSaveHandlers(handler);
  if (handlers.length !== 1) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `No single TF.js save handler accepts the URL "${handler}".`,
      fix: "Pass an IOHandler such as fileSystem('./checkpoints/run1').",
    });
  }
  return handlers[0]!;
}

function loadHandler(handler: tf.io.IOHandler | string): tf.io.IOHandler {
  if (typeof handler !== 'string') return handler;
  const handlers = tf.io.getLoadHandlers(handler);
  if (handlers.length !== 1) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `No single TF.js load handler accepts the URL "${handler}".`,
      fix: "Pass an IOHandler such as fileSystem('./checkpoints/run1').",
    });
  }
  return handlers[0]!;
}

/**
 * Saves everything needed to continue a pruning run: the model's topology, its raw weights (named
 * as the model's weights, so the same topology loads them), the pruner's state (masks of every
 * parameter, learned scores, optimizer slots) under the `fineprune/` prefix, and
 * {@link CheckpointMetadata} in `userDefinedMetadata.fineprune`. The format is the TF.js
 * layers-model format; stock TF.js loads the raw (unmasked) model with
 * `tf.loadLayersModel(…, { strict: false })`.
 *
 * @param prunable - the wrapped model
 * @param pruner - the pruner running on it
 * @param handler - an IOHandler such as {@link fileSystem}, or a URL TF.js knows
 * @returns what the handler reports
 * @throws FinepruneError `INVALID_ARGUMENT` when the pruner prunes another model
 *
 * @example
 * ```ts
 * await pruner.run({ data, untilStep: 1000 });
 * await saveCheckpoint(prunable, pruner, fileSystem('./checkpoints/run1'));
 * ```
 */
export async function saveCheckpoint(
  prunable: LayersPrunableModel,
  pruner: PrunerStateSource,
  handler: tf.io.IOHandler | string,
): Promise<tf.io.SaveResult> {
  const parameters = prunable.parameters(); // throws DISPOSED after unwrap()
  if (pruner.model !== undefined && pruner.model !== prunable) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The pruner prunes model "${pruner.model.name}", not "${prunable.name}".`,
      fix: 'Pass the model and the pruner that runs on it.',
    });
  }
  const target = saveHandler(handler);
  if (typeof target.save !== 'function') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'The handler given to saveCheckpoint() cannot save.',
      fix: "Pass an IOHandler with a save() method, such as fileSystem('./checkpoints/run1').",
    });
  }
  const save = target.save.bind(target);
  const state = pruner.exportState();
  let encoded: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] };
  const maskKinds = new Map<string, 'binary' | 'fractional'>();
  try {
    const named: NamedTensor[] = prunable
      .variables()
      .map(({ name, variable }) => ({ name, tensor: variable }));
    for (const parameter of parameters) {
      // Masks of parameters that no pruning group covers are saved too, so the model loads as it was.
      if (!state.tensors[`mask/${parameter.name}`])
        named.push({ name: `${CHECKPOINT_PREFIX}mask/${parameter.name}`, tensor: parameter.mask });
    }
    for (const [key, tensor] of Object.entries(state.tensors))
      named.push({ name: `${CHECKPOINT_PREFIX}${key}`, tensor });
    const seen = new Set<string>();
    for (const { name } of named) {
      if (seen.has(name)) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: `Two tensors of the checkpoint are named "${name}".`,
          fix: `Rename the model's weights so that none starts with "${CHECKPOINT_PREFIX}".`,
        });
      }
      seen.add(name);
    }
    for (const parameter of parameters) {
      const mask = state.tensors[`mask/${parameter.name}`] ?? parameter.mask;
      const values = await mask.data();
      maskKinds.set(
        parameter.name,
        values.every((value) => value === 0 || value === 1) ? 'binary' : 'fractional',
      );
    }
    encoded = await tf.io.encodeWeights(named);
  } finally {
    tf.dispose(Object.values(state.tensors));
  }
  const metadata: CheckpointMetadata = {
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    specVersion: state.specVersion,
    step: state.step,
    random: [...state.random],
    groups: state.groups.map((group) => ({ name: group.name, lastTarget: group.lastTarget })),
    parameters: parameters.map((parameter) => ({
      name: parameter.name,
      shape: [...parameter.shape],
      mask: maskKinds.get(parameter.name)!,
    })),
  };
  return save({
    modelTopology: modelTopology(prunable.model) as unknown as object,
    format: 'layers-model',
    generatedBy: 'fineprune (@fineprune/layers)',
    convertedBy: null,
    weightSpecs: encoded.specs,
    weightData: encoded.data,
    userDefinedMetadata: { fineprune: metadata as unknown as object },
  });
}

/**
 * Options of {@link loadCheckpoint}: those of {@link fromLayersModel} (as when the checkpoint was
 * saved) and `allowUnverified` for version-1 checkpoints.
 *
 * @example
 * ```ts
 * const options: LoadCheckpointOptions = { loss: 'sparseCategoricalCrossentropy', allowUnverified: true };
 * ```
 */
export interface LoadCheckpointOptions extends FromLayersModelOptions {
  /** See {@link DecodeSavedModelOptions.allowUnverified}. Default false. */
  allowUnverified?: boolean;
}

/** How errors name the checkpoint a handler reads. */
function sourceOf(handler: tf.io.IOHandler | string): string {
  if (typeof handler === 'string') return handler;
  const directory = (handler as { directory?: unknown }).directory;
  return typeof directory === 'string' ? `the checkpoint ${directory}` : 'the checkpoint';
}

/** Assigns the checkpoint's weights to the model's variables, by name, after checking each. */
function assignWeights(prunable: LayersPrunableModel, weights: ReadonlyMap<string, tf.Tensor>): void {
  const checked = prunable.variables().map(({ name, variable }) => {
    const value = weights.get(name);
    if (!value) {
      throw mismatch(
        `The checkpoint has no value for the model weight "${name}".`,
        'Load a checkpoint saved from this model.',
        {
          weight: name,
        },
      );
    }
    if (!tf.util.arraysEqual(value.shape, variable.shape) || value.dtype !== variable.dtype) {
      throw mismatch(
        `The checkpoint's "${name}" is ${value.dtype} [${value.shape}] but the model's weight is ${variable.dtype} [${variable.shape}].`,
        'Load a checkpoint saved from this model.',
        { weight: name, savedShape: value.shape, weightShape: variable.shape, savedDtype: value.dtype },
      );
    }
    return { variable, value };
  });
  for (const { variable, value } of checked) variable.assign(value);
}

/** Assigns the saved masks to the model's parameters, after checking that each fits one. */
function assignMasks(prunable: LayersPrunableModel, tensors: Record<string, tf.Tensor>): void {
  const parameters = new Map(prunable.parameters().map((parameter) => [parameter.name, parameter]));
  const masks = Object.entries(tensors).filter(([key]) => key.startsWith('mask/'));
  for (const [key, mask] of masks) {
    const name = key.slice('mask/'.length);
    const parameter = parameters.get(name);
    if (!parameter) {
      throw mismatch(
        `The checkpoint has a mask for "${name}", which is not a prunable parameter of the loaded model (its parameters: ${[...parameters.keys()].join(', ')}).`,
        'Pass the same include / exclude options to loadCheckpoint() as to fromLayersModel() when the checkpoint was saved.',
        { parameter: name },
      );
    }
    if (!tf.util.arraysEqual(mask.shape, [...parameter.shape])) {
      throw mismatch(
        `A saved model whose masks do not match its weights: the mask of "${name}" has shape [${mask.shape}] but the weight has shape [${parameter.shape}].`,
        'The checkpoint was assembled from different models; save it again from one model and its pruner.',
        { parameter: name, maskShape: mask.shape, weightShape: [...parameter.shape] },
      );
    }
  }
  for (const [key, mask] of masks) parameters.get(key.slice('mask/'.length))!.mask.assign(mask);
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint}: rebuilds the model from its topology,
 * wraps it with {@link fromLayersModel} (pass the options used when saving), assigns the raw weights
 * by name and the saved masks to its parameters. Then build the same `Pruner` on the returned model
 * and call `pruner.loadState(state)`; dispose `state.tensors` afterwards. The returned wrapper owns
 * the model it built: its `dispose()` disposes the model too (`unwrap()` hands it to you instead).
 *
 * Everything is checked before the model is built ({@link decodeSavedModel}): the metadata, every
 * weight finite and of the model's dtype, every mask within [0, 1] (exactly 0 or 1 where it was
 * saved binary), scores and optimizer slots finite. Through {@link fileSystem} the content hashes
 * are verified too, so a flipped byte or an edited step is an error, never a silent resume.
 * Version-1 checkpoints (without hashes) load only with `allowUnverified: true`.
 *
 * @param handler - an IOHandler such as {@link fileSystem}, or a URL TF.js knows
 * @param options - the options of {@link fromLayersModel}, as when the checkpoint was saved, and
 *   `allowUnverified`
 * @returns the model and the pruner state
 * @throws FinepruneError `CHECKPOINT_MISMATCH` when a mask names no parameter of the model or its
 *   shape differs from its weight's, a weight's shape or dtype differs, the checkpoint is not a
 *   fineprune checkpoint or is of version 1 without `allowUnverified`; `CHECKPOINT_CORRUPT` naming
 *   the file and the entry when files are damaged, edited or incomplete or hold values a
 *   checkpoint cannot (NaN weights, a mask entry of 2)
 *
 * @example
 * ```ts
 * const { model: prunable, state } = await loadCheckpoint(fileSystem('./checkpoints/run1'), { loss: 'sparseCategoricalCrossentropy' });
 * const pruner = new Pruner({ model: prunable, scores, mask, schedule, optimizers: { weights: adam({ learningRate: 1e-3 }) } });
 * pruner.loadState(state);
 * tf.dispose(Object.values(state.tensors));
 * await pruner.run({ data, untilStep: 6000 });
 * ```
 */
export async function loadCheckpoint(
  handler: tf.io.IOHandler | string,
  options: LoadCheckpointOptions,
): Promise<LoadedCheckpoint> {
  const source = loadHandler(handler);
  if (typeof source.load !== 'function') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'The handler given to loadCheckpoint() cannot load.',
      fix: "Pass an IOHandler with a load() method, such as fileSystem('./checkpoints/run1').",
    });
  }
  let artifacts: tf.io.ModelArtifacts;
  try {
    artifacts = await source.load();
  } catch (error) {
    if (FinepruneError.is(error)) throw error;
    throw corrupt(
      `The checkpoint cannot be read: ${(error as Error).message}`,
      'Check the location and save again.',
      error,
    );
  }
  if (artifacts.modelTopology == null || artifacts.weightSpecs == null || artifacts.weightData == null) {
    throw corrupt(
      'The checkpoint has no model topology or no weights.',
      'Save the checkpoint again with saveCheckpoint().',
    );
  }
  const { allowUnverified, ...layersOptions } = options;
  const decodeOptions: DecodeSavedModelOptions = {
    source: sourceOf(handler),
    ...(allowUnverified !== undefined ? { allowUnverified } : {}),
  };
  const { metadata, weights, pruner: tensors } = await decodeSavedModel(artifacts, decodeOptions);
  let prunable: LayersPrunableModel | undefined;
  let model: Awaited<ReturnType<typeof modelFromTopology>> | undefined;
  try {
    if (!metadata) {
      throw mismatch(
        'This is not a fineprune checkpoint: its userDefinedMetadata has no "fineprune" entry.',
        'Load checkpoints written by saveCheckpoint(); load a stripped model with tf.loadLayersModel().',
      );
    }
    model = await modelFromTopology(artifacts.modelTopology);
    prunable = fromLayersModel(model, layersOptions);
    ownModel(prunable);
    assignWeights(prunable, weights);
    assignMasks(prunable, tensors);
    return {
      model: prunable,
      state: {
        specVersion: metadata.specVersion as typeof SPEC_VERSION,
        step: metadata.step,
        random: [...metadata.random],
        groups: metadata.groups.map((group) => ({ name: group.name, lastTarget: group.lastTarget })),
        tensors,
      },
    };
  } catch (error) {
    tf.dispose(Object.values(tensors));
    if (prunable) prunable.dispose();
    else model?.dispose();
    throw error;
  } finally {
    tf.dispose([...weights.values()]);
  }
}
