import * as tf from '@tensorflow/tfjs-core';
import type { PrunableModel, PrunerState, SPEC_VERSION } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import {
  type FromLayersModelOptions,
  fromLayersModel,
  type LayersPrunableModel,
  ownModel,
} from './from-layers-model';
import { modelFromTopology, modelTopology, type NamedTensor } from './strip';

/**
 * Prefix of the pruner's tensors among a checkpoint's weights.
 *
 * @example
 * ```ts
 * const artifacts = await fileSystem('./checkpoints/run1').load();
 * const prunerTensors = artifacts.weightSpecs!.filter((spec) => spec.name.startsWith(CHECKPOINT_PREFIX));
 * ```
 */
export const CHECKPOINT_PREFIX = 'fineprune/';
/**
 * Version of the checkpoint layout written by {@link saveCheckpoint}.
 *
 * @example
 * ```ts
 * const meta = artifacts.userDefinedMetadata?.fineprune as CheckpointMetadata;
 * if (meta.formatVersion !== CHECKPOINT_FORMAT_VERSION) throw new Error('written by another version');
 * ```
 */
export const CHECKPOINT_FORMAT_VERSION = 1 as const;

/**
 * What a checkpoint stores in `userDefinedMetadata.fineprune`.
 *
 * @example
 * ```ts
 * const artifacts = await fileSystem('./checkpoints/step-1000').load();
 * const meta = artifacts.userDefinedMetadata?.fineprune as CheckpointMetadata;
 * console.log(meta.step, meta.parameters.map((parameter) => parameter.name));
 * ```
 */
export interface CheckpointMetadata {
  formatVersion: typeof CHECKPOINT_FORMAT_VERSION;
  /** The PrunableModel spec version of the pruner state. */
  specVersion: number;
  /** Steps completed when the checkpoint was saved. */
  step: number;
  /** State of the run's random source. */
  random: number[];
  /** Every pruning group with the target its masks were last selected for. */
  groups: Array<{ name: string; lastTarget: number | null }>;
  /** Every prunable parameter of the model, with its shape. */
  parameters: Array<{ name: string; shape: number[] }>;
}

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
    parameters: parameters.map((parameter) => ({ name: parameter.name, shape: [...parameter.shape] })),
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

function readMetadata(artifacts: tf.io.ModelArtifacts): CheckpointMetadata {
  const metadata = (artifacts.userDefinedMetadata as Record<string, unknown> | undefined)?.fineprune as
    | Partial<CheckpointMetadata>
    | undefined;
  if (!metadata || typeof metadata !== 'object') {
    throw mismatch(
      'This is not a fineprune checkpoint: its userDefinedMetadata has no "fineprune" entry.',
      'Load checkpoints written by saveCheckpoint(); load a stripped model with tf.loadLayersModel().',
    );
  }
  if (metadata.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw mismatch(
      `The checkpoint has format version ${metadata.formatVersion}; this version of @fineprune/layers reads version ${CHECKPOINT_FORMAT_VERSION}.`,
      'Load it with the version of @fineprune/layers that saved it.',
    );
  }
  const valid =
    Number.isInteger(metadata.step) &&
    (metadata.step ?? -1) >= 0 &&
    Array.isArray(metadata.random) &&
    Array.isArray(metadata.groups) &&
    Array.isArray(metadata.parameters);
  if (!valid) {
    throw corrupt(
      'The checkpoint metadata (userDefinedMetadata.fineprune) lacks step, random, groups or parameters.',
      'Save the checkpoint again.',
    );
  }
  return metadata as CheckpointMetadata;
}

/**
 * Loads a checkpoint written by {@link saveCheckpoint}: rebuilds the model from its topology,
 * wraps it with {@link fromLayersModel} (pass the options used when saving), assigns the raw weights
 * by name and the saved masks to its parameters. Then build the same `Pruner` on the returned model
 * and call `pruner.loadState(state)`; dispose `state.tensors` afterwards. The returned wrapper owns
 * the model it built: its `dispose()` disposes the model too (`unwrap()` hands it to you instead).
 *
 * @param handler - an IOHandler such as {@link fileSystem}, or a URL TF.js knows
 * @param options - the options of {@link fromLayersModel}, as when the checkpoint was saved
 * @returns the model and the pruner state
 * @throws FinepruneError `CHECKPOINT_MISMATCH` when a mask names no parameter of the model or its
 *   shape differs from its weight's, or the checkpoint is not a fineprune checkpoint;
 *   `CHECKPOINT_CORRUPT` when files are damaged or incomplete
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
  options: FromLayersModelOptions,
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
  const metadata = readMetadata(artifacts);
  let decoded: tf.NamedTensorMap;
  try {
    decoded = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  } catch (error) {
    throw corrupt(
      `The checkpoint's weights cannot be decoded: ${(error as Error).message}`,
      'The weights data is truncated or damaged; restore the checkpoint or save it again.',
      error,
    );
  }
  const tensors: Record<string, tf.Tensor> = {};
  const weights = new Map<string, tf.Tensor>();
  for (const [name, tensor] of Object.entries(decoded)) {
    if (name.startsWith(CHECKPOINT_PREFIX)) tensors[name.slice(CHECKPOINT_PREFIX.length)] = tensor;
    else weights.set(name, tensor);
  }
  let prunable: LayersPrunableModel | undefined;
  let model: Awaited<ReturnType<typeof modelFromTopology>> | undefined;
  try {
    model = await modelFromTopology(artifacts.modelTopology);
    prunable = fromLayersModel(model, options);
    ownModel(prunable);
    for (const { name, variable } of prunable.variables()) {
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
      if (!tf.util.arraysEqual(value.shape, variable.shape)) {
        throw mismatch(
          `The checkpoint's "${name}" has shape [${value.shape}] but the model's weight has shape [${variable.shape}].`,
          'Load a checkpoint saved from this model.',
          { weight: name, savedShape: value.shape, weightShape: variable.shape },
        );
      }
      variable.assign(value);
    }
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
    for (const [key, mask] of masks) {
      tf.tidy(() => parameters.get(key.slice('mask/'.length))!.mask.assign(tf.cast(mask, 'float32')));
    }
  } catch (error) {
    tf.dispose(Object.values(tensors));
    if (prunable) prunable.dispose();
    else model?.dispose();
    throw error;
  } finally {
    tf.dispose([...weights.values()]);
  }
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
}
