/**
 * Training checkpoints of a {@link BertModel} for resuming a pruning run exactly (Node.js only, part
 * of `@fineprune/transformers/node`): the raw weights (not W ⊙ M: a pruned weight keeps its value
 * and may come back), every mask, the pruner's state (learned scores, optimizer slots, step, random
 * state), the dropout stream, and caller metadata.
 *
 * A checkpoint directory holds `checkpoint.json` and one `weights-<id>.safetensors`. The weights go
 * to a new file first; `checkpoint.json`, which names that file with its size and SHA-256, is then
 * replaced atomically, and only then is the previous weights file (the one the old
 * `checkpoint.json` named) removed. A crash at any point leaves a loadable checkpoint, and nothing
 * but the files this module wrote is ever removed. Loading treats both files as untrusted.
 */

import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { PrunerState, SPEC_VERSION } from '@fineprune/core';
import {
  decodeFloat32,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsFile,
  type SafetensorsInput,
} from '@fineprune/safetensors';
import { writeSafetensorsFile } from '@fineprune/safetensors/node';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { checkJsonBounds, quoteText, readRegularFile } from '@fineprune/tensor/untrusted';
import * as tf from '@tensorflow/tfjs-core';
import { configFromHuggingFace, configToHuggingFace, type HuggingFaceConfigValue } from './config';
import { type BertTask, bertLayout, validateTask } from './layout';
import { type BertModel, createBertModel } from './model';
import { writeTextAtomically } from './write-text-atomically';

/** The file that names a checkpoint's weights. */
export const CHECKPOINT_INDEX_FILE = 'checkpoint.json';
const FORMAT = 'fineprune-bert-checkpoint';
const FORMAT_VERSION = 1;
const WEIGHTS_NAME = /^weights-[0-9a-f]{16}\.safetensors$/;
const MAX_INDEX_BYTES = 64 * 1024;
const MAX_WEIGHTS_BYTES = 2 ** 31 - 1;
/** The most JSON values the metadata may hold (the run history of a long run fits easily). */
const MAX_METADATA_VALUES = 2_000_000;

/**
 * What {@link saveBertCheckpoint} needs of a pruner: a `Pruner` of `@fineprune/core` fits.
 *
 * @example
 * ```ts
 * const source: BertPrunerStateSource = pruner;
 * ```
 */
export interface BertPrunerStateSource {
  readonly model?: unknown;
  exportState(): PrunerState;
}

/**
 * What {@link loadBertCheckpoint} returns: the model (weights, masks and dropout stream restored),
 * the pruner state for `pruner.loadState()` (the caller disposes `state.tensors` afterwards), and the
 * caller's metadata as saved.
 *
 * @example
 * ```ts
 * const { model, state, metadata }: LoadedBertCheckpoint = await loadBertCheckpoint('out/run/checkpoint');
 * ```
 */
export interface LoadedBertCheckpoint {
  model: BertModel;
  state: PrunerState;
  metadata: unknown;
}

interface SavedHeader {
  config: Record<string, HuggingFaceConfigValue>;
  task: BertTask;
  freezeEmbeddings: boolean;
  specVersion: number;
  step: number;
  random: number[];
  groups: Array<{ name: string; lastTarget: number | null }>;
  dropout: number[];
  metadata: unknown;
}

