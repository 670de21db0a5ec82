/**
 * Training checkpoints of a {@link BertModel} for resuming a pruning run exactly (Node.js only, part
 * of `@fineprune/transformers/node`): the raw weights (not W ⊙ M: a pruned weight keeps its value
 * and may come back), every mask, the pruner's state (learned scores, optimizer slots, step, random
 * state), the dropout stream, and caller metadata.
 *
 * A checkpoint directory holds `checkpoint.json` and `weights-<id>.safetensors`, followed, when the
 * tensors pass 1 GiB (a BERT-base run with its scores and Adam slots is 2.5 GB), by shards
 * `weights-<id>-<n>.safetensors`. Each file is written streamed, one tensor read from the backend at
 * a time, so saving never holds a second copy of the model in memory. The files go to new names
 * first; `checkpoint.json`, which names them with their sizes and SHA-256, is then replaced
 * atomically, and only then are the previous files (those the old `checkpoint.json` named) removed. A crash at any point leaves a loadable checkpoint, and nothing
 * but the files this module wrote is ever removed. Loading treats both files as untrusted.
 */

import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostArray, PrunerState, SPEC_VERSION } from '@fineprune/core';
import {
  decodeFloat32,
  readSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
  type StreamedTensor,
} from '@fineprune/safetensors';
import { writeSafetensorsFileStreamed } from '@fineprune/safetensors/node';
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
/** Version 1: one weights file; version 2: the weights file and further shards (`shards`). */
const FORMAT_VERSION = 1;
const SHARDED_VERSION = 2;
const WEIGHTS_NAME = /^weights-[0-9a-f]{16}\.safetensors$/;
const SHARD_NAME = /^weights-[0-9a-f]{16}-[0-9]{1,4}\.safetensors$/;
const MAX_INDEX_BYTES = 64 * 1024;
/** The largest file Node.js reads in one call (fs `readFile`: 2 GiB − 1). */
const MAX_WEIGHTS_BYTES = 2 ** 31 - 1;
/**
 * The data bytes of one checkpoint file before the next tensor starts a new shard: a BERT-base
 * pruning run (weights, masks, scores and Adam slots, 2.5 GB) is three files, each far under what
 * Node.js reads in one call, and a shard is loaded, checked and released one at a time.
 */
const SHARD_BYTES = 1024 * 1024 * 1024;
/** The most shards a checkpoint index may name. */
const MAX_SHARDS = 1000;
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
  /** With `hostArrays`, slots kept in JavaScript memory may come as `arrays` (streamed from there). */
  exportState(options?: { hostArrays?: boolean }): PrunerState;
}

/** What a checkpoint file stores under one name: a tensor, or values held in JavaScript memory. */
type SavedValues = tf.Tensor | HostArray;

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

/** One file of a checkpoint as its index records it. */
interface IndexedFile {
  file: string;
  bytes: number;
  sha256: string;
}

function isIndexedFile(entry: unknown, name: RegExp): entry is IndexedFile {
  const { file, bytes, sha256: digest } = (entry ?? {}) as Record<string, unknown>;
  return (
    typeof file === 'string' &&
    name.test(file) &&
    Number.isSafeInteger(bytes) &&
    (bytes as number) >= 8 &&
    (bytes as number) <= MAX_WEIGHTS_BYTES &&
    typeof digest === 'string' &&
    /^[0-9a-f]{64}$/.test(digest)
  );
}

/**
 * Reads checkpoint.json when the directory has one (undefined when it has none): the files of the
 * checkpoint, the weights file (which holds the metadata) first.
 */
async function readIndex(directory: string): Promise<IndexedFile[] | undefined> {
  const file = path.join(directory, CHECKPOINT_INDEX_FILE);
  if (!fs.existsSync(file)) return undefined;
  const raw = await readRegularFile(file, {
    maxBytes: MAX_INDEX_BYTES,
    what: 'the checkpoint index',
    code: ErrorCodes.CHECKPOINT_CORRUPT,
  });
  const text = new TextDecoder().decode(raw);
  const excess = checkJsonBounds(text, { maxDepth: 4, maxValues: 10 * MAX_SHARDS });
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
  const { weights, bytes, sha256: digest, version, shards } = index;
  const first = { file: weights, bytes, sha256: digest };
  const rest = version === SHARDED_VERSION ? shards : [];
  if (
    (version !== FORMAT_VERSION && version !== SHARDED_VERSION) ||
    !isIndexedFile(first, WEIGHTS_NAME) ||
    !Array.isArray(rest) ||
    rest.length > MAX_SHARDS ||
    (version === SHARDED_VERSION && rest.length === 0) ||
    !rest.every((entry) => isIndexedFile(entry, SHARD_NAME))
  ) {
    throw corrupt(file, 'has a malformed version, weights file name, size, hash or shard list.');
  }
  return [first, ...(rest as IndexedFile[])];
}

