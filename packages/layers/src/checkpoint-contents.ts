/**
 * The contents of a saved model or checkpoint, decoded and checked as untrusted data: the
 * checkpoint metadata field by field, every weight's dtype and finiteness, masks within [0, 1]
 * (exactly 0 or 1 where the checkpoint says they are binary), scores and optimizer slots finite.
 * Shared by {@link loadCheckpoint} and by readers that only inspect a file (the CLI's report).
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quote, SEALED_CHECKPOINT_VERSION } from './model-json';

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
 * Version of the checkpoint layout written by {@link saveCheckpoint}. Version 2 added content
 * hashes (written and verified by {@link fileSystem}) and each parameter's mask kind; version 1
 * checkpoints load only with `allowUnverified: true`.
 *
 * @example
 * ```ts
 * const meta = artifacts.userDefinedMetadata?.fineprune as CheckpointMetadata;
 * if (meta.formatVersion !== CHECKPOINT_FORMAT_VERSION) throw new Error('written by another version');
 * ```
 */
export const CHECKPOINT_FORMAT_VERSION = SEALED_CHECKPOINT_VERSION;

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
  /** {@link CHECKPOINT_FORMAT_VERSION} when written; 1 for an older checkpoint loaded with `allowUnverified`. */
  formatVersion: typeof CHECKPOINT_FORMAT_VERSION | 1;
  /** The PrunableModel spec version of the pruner state. */
  specVersion: number;
  /** Steps completed when the checkpoint was saved. */
  step: number;
  /** State of the run's random source. */
  random: number[];
  /** Every pruning group with the target its masks were last selected for. */
  groups: Array<{ name: string; lastTarget: number | null }>;
  /**
   * Every prunable parameter of the model, with its shape and whether its mask is `binary` (only 0
   * and 1) or `fractional` (values in [0, 1], as the hard-concrete mask of L0 writes); version-1
   * checkpoints do not record the mask kind.
   */
  parameters: Array<{ name: string; shape: number[]; mask?: 'binary' | 'fractional' }>;
}

/**
 * Options of {@link decodeSavedModel} and {@link loadCheckpoint}.
 *
 * @example
 * ```ts
 * decodeSavedModel(artifacts, { source: 'out/run/checkpoint/model.json', allowUnverified: true });
 * ```
 */
export interface DecodeSavedModelOptions {
  /** How errors name the file (default `'the checkpoint'`). */
  source?: string;
  /**
   * Accept version-1 checkpoints, written before checkpoints carried content hashes and mask
   * kinds; their values are still checked (finite, masks in [0, 1]). Default false.
   */
  allowUnverified?: boolean;
}

/**
 * A saved model decoded and checked by {@link decodeSavedModel}. The caller owns the tensors.
 *
 * @example
 * ```ts
 * const saved: DecodedSavedModel = decodeSavedModel(artifacts);
 * tf.dispose([...saved.weights.values(), ...Object.values(saved.pruner)]);
 * ```
 */
export interface DecodedSavedModel {
  /** The checkpoint metadata; undefined for a plain model (an export). */
  metadata: CheckpointMetadata | undefined;
  /** The model's weights by name. */
  weights: Map<string, tf.Tensor>;
  /** The pruner's tensors by key without the `fineprune/` prefix (`mask/…`, `scores/…`, `optimizer/…`). */
  pruner: Record<string, tf.Tensor>;
}

const REBUILD_FIX = 'Restore the checkpoint from a backup, or save it again from the model and its pruner.';

function corrupt(message: string, details: Record<string, unknown>, fix = REBUILD_FIX): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.CHECKPOINT_CORRUPT, message, fix, details });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isShape(value: unknown): value is number[] {
  return (
    Array.isArray(value) &&
    value.length <= 32 &&
    value.every((dimension) => Number.isSafeInteger(dimension) && dimension >= 0)
  );
}

function checkRandom(random: unknown, source: string): void {
  const valid =
    Array.isArray(random) &&
    random.length === 4 &&
    random.every((word) => Number.isInteger(word) && word >= 0 && word < 2 ** 32) &&
    random.some((word) => word !== 0);
  if (!valid)
    throw corrupt(`${source} has a random state that is not four 32-bit words (not all zero).`, {
      file: source,
      entry: 'random',
    });
}

function checkGroups(groups: unknown, source: string): void {
  if (!Array.isArray(groups))
    throw corrupt(`${source} has no array of pruning groups in its metadata.`, {
      file: source,
      entry: 'groups',
    });
  for (const [index, group] of groups.entries()) {
    const target = isPlainObject(group) ? group.lastTarget : undefined;
    const valid =
      isPlainObject(group) &&
      typeof group.name === 'string' &&
      (target === null || (typeof target === 'number' && Number.isFinite(target)));
    if (!valid)
      throw corrupt(`${source} has a pruning group (groups[${index}]) that is not { name, lastTarget }.`, {
        file: source,
        entry: `groups[${index}]`,
      });
  }
}