function corrupt(file: string, message: string, cause?: unknown): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.CHECKPOINT_CORRUPT,
    message: `${file}: ${message}`,
    fix: 'The checkpoint was damaged or edited after it was saved; restore it from a backup, or start the run afresh without --resume.',
    ...(cause !== undefined ? { cause } : {}),
    details: { file },
  });
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads checkpoint.json when the directory has one (undefined when it has none). */
async function readIndex(
  directory: string,
): Promise<{ weights: string; bytes: number; sha256: string } | undefined> {
  const file = path.join(directory, CHECKPOINT_INDEX_FILE);
  if (!fs.existsSync(file)) return undefined;
  const raw = await readRegularFile(file, {
    maxBytes: MAX_INDEX_BYTES,
    what: 'the checkpoint index',
    code: ErrorCodes.CHECKPOINT_CORRUPT,
  });
  const text = new TextDecoder().decode(raw);
  const excess = checkJsonBounds(text, { maxDepth: 4, maxValues: 100 });
  if (excess) throw corrupt(file, `${excess.description}; a checkpoint index does not.`);
  let index: Record<string, unknown>;
  try {
    index = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw corrupt(file, `is not valid JSON: ${(error as Error).message.slice(0, 200)}`, error);
  }
  if (index === null || typeof index !== 'object' || index.format !== FORMAT) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `${file} is not a fineprune BERT checkpoint (its "format" is ${quoteText(String((index as { format?: unknown })?.format))}).`,
      fix: 'Point at a checkpoint written by saveBertCheckpoint (fineprune run with a huggingFace model), or use another directory.',
      details: { file },
    });
  }
  const { weights, bytes, sha256: digest, version } = index;
  if (
    version !== FORMAT_VERSION ||
    typeof weights !== 'string' ||
    !WEIGHTS_NAME.test(weights) ||
    !Number.isSafeInteger(bytes) ||
    (bytes as number) < 8 ||
    (bytes as number) > MAX_WEIGHTS_BYTES ||
    typeof digest !== 'string' ||
    !/^[0-9a-f]{64}$/.test(digest)
  ) {
    throw corrupt(file, 'has a malformed version, weights file name, size or hash.');
  }
  return { weights, bytes: bytes as number, sha256: digest };
}

/**
 * Saves what a pruning run of a BERT model needs to continue exactly. The directory is created
 * when missing; a directory holding a TF.js model (`model.json`) or another kind of
 * `checkpoint.json` is refused rather than written over.
 *
 * @param model - the model being trained
 * @param pruner - the pruner running on it (its state: masks, scores, optimizer slots, step, random state)
 * @param directory - the checkpoint directory
 * @param options - `metadata`: any JSON the caller wants back on load (a run's history, say)
 * @throws FinepruneError `INVALID_ARGUMENT` when the pruner prunes another model; `IO_FAILED` when
 *   the directory holds another artefact or cannot be written (the previous checkpoint is then kept)
 *
 * @example
 * ```ts
 * await saveBertCheckpoint(model, pruner, 'out/run/checkpoint', { metadata: { history } });
 * ```
 */