/**
 * Saves what a pruning run of a BERT model needs to continue exactly. The directory is created
 * when missing; a directory holding a TF.js model (`model.json`) or another kind of
 * `checkpoint.json` is refused rather than written over.
 *
 * @param model - the model being trained
 * @param pruner - the pruner running on it (its state: masks, scores, optimizer slots, step, random state)
 * @param directory - the checkpoint directory
 * @param options - `metadata`: any JSON the caller wants back on load (a run's history, say);
 *   `shardBytes`: the data bytes per file before the next tensor starts a new one (default 1 GiB)
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
  options: { metadata?: unknown; shardBytes?: number } = {},
): Promise<void> {
  const shardBytes = options.shardBytes ?? SHARD_BYTES;
  if (!(Number.isSafeInteger(shardBytes) && shardBytes > 0 && shardBytes <= MAX_WEIGHTS_BYTES))
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `saveBertCheckpoint(): shardBytes must be an integer in [1, ${MAX_WEIGHTS_BYTES}], got ${options.shardBytes}.`,
      fix: 'Leave shardBytes out (1 GiB per file).',
    });
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
  // Host-memory optimizer slots are streamed from where they are: as tensors they would first be
  // copied onto the wasm heap (1.3 GB of Adam moments at BERT-base scale).
  const state = pruner.exportState({ hostArrays: true });
  const id = randomBytes(8).toString('hex');
  let written: IndexedFile[] = [];
  try {
    const tensors: Array<[string, SavedValues]> = [
      ...model.variables().map(({ name, variable }): [string, tf.Tensor] => [`variable/${name}`, variable]),
      ...model
        .parameters()
        .filter((parameter) => !state.tensors[`mask/${parameter.name}`])
        .map((parameter): [string, tf.Tensor] => [`mask/${parameter.name}`, parameter.mask]),
      ...Object.entries(state.tensors).map(([key, tensor]): [string, tf.Tensor] => [`state/${key}`, tensor]),
      ...Object.entries(state.arrays ?? {}).map(([key, array]): [string, HostArray] => [
        `state/${key}`,
        array,
      ]),
    ];
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
    written = await writeShards(directory, id, shardsOf(tensors, shardBytes), {
      fineprune: JSON.stringify(header),
    });
  } finally {
    tf.dispose(Object.values(state.tensors));
  }
  const [first, ...shards] = written;
  const index = {
    format: FORMAT,
    version: shards.length > 0 ? SHARDED_VERSION : FORMAT_VERSION,
    weights: first!.file,
    bytes: first!.bytes,
    sha256: first!.sha256,
    ...(shards.length > 0 ? { shards } : {}),
  };
  try {
    await writeTextAtomically(
      path.join(directory, CHECKPOINT_INDEX_FILE),
      `${JSON.stringify(index, null, 2)}\n`,
      'the previous checkpoint',
    );
  } catch (error) {
    await removeFiles(directory, written);
    throw error;
  }
  if (previous)
    await removeFiles(
      directory,
      previous.filter((old) => !written.some((file) => file.file === old.file)),
    );
}

/** The name of shard `number` of the checkpoint files written with `id` (0: the weights file). */
function shardFile(id: string, number: number): string {
  return number === 0 ? `weights-${id}.safetensors` : `weights-${id}-${number}.safetensors`;
}

/** Removes checkpoint files this module wrote (a failure to remove one is not an error). */
async function removeFiles(directory: string, files: readonly IndexedFile[]): Promise<void> {
  for (const { file } of files)
    await fs.promises.rm(path.join(directory, file), { force: true }).catch(() => undefined);
}

/** Splits tensors, in order, into runs of at most `limit` data bytes (a larger tensor alone). */
function shardsOf(
  tensors: ReadonlyArray<[string, SavedValues]>,
  limit: number,
): Array<Array<[string, SavedValues]>> {
  const shards: Array<Array<[string, SavedValues]>> = [[]];
  let bytes = 0;
  for (const entry of tensors) {
    const size = 4 * (entry[1] instanceof tf.Tensor ? entry[1].size : entry[1].values.length);
    if (bytes > 0 && bytes + size > limit) {
      shards.push([]);
      bytes = 0;
    }
    shards.at(-1)!.push(entry);
    bytes += size;
  }
  return shards;
}