function checkParameters(parameters: unknown, source: string, version: number): void {
  if (!Array.isArray(parameters)) {
    throw corrupt(`${source} has no array of prunable parameters in its metadata.`, {
      file: source,
      entry: 'parameters',
    });
  }
  const names = new Set<string>();
  for (const [index, parameter] of parameters.entries()) {
    const valid =
      isPlainObject(parameter) &&
      typeof parameter.name === 'string' &&
      !names.has(parameter.name) &&
      isShape(parameter.shape) &&
      (version < 2 || parameter.mask === 'binary' || parameter.mask === 'fractional');
    if (!valid) {
      throw corrupt(
        `${source} has a prunable parameter (parameters[${index}]) that is not a unique { name, shape, mask }.`,
        { file: source, entry: `parameters[${index}]` },
      );
    }
    names.add(parameter.name as string);
  }
}

/**
 * Reads and checks `userDefinedMetadata.fineprune`; undefined when the artifacts are a plain model.
 *
 * @throws FinepruneError `CHECKPOINT_MISMATCH` for another format version (a version-1 checkpoint
 *   without `allowUnverified`), `CHECKPOINT_CORRUPT` naming the first malformed field
 */
export function readCheckpointMetadata(
  artifacts: tf.io.ModelArtifacts,
  options: DecodeSavedModelOptions = {},
): CheckpointMetadata | undefined {
  const source = options.source ?? 'the checkpoint';
  const user = artifacts.userDefinedMetadata as Record<string, unknown> | undefined;
  if (!isPlainObject(user) || user.fineprune === undefined) return undefined;
  const metadata = user.fineprune;
  if (!isPlainObject(metadata))
    throw corrupt(`${source} has checkpoint metadata that is not an object.`, {
      file: source,
      entry: 'fineprune',
    });
  const version = metadata.formatVersion;
  if (version === 1 && !options.allowUnverified) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `${source} is a version-1 checkpoint, written before checkpoints carried content hashes; it cannot be checked for damage or edits.`,
      fix: 'If you trust the file, load it once with loadCheckpoint(handler, { …options, allowUnverified: true }) and save it again with saveCheckpoint() (or `fineprune export --allow-unverified`).',
      details: { file: source, formatVersion: 1 },
    });
  }
  if (version !== 1 && version !== CHECKPOINT_FORMAT_VERSION) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `${source} has checkpoint format version ${quote(JSON.stringify(version) ?? 'none')}; this version of @fineprune/layers reads versions 1 and ${CHECKPOINT_FORMAT_VERSION}.`,
      fix: 'Load it with the version of @fineprune/layers that saved it.',
      details: { file: source, formatVersion: version ?? null },
    });
  }
  if (!(Number.isSafeInteger(metadata.step) && (metadata.step as number) >= 0))
    throw corrupt(`${source} has a step that is not a non-negative integer.`, {
      file: source,
      entry: 'step',
    });
  if (typeof metadata.specVersion !== 'number')
    throw corrupt(`${source} has no spec version.`, { file: source, entry: 'specVersion' });
  checkRandom(metadata.random, source);
  checkGroups(metadata.groups, source);
  checkParameters(metadata.parameters, source, version as number);
  return metadata as unknown as CheckpointMetadata;
}

/** What a tensor of a saved model must hold. */
type Rule = 'finite' | 'unit-interval' | 'binary';

function ruleOf(key: string, binaryMasks: ReadonlySet<string>): Rule {
  if (!key.startsWith('mask/')) return 'finite';
  return binaryMasks.has(key.slice('mask/'.length)) ? 'binary' : 'unit-interval';
}

function firstBreach(values: ArrayLike<number>, rule: Rule): number {
  for (let index = 0; index < values.length; index += 1) {
    const value = values[index]!;
    const ok =
      rule === 'finite'
        ? Number.isFinite(value)
        : rule === 'binary'
          ? value === 0 || value === 1
          : value >= 0 && value <= 1;
    if (!ok) return index;
  }
  return -1;
}

const RULE_WORDS: Record<Rule, string> = {
  finite: 'only finite numbers',
  'unit-interval': 'only values in [0, 1]',
  binary: 'only 0 and 1 (a binary mask)',
};

/** Checks one float tensor's values against its rule. */
async function checkValues(name: string, tensor: tf.Tensor, rule: Rule, source: string): Promise<void> {
  const values = await tensor.data();
  const index = firstBreach(values as Float32Array, rule);
  if (index < 0) return;
  throw corrupt(
    `${source} holds ${values[index]} at index ${index} of ${quote(name)}, which must hold ${RULE_WORDS[rule]}.`,
    { file: source, entry: name.slice(0, 200), index, value: String(values[index]) },
    rule === 'finite'
      ? 'The run that saved it diverged or the file was damaged; restore an earlier checkpoint or run again.'
      : REBUILD_FIX,
  );
}