export async function saveBertCheckpoint(
  model: BertModel,
  pruner: BertPrunerStateSource,
  directory: string,
  options: { metadata?: unknown } = {},
): Promise<void> {
  if (pruner.model !== undefined && pruner.model !== model) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'saveBertCheckpoint(): the pruner prunes another model.',
      fix: 'Pass the model and the pruner that runs on it.',
    });
  }
  await fs.promises.mkdir(directory, { recursive: true }).catch((error: Error) => {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `Cannot create the checkpoint directory ${directory}: ${error.message}`,
      fix: 'Choose a writable location.',
      cause: error,
    });
  });
  if (fs.existsSync(path.join(directory, 'model.json'))) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${directory} holds a TF.js model (model.json); a BERT checkpoint is not written over another artefact.`,
      fix: 'Give the checkpoint a directory of its own.',
      details: { directory },
    });
  }
  const previous = await readIndex(directory).catch((error: unknown) => {
    if (FinepruneError.is(error) && error.code === ErrorCodes.CHECKPOINT_MISMATCH) {
      throw new FinepruneError({
        code: ErrorCodes.IO_FAILED,
        message: `${directory} holds another kind of checkpoint.json; it is not written over.`,
        fix: 'Give the checkpoint a directory of its own.',
        cause: error,
        details: { directory },
      });
    }
    return undefined; // a damaged index is replaced by a whole one
  });
  const state = pruner.exportState();
  let bytes: Uint8Array;
  try {
    const tensors: Record<string, SafetensorsInput> = {};
    const add = async (name: string, tensor: tf.Tensor) => {
      tensors[name] = { dtype: 'F32', shape: tensor.shape, data: (await tensor.data()) as Float32Array };
    };
    for (const { name, variable } of model.variables()) await add(`variable/${name}`, variable);
    for (const parameter of model.parameters())
      if (!state.tensors[`mask/${parameter.name}`]) await add(`mask/${parameter.name}`, parameter.mask);
    for (const [key, tensor] of Object.entries(state.tensors)) await add(`state/${key}`, tensor);
    const header: SavedHeader = {
      config: configToHuggingFace(model.config),
      task: model.task,
      freezeEmbeddings: model.embeddingsFrozen,
      specVersion: state.specVersion,
      step: state.step,
      random: [...state.random],
      groups: state.groups.map((group) => ({ ...group })),
      dropout: model.dropoutState(),
      metadata: options.metadata ?? null,
    };
    bytes = encodeSafetensors(tensors, { fineprune: JSON.stringify(header) });
  } finally {
    tf.dispose(Object.values(state.tensors));
  }
  const weights = `weights-${randomBytes(8).toString('hex')}.safetensors`;
  await writeSafetensorsFile(path.join(directory, weights), bytes);
  const index = {
    format: FORMAT,
    version: FORMAT_VERSION,
    weights,
    bytes: bytes.length,
    sha256: sha256(bytes),
  };
  try {
    await writeTextAtomically(
      path.join(directory, CHECKPOINT_INDEX_FILE),
      `${JSON.stringify(index, null, 2)}\n`,
      'the previous checkpoint',
    );
  } catch (error) {
    await fs.promises.rm(path.join(directory, weights), { force: true }).catch(() => undefined);
    throw error;
  }
  if (previous && previous.weights !== weights)
    await fs.promises.rm(path.join(directory, previous.weights), { force: true }).catch(() => undefined);
}

/**
 * True when `directory` holds a BERT checkpoint's index.
 *
 * @example
 * ```ts
 * if (hasBertCheckpoint('out/run/checkpoint')) console.log('resume with --resume');
 * ```
 */
export function hasBertCheckpoint(directory: string): boolean {
  return fs.existsSync(path.join(directory, CHECKPOINT_INDEX_FILE));
}

function parseHeader(file: string, parsed: SafetensorsFile): SavedHeader {
  const text = parsed.metadata.fineprune;
  if (typeof text !== 'string') throw corrupt(file, 'has no fineprune metadata.');
  const excess = checkJsonBounds(text, { maxDepth: 32, maxValues: MAX_METADATA_VALUES });
  if (excess) throw corrupt(file, `its metadata ${excess.description}.`);
  let header: SavedHeader;
  try {
    header = JSON.parse(text) as SavedHeader;
  } catch (error) {
    throw corrupt(file, 'its metadata is not valid JSON.', error);
  }
  const integers = (values: unknown) =>
    Array.isArray(values) &&
    values.every((value) => Number.isInteger(value) && value >= 0 && value < 2 ** 32);
  const wellFormed =
    header !== null &&
    typeof header === 'object' &&
    typeof header.config === 'object' &&
    header.config !== null &&
    typeof header.freezeEmbeddings === 'boolean' &&
    Number.isSafeInteger(header.step) &&
    header.step >= 0 &&
    integers(header.random) &&
    integers(header.dropout) &&
    header.dropout.length === 4 &&
    Array.isArray(header.groups) &&
    header.groups.every(
      (group) =>
        group !== null &&
        typeof group === 'object' &&
        typeof group.name === 'string' &&
        (group.lastTarget === null || Number.isFinite(group.lastTarget)),
    );
  if (!wellFormed)
    throw corrupt(
      file,
      'its metadata does not describe a BERT checkpoint (config, step, random state, groups, dropout).',
    );
  return header;
}

/** The float32 values of a tensor of the file, checked for shape, dtype and finiteness. */
function checkedValues(
  file: string,
  parsed: SafetensorsFile,
  name: string,
  shape: readonly number[],
  range?: { min: number; max: number },
): Float32Array {
  const tensor = parsed.tensors.get(name);
  if (!tensor) throw corrupt(file, `has no tensor ${quoteText(name)}.`);
  if (tensor.dtype !== 'F32' || !tf.util.arraysEqual([...tensor.shape], [...shape]))
    throw corrupt(
      file,
      `tensor ${quoteText(name)} is ${tensor.dtype} [${tensor.shape}], F32 [${shape}] expected.`,
    );
  const values = decodeFloat32(tensor);
  for (let index = 0; index < values.length; index++) {
    const value = values[index]!;
    if (!Number.isFinite(value) || (range && !(value >= range.min && value <= range.max)))
      throw corrupt(
        file,
        `tensor ${quoteText(name)} holds ${value} at index ${index}${range ? ` (masks lie in [${range.min}, ${range.max}])` : ''}.`,
      );
  }
  return values;
}

/**
 * Loads a checkpoint written by {@link saveBertCheckpoint}: both files are checked before anything
 * is built — the index (size, form), the weights file's size and SHA-256 against the index (a
 * flipped byte or an edited step is an error, never a silent resume), the safetensors structure,
 * the config (sizes bounded as for Hugging Face imports), every tensor's name, shape and finiteness,
 * masks within [0, 1].
 *
 * @param directory - the checkpoint directory
 * @returns the model, the pruner state (dispose `state.tensors` after `pruner.loadState`), the metadata
 * @throws FinepruneError `IO_FAILED` when a file cannot be read, `CHECKPOINT_MISMATCH` when the
 *   directory holds another kind of checkpoint, `CHECKPOINT_CORRUPT` naming the file and the entry
 *   for damaged, edited or malformed contents
 *
 * @example
 * ```ts
 * const { model, state } = await loadBertCheckpoint('out/run/checkpoint');
 * const pruner = new Pruner({ model, ...recipe });
 * pruner.loadState(state);
 * tf.dispose(Object.values(state.tensors));
 * ```
 */
export async function loadBertCheckpoint(directory: string): Promise<LoadedBertCheckpoint> {
  const index = await readIndex(directory);
  if (!index) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${directory} holds no ${CHECKPOINT_INDEX_FILE}.`,
      fix: 'Point at a checkpoint directory written by saveBertCheckpoint.',
      details: { directory },
    });
  }
  const file = path.join(directory, index.weights);
  const bytes = await readRegularFile(file, {
    maxBytes: index.bytes,
    what: 'the checkpoint weights',
    code: ErrorCodes.CHECKPOINT_CORRUPT,
  });
  if (bytes.length !== index.bytes || sha256(bytes) !== index.sha256)
    throw corrupt(file, `does not match the size and SHA-256 that ${CHECKPOINT_INDEX_FILE} records for it.`);
  let parsed: SafetensorsFile;
  try {
    parsed = readSafetensors(bytes);
  } catch (error) {
    throw corrupt(file, `is not a valid safetensors file: ${(error as Error).message.slice(0, 300)}`, error);
  }
  const header = parseHeader(file, parsed);
  let config: ReturnType<typeof configFromHuggingFace>;
  let task: BertTask;
  try {
    config = configFromHuggingFace(header.config);
    task = validateTask(header.task);
  } catch (error) {
    throw corrupt(file, `its config or task is invalid: ${(error as Error).message.slice(0, 300)}`, error);
  }
  // Everything is decoded and checked against the layout before the model exists.
  const layout = bertLayout(config, task);
  const values = new Map(
    layout.map((entry) => [entry.name, checkedValues(file, parsed, `variable/${entry.name}`, entry.shape)]),
  );
  const state = new Map<string, { values: Float32Array; shape: number[] }>();
  for (const [name, tensor] of parsed.tensors) {
    if (!name.startsWith('state/')) continue;
    const key = name.slice('state/'.length);
    const range = key.startsWith('mask/') ? { min: 0, max: 1 } : undefined;
    state.set(key, {
      values: checkedValues(file, parsed, name, tensor.shape, range),
      shape: [...tensor.shape],
    });
  }
  const masks = new Map<string, Float32Array>();
  for (const entry of layout) {
    if (entry.prunableGroup === undefined) continue;
    const key = `mask/${entry.name}`;
    const saved = state.get(key);
    if (saved && !tf.util.arraysEqual(saved.shape, [...entry.shape]))
      throw corrupt(
        file,
        `the mask of ${quoteText(entry.name)} is [${saved.shape}], [${entry.shape}] expected.`,
      );
    masks.set(entry.name, saved?.values ?? checkedValues(file, parsed, key, entry.shape, { min: 0, max: 1 }));
  }
  const model = createBertModel({ config, task, seed: 0, freezeEmbeddings: header.freezeEmbeddings });
  tf.tidy(() => {
    for (const { name, variable } of model.variables())
      variable.assign(tf.tensor(values.get(name)!, variable.shape, 'float32'));
    for (const parameter of model.parameters())
      parameter.mask.assign(tf.tensor(masks.get(parameter.name)!, [...parameter.shape], 'float32'));
  });
  model.setDropoutState(header.dropout);
  const tensors: Record<string, tf.Tensor> = Object.create(null);
  for (const [key, saved] of state) tensors[key] = tf.tensor(saved.values, saved.shape, 'float32');
  return {
    model,
    state: {
      specVersion: header.specVersion as typeof SPEC_VERSION,
      step: header.step,
      random: [...header.random],
      groups: header.groups.map((group) => ({ name: group.name, lastTarget: group.lastTarget })),
      tensors,
    },
    metadata: header.metadata,
  };
}