/**
 * Writes each shard as its own safetensors file, streamed (one tensor's values read from the
 * backend at a time) and atomic; the first carries the metadata. Removes what it wrote on failure.
 */
async function writeShards(
  directory: string,
  id: string,
  shards: Array<Array<[string, SavedValues]>>,
  metadata: Record<string, string>,
): Promise<IndexedFile[]> {
  const written: IndexedFile[] = [];
  try {
    for (const [number, shard] of shards.entries()) {
      const file = shardFile(id, number);
      const entries: Record<string, StreamedTensor> = {};
      for (const [name, saved] of shard)
        entries[name] = {
          dtype: 'F32',
          shape: [...saved.shape],
          values: () => (saved instanceof tf.Tensor ? (saved.data() as Promise<Float32Array>) : saved.values),
        };
      const result = await writeSafetensorsFileStreamed(
        path.join(directory, file),
        entries,
        number === 0 ? metadata : undefined,
      );
      if (result.bytes > MAX_WEIGHTS_BYTES)
        throw new FinepruneError({
          code: ErrorCodes.IO_FAILED,
          message: `The checkpoint file ${file} would have ${result.bytes} bytes, more than the ${MAX_WEIGHTS_BYTES} a checkpoint file may have (one tensor is that large).`,
          fix: 'Split the model differently; no single tensor of a BERT model is this large.',
        });
      written.push({ file, ...result });
    }
    return written;
  } catch (error) {
    // Atomic writes leave nothing of the shard that failed; remove the shards written before it.
    await removeFiles(directory, written);
    throw error;
  }
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
 * Reads, checks (size and SHA-256 against the index) and parses every file of a checkpoint, and
 * merges their tensors; the metadata is the first file's. A tensor named in two files is an error.
 */
async function readCheckpointFiles(
  directory: string,
  index: IndexedFile[],
): Promise<{ file: string; parsed: SafetensorsFile; fileOf(name: string): string }> {
  const tensors = new Map<string, SafetensorsTensor>();
  const owners = new Map<string, string>();
  let metadata: SafetensorsFile['metadata'] = {};
  for (const [number, entry] of index.entries()) {
    const file = path.join(directory, entry.file);
    const bytes = await readRegularFile(file, {
      maxBytes: entry.bytes,
      what: 'the checkpoint weights',
      code: ErrorCodes.CHECKPOINT_CORRUPT,
    });
    if (bytes.length !== entry.bytes || sha256(bytes) !== entry.sha256)
      throw corrupt(
        file,
        `does not match the size and SHA-256 that ${CHECKPOINT_INDEX_FILE} records for it.`,
      );
    let parsed: SafetensorsFile;
    try {
      parsed = readSafetensors(bytes);
    } catch (error) {
      throw corrupt(
        file,
        `is not a valid safetensors file: ${(error as Error).message.slice(0, 300)}`,
        error,
      );
    }
    if (number === 0) metadata = parsed.metadata;
    for (const [name, tensor] of parsed.tensors) {
      if (owners.has(name))
        throw corrupt(file, `repeats the tensor ${quoteText(name)} of ${owners.get(name)}.`);
      owners.set(name, file);
      tensors.set(name, tensor);
    }
  }
  const first = path.join(directory, index[0]!.file);
  return {
    file: first,
    parsed: { metadata, tensors, dataOffset: 0 },
    fileOf: (name) => owners.get(name) ?? first,
  };
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
  const { file, parsed, fileOf } = await readCheckpointFiles(directory, index);
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
    layout.map((entry) => [
      entry.name,
      checkedValues(fileOf(`variable/${entry.name}`), parsed, `variable/${entry.name}`, entry.shape),
    ]),
  );
  const state = new Map<string, { values: Float32Array; shape: number[] }>();
  for (const [name, tensor] of parsed.tensors) {
    if (!name.startsWith('state/')) continue;
    const key = name.slice('state/'.length);
    const range = key.startsWith('mask/') ? { min: 0, max: 1 } : undefined;
    state.set(key, {
      values: checkedValues(fileOf(name), parsed, name, tensor.shape, range),
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
    masks.set(
      entry.name,
      saved?.values ?? checkedValues(fileOf(key), parsed, key, entry.shape, { min: 0, max: 1 }),
    );
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
