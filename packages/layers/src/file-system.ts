import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import {
  containedPath,
  type OpenFile,
  openRegularFile,
  readBoundedText,
  readExactly,
} from './contained-files';
import { sealedModelJson, takeIntegrityRecord, verifyDocument, verifyEntries } from './integrity';
import {
  type ArtefactKind,
  artefactKind,
  type CheckedEntry,
  type CheckedGroup,
  checkManifest,
  declaresSealedCheckpoint,
  entryByteLength,
  fileError,
  MODEL_JSON,
  parseModelJson,
} from './model-json';
import { type NodeModules, nodeModules } from './node-modules';
import {
  readWrittenFiles,
  recordWrittenFiles,
  removeStaleFiles,
  temporaryName,
  uniqueWeightsName,
  writeDurably,
} from './written-files';

export { MODEL_JSON } from './model-json';

/**
 * Limits of {@link fileSystem} when it loads (every file it reads is treated as untrusted).
 *
 * @example
 * ```ts
 * const handler = fileSystem('./models/big', { maxWeightBytes: 8 * 1024 ** 3 } satisfies FileSystemOptions);
 * ```
 */
export interface FileSystemOptions {
  /** Largest model.json read, in bytes. Default 64 MiB. */
  maxModelJsonBytes?: number;
  /** Most bytes of weights a model.json may declare. Default 4 GiB. */
  maxWeightBytes?: number;
}

/**
 * The handler {@link fileSystem} returns: a `tf.io.IOHandler` that also names its directory (for
 * messages about the files it reads).
 *
 * @example
 * ```ts
 * const handler: FileSystemHandler = fileSystem('./models/mlp');
 * console.log(handler.directory);
 * ```
 */
export interface FileSystemHandler extends tf.io.IOHandler {
  /** The directory it saves into and loads from. */
  readonly directory: string;
}

const DEFAULT_MAX_MODEL_JSON_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_WEIGHT_BYTES = 4 * 1024 ** 3;

function ioFailed(
  message: string,
  fix: string,
  cause: unknown,
  details?: Record<string, unknown>,
): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.IO_FAILED,
    message,
    fix,
    ...(cause !== undefined ? { cause } : {}),
    ...(details ? { details } : {}),
  });
}