function checkPrunerTensor(key: string, tensor: tf.Tensor, source: string): void {
  if (tensor.dtype !== 'float32') {
    throw corrupt(
      `${source} stores ${quote(CHECKPOINT_PREFIX + key)} as ${tensor.dtype}; the pruner's tensors are float32.`,
      {
        file: source,
        entry: (CHECKPOINT_PREFIX + key).slice(0, 200),
        dtype: tensor.dtype,
      },
    );
  }
}

function checkParameterTensors(decoded: DecodedSavedModel, source: string): void {
  for (const parameter of decoded.metadata?.parameters ?? []) {
    const weight = decoded.weights.get(parameter.name);
    const mask = decoded.pruner[`mask/${parameter.name}`];
    const maskName = `${CHECKPOINT_PREFIX}mask/${parameter.name}`;
    for (const [entry, tensor] of [
      [parameter.name, weight],
      [maskName, mask],
    ] as const) {
      if (!tensor)
        throw corrupt(
          `${source} names the prunable parameter ${quote(parameter.name)} but holds no ${quote(entry)}.`,
          {
            file: source,
            entry: entry.slice(0, 200),
          },
        );
    }
    if (!tf.util.arraysEqual(weight!.shape, parameter.shape) || weight!.dtype !== 'float32') {
      throw corrupt(
        `${source} stores the prunable weight ${quote(parameter.name)} as ${weight!.dtype} [${weight!.shape}] but its metadata gives float32 [${parameter.shape}].`,
        { file: source, entry: parameter.name.slice(0, 200), dtype: weight!.dtype },
      );
    }
    if (!tf.util.arraysEqual(mask!.shape, weight!.shape)) {
      throw new FinepruneError({
        code: ErrorCodes.CHECKPOINT_MISMATCH,
        message: `A saved model whose masks do not match its weights: the mask of "${parameter.name}" has shape [${mask!.shape}] but the weight has shape [${weight!.shape}].`,
        fix: 'The checkpoint was assembled from different models; save it again from one model and its pruner.',
        details: {
          file: source,
          parameter: parameter.name,
          maskShape: mask!.shape,
          weightShape: weight!.shape,
        },
      });
    }
  }
}

/**
 * Decodes saved artifacts (a checkpoint, or a plain model such as an export) and checks them as
 * untrusted data: the checkpoint metadata ({@link readCheckpointMetadata}); every prunable
 * parameter present with its weight and mask of the recorded shape; the pruner's tensors float32;
 * every float weight, score and optimizer slot finite; every mask within [0, 1], and exactly 0 or
 * 1 where the checkpoint records it as binary. Nothing is built; the caller owns the tensors.
 *
 * @param artifacts - what a handler's `load()` returned
 * @param options - how errors name the file, `allowUnverified` for version-1 checkpoints
 * @returns the metadata (undefined for a plain model), the model's weights, the pruner's tensors
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the file, the entry and (for values) the
 *   index and value; `CHECKPOINT_MISMATCH` for another checkpoint format version
 *
 * @example
 * ```ts
 * const saved = decodeSavedModel(await fileSystem('out/run/checkpoint').load!(), { source: 'out/run/checkpoint' });
 * console.log(saved.metadata?.step, [...saved.weights.keys()]);
 * tf.dispose([...saved.weights.values(), ...Object.values(saved.pruner)]);
 * ```
 */
export async function decodeSavedModel(
  artifacts: tf.io.ModelArtifacts,
  options: DecodeSavedModelOptions = {},
): Promise<DecodedSavedModel> {
  const source = options.source ?? 'the checkpoint';
  if (artifacts.weightSpecs == null || artifacts.weightData == null)
    throw corrupt(`${source} holds no weights.`, { file: source });
  const metadata = readCheckpointMetadata(artifacts, options);
  let tensors: tf.NamedTensorMap;
  try {
    tensors = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_CORRUPT,
      message: `The weights of ${source} cannot be decoded: ${(error as Error).message.slice(0, 300)}`,
      fix: 'The weights data is truncated or damaged; restore it from a backup or save it again.',
      cause: error,
      details: { file: source },
    });
  }
  const decoded: DecodedSavedModel = { metadata, weights: new Map(), pruner: {} };
  for (const [name, tensor] of Object.entries(tensors)) {
    if (metadata && name.startsWith(CHECKPOINT_PREFIX))
      decoded.pruner[name.slice(CHECKPOINT_PREFIX.length)] = tensor;
    else decoded.weights.set(name, tensor);
  }
  try {
    checkParameterTensors(decoded, source);
    const binary = new Set(
      (metadata?.parameters ?? [])
        .filter((parameter) => parameter.mask === 'binary')
        .map((parameter) => parameter.name),
    );
    for (const [key, tensor] of Object.entries(decoded.pruner)) {
      checkPrunerTensor(key, tensor, source);
      await checkValues(CHECKPOINT_PREFIX + key, tensor, ruleOf(key, binary), source);
    }
    for (const [name, tensor] of decoded.weights)
      if (tensor.dtype === 'float32') await checkValues(name, tensor, 'finite', source);
  } catch (error) {
    tf.dispose([...decoded.weights.values(), ...Object.values(decoded.pruner)]);
    throw error;
  }
  return decoded;
}