/** Flushes a directory entry change (a rename) where the platform allows it. */
async function syncDirectory({ fs }: NodeModules, directory: string): Promise<void> {
  let handle: Awaited<ReturnType<NodeModules['fs']['promises']['open']>> | undefined;
  try {
    handle = await fs.promises.open(directory, 'r');
    await handle.sync();
  } catch {
    // Directories cannot be opened or synced on some platforms (Windows); the rename is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function toBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

const KIND_NAMES: Record<ArtefactKind, string> = {
  checkpoint: 'a fineprune checkpoint',
  'graph-model': 'a TF.js graph model',
  model: 'a plain layers model (an export)',
};

/**
 * Refuses to replace the model.json of `directory` with a different kind of artefact (an export
 * over a checkpoint, a checkpoint over an export) or when the one there cannot be read as a model.
 */
async function checkOverwrite(modules: NodeModules, directory: string, writing: ArtefactKind): Promise<void> {
  const file = modules.path.join(directory, MODEL_JSON);
  const present = await modules.fs.promises.lstat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
  if (!present) return;
  const unreadable = (cause: unknown) =>
    ioFailed(
      `${directory} already holds a ${MODEL_JSON} that is not a readable TF.js model; fileSystem() will not replace it.`,
      'Choose an empty directory, or move that file away first if you no longer need it.',
      cause,
      { directory, file },
    );
  let existing: ArtefactKind;
  try {
    existing = artefactKind(parseModelJson(await readBoundedText(file, DEFAULT_MAX_MODEL_JSON_BYTES), file));
  } catch (error) {
    throw unreadable(error);
  }
  if (existing !== writing) {
    throw ioFailed(
      `${directory} holds ${KIND_NAMES[existing]}; saving ${KIND_NAMES[writing]} there would replace it.`,
      existing === 'checkpoint'
        ? 'Write exports to another directory (for example --out <run>/model): a run resumes from its checkpoint.'
        : 'Choose another directory for the checkpoint; keep exports and checkpoints apart.',
      undefined,
      { directory, holds: existing, writing },
    );
  }
}

/** The byte ranges of `specs` in `data`; the data must hold exactly what they describe. */
function entriesOf(specs: readonly tf.io.WeightsManifestEntry[], data: Uint8Array): CheckedEntry[] {
  const entries: CheckedEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    if (spec.dtype === 'string') {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `fileSystem() does not save string weights (${JSON.stringify(spec.name)}).`,
        fix: 'Save models whose weights are numbers (float32, int32, bool).',
      });
    }
    const byteLength = entryByteLength(spec);
    entries.push({ spec, begin: offset, byteLength });
    offset += byteLength;
  }
  if (offset !== data.byteLength) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The weights to save hold ${data.byteLength} bytes but their specs describe ${offset}.`,
      fix: 'Pass the weightData and weightSpecs that tf.io.encodeWeights() returned together.',
    });
  }
  return entries;
}

/**
 * Saves the model artifacts into `directory`, atomically: a crash at any point leaves the previous
 * model loadable. The new weights file is recorded as ours, then written (flushed), then
 * `model.json` (with its content hashes) is written to a temporary file (flushed) and renamed over
 * the old one. Weights files this handler recorded that are no longer referenced are removed last.
 */
async function save(directory: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  const modules = await nodeModules();
  const { fs, path } = modules;
  if (artifacts.modelTopology instanceof ArrayBuffer) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'fileSystem() saves JSON model topologies; this model has a binary (GraphDef) topology.',
      fix: 'Save LayersModels (model.save(fileSystem(dir))) or use another handler for graph models.',
    });
  }
  const modelJsonPath = path.join(directory, MODEL_JSON);
  const weightsName = uniqueWeightsName();
  const weightsPath = path.join(directory, weightsName);
  const temporaryPath = temporaryName(modelJsonPath);
  const weightSpecs = artifacts.weightSpecs ?? [];
  const data = toBytes(artifacts.weightData);
  const entries = entriesOf(weightSpecs, data);
  const modelJson: Record<string, unknown> = {
    modelTopology: artifacts.modelTopology ?? {},
    format: artifacts.format ?? 'layers-model',
    generatedBy: artifacts.generatedBy ?? 'fineprune',
    convertedBy: artifacts.convertedBy ?? null,
    weightsManifest: [{ paths: [weightsName], weights: weightSpecs }],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.signature ? { signature: artifacts.signature } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    ...(artifacts.modelInitializer ? { modelInitializer: artifacts.modelInitializer } : {}),
    ...(artifacts.initializerSignature ? { initializerSignature: artifacts.initializerSignature } : {}),
  };
  const text = sealedModelJson(modules.crypto, modelJson, entries, data);
  let step = 'create the directory';
  let recorded = new Set<string>();
  let weightsWritten = false;
  let temporaryWritten = false;
  try {
    await fs.promises.mkdir(directory, { recursive: true });
    step = `check what ${modelJsonPath} holds`;
    await checkOverwrite(modules, directory, artefactKind(modelJson));
    step = 'record the weights file as written by fineprune';
    recorded = await readWrittenFiles(modules, directory);
    recorded.add(weightsName);
    await recordWrittenFiles(modules, directory, recorded);
    step = `write the weights file ${weightsPath}`;
    await writeDurably(modules, weightsPath, data);
    weightsWritten = true;
    step = `write ${temporaryPath}`;
    await writeDurably(modules, temporaryPath, text);
    temporaryWritten = true;
    step = `rename ${temporaryPath} to ${modelJsonPath}`;
    await fs.promises.rename(temporaryPath, modelJsonPath);
  } catch (error) {
    // model.json still names the previous weights: drop what this save wrote, keep the rest.
    if (temporaryWritten) await fs.promises.rm(temporaryPath, { force: true }).catch(() => undefined);
    if (weightsWritten) await fs.promises.rm(weightsPath, { force: true }).catch(() => undefined);
    if (FinepruneError.is(error)) throw error;
    throw ioFailed(
      `Saving the model to ${directory} failed (${step}): ${(error as Error).message}`,
      'Check that the directory is writable and the disk has space; the previously saved model is unchanged.',
      error,
      { directory },
    );
  }
  await syncDirectory(modules, directory);
  // The new model is saved; failing to tidy up must not fail the save.
  await removeStaleFiles(modules, directory, recorded, weightsName);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

/** Opens every weights file of every group (contained, regular) and checks their sizes. */
async function openWeightsFiles(
  modules: NodeModules,
  realDirectory: string,
  groups: readonly CheckedGroup[],
  manifestFile: string,
): Promise<OpenFile[][]> {
  const opened: OpenFile[][] = [];
  try {
    for (const group of groups) {
      const files: OpenFile[] = [];
      opened.push(files);
      for (const name of group.paths) {
        const real = await containedPath(modules, realDirectory, name, manifestFile);
        files.push(
          await openRegularFile(modules, real, (error) =>
            fileError(
              ErrorCodes.CHECKPOINT_CORRUPT,
              `${manifestFile} names the weights file ${name}, which cannot be read: ${(error as Error).message}`,
              'The save is incomplete or files were moved; save the model again or restore the directory from a backup.',
              { file: real },
              error,
            ),
          ),
        );
      }
      const held = files.reduce((sum, file) => sum + file.size, 0);
      const described = group.entries.reduce((sum, entry) => sum + entry.byteLength, 0);
      if (held !== described) {
        throw fileError(
          ErrorCodes.CHECKPOINT_CORRUPT,
          `The weights files ${group.paths.join(', ')} of ${manifestFile} hold ${held} bytes but its manifest describes ${described}.`,
          'The weights file is truncated or belongs to another model; save the model again or restore it from a backup.',
          { file: manifestFile, bytes: held, expectedBytes: described },
        );
      }
    }
    return opened;
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
}

async function closeAll(opened: readonly OpenFile[][]): Promise<void> {
  for (const file of opened.flat()) await file.handle.close().catch(() => undefined);
}

/** Reads the opened files into one buffer; returns it and which file each byte range came from. */
async function readWeights(
  opened: readonly OpenFile[][],
  totalBytes: number,
  manifestFile: string,
): Promise<{ data: Uint8Array; fileOf: (offset: number) => string }> {
  let data: Uint8Array;
  try {
    data = new Uint8Array(totalBytes);
  } catch (error) {
    throw fileError(
      ErrorCodes.CHECKPOINT_CORRUPT,
      `${manifestFile} declares ${totalBytes} bytes of weights, more than this JavaScript engine can allocate.`,
      'Load the model on a machine with more memory, or split it.',
      { file: manifestFile, bytes: totalBytes },
      error,
    );
  }
  const starts: Array<{ begin: number; file: string }> = [];
  let offset = 0;
  for (const file of opened.flat()) {
    starts.push({ begin: offset, file: file.file });
    await readExactly(file, data.subarray(offset, offset + file.size));
    offset += file.size;
  }
  const fileOf = (at: number) => {
    let found = manifestFile;
    for (const start of starts) if (start.begin <= at) found = start.file;
    return found;
  };
  return { data, fileOf };
}

async function load(directory: string, options: FileSystemOptions): Promise<tf.io.ModelArtifacts> {
  const modules = await nodeModules();
  const modelJsonPath = modules.path.join(directory, MODEL_JSON);
  let realDirectory: string;
  try {
    realDirectory = await modules.fs.promises.realpath(directory);
  } catch (error) {
    throw ioFailed(
      `Cannot read ${modelJsonPath}: ${(error as Error).message}`,
      'Check the directory: it must hold a model.json saved with fileSystem() or model.save().',
      error,
      { path: modelJsonPath, file: modelJsonPath },
    );
  }
  const text = await readBoundedText(
    modules.path.join(realDirectory, MODEL_JSON),
    options.maxModelJsonBytes ?? DEFAULT_MAX_MODEL_JSON_BYTES,
  );
  const json = parseModelJson(text, modelJsonPath);
  const record = takeIntegrityRecord(json, modelJsonPath);
  if (record) verifyDocument(modules.crypto, json, record, modelJsonPath);
  else if (declaresSealedCheckpoint(json)) {
    throw fileError(
      ErrorCodes.CHECKPOINT_CORRUPT,
      `${modelJsonPath} is a checkpoint of a format that carries content hashes, but its hashes were removed.`,
      'The checkpoint was edited after it was saved; restore it from a backup or start the run again.',
      { file: modelJsonPath, entry: 'finepruneIntegrity' },
    );
  }
  const { groups, totalBytes } = checkManifest(
    json,
    modelJsonPath,
    options.maxWeightBytes ?? DEFAULT_MAX_WEIGHT_BYTES,
  );
  const opened = await openWeightsFiles(modules, realDirectory, groups, modelJsonPath);
  let weights: Awaited<ReturnType<typeof readWeights>>;
  try {
    weights = await readWeights(opened, totalBytes, modelJsonPath);
  } finally {
    await closeAll(opened);
  }
  const entries = groups.flatMap((group) => group.entries);
  if (record) verifyEntries(modules.crypto, weights.data, entries, record, weights.fileOf);
  return tf.io.getModelArtifactsForJSON(json as unknown as tf.io.ModelJSON, async () => [
    entries.map((entry) => entry.spec),
    weights.data.buffer as ArrayBuffer,
  ]);
}

function checkLimit(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value > 0)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `fileSystem() option ${name} must be a positive integer number of bytes, got ${String(value)}.`,
      fix: `Leave ${name} out for the default, or pass a byte count such as ${256 * 1024 * 1024}.`,
    });
  }
}

/**
 * A `tf.io.IOHandler` that saves and loads the standard TF.js layers-model format in a local
 * directory (Node.js only): `model.json` (topology, `format: 'layers-model'`, a `weightsManifest`
 * and `userDefinedMetadata`) plus one weights file. Stock TF.js loads the directory (served over
 * HTTP, or with `tfjs-node`'s `file://`).
 *
 * Saving is atomic: the weights go to a new uniquely named file and are flushed; `model.json` is
 * written to a temporary file, flushed and renamed over the old one; then the weights files this
 * handler wrote earlier (recorded in `.fineprune-written.json`) that are no longer referenced are
 * removed. No other file is ever removed. A crash at any point leaves the previous model loadable.
 * model.json carries SHA-256 content hashes of itself and of every weight (`finepruneIntegrity`,
 * which stock TF.js ignores). A save refuses to replace a different kind of artefact: an export
 * over a checkpoint, a checkpoint over an export, or a model.json it cannot read. Only one process
 * should save into a directory at a time.
 *
 * Loading treats every file as untrusted: model.json is read only if it is a regular file of at
 * most `maxModelJsonBytes`, its nesting and size are bounded before it is parsed, its manifest is
 * checked entry by entry (names unique, dtypes known, shapes of non-negative integers, at most
 * `maxWeightBytes` in all), weights files must be regular files inside the directory (no absolute
 * paths, `..` or links out) holding exactly the bytes the manifest describes, and the content
 * hashes are verified when present (a checkpoint written with them must have them). Graph models
 * are refused with a clear error.
 *
 * @param directory - the directory to save into (created if missing) or load from
 * @param options - loading limits: `maxModelJsonBytes` (default 64 MiB), `maxWeightBytes` (4 GiB)
 * @returns the handler, for `model.save()`, {@link saveStripped}, {@link saveCheckpoint},
 *   {@link loadCheckpoint} or `tf.loadLayersModel()`
 * @throws FinepruneError (when saving or loading) `IO_FAILED` when files cannot be read or written
 *   or a save would replace another kind of artefact; `CHECKPOINT_CORRUPT` naming the file and the
 *   entry when `model.json` is damaged, malformed or edited, or a weights file is missing,
 *   truncated, outside the directory, not a regular file or does not match its hash;
 *   `CHECKPOINT_MISMATCH` for a graph model
 *
 * @example
 * ```ts
 * await model.save(fileSystem('./models/mlp'));
 * const again = await tf.loadLayersModel(fileSystem('./models/mlp'));
 * ```
 */
export function fileSystem(directory: string, options: FileSystemOptions = {}): FileSystemHandler {
  if (typeof directory !== 'string' || directory.length === 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `fileSystem() needs a directory path, got ${JSON.stringify(directory)}.`,
      fix: "Pass a path such as './models/pruned'.",
    });
  }
  checkLimit('maxModelJsonBytes', options.maxModelJsonBytes);
  checkLimit('maxWeightBytes', options.maxWeightBytes);
  return {
    directory,
    save: (artifacts) => save(directory, artifacts),
    load: () => load(directory, options),
  };
}
