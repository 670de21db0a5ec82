import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor';

/** The file that names the model's topology and weights file. */
export const MODEL_JSON = 'model.json';
/** Weights files this handler writes: `weights.<time>-<pid>-<random>.bin`. */
const OWN_WEIGHTS_FILE = /^weights\.[0-9a-z]+-[0-9]+-[0-9a-z]+\.bin$/;

type NodeFs = typeof import('node:fs');
type NodePath = typeof import('node:path');

async function nodeModules(): Promise<{ fs: NodeFs; path: NodePath }> {
  try {
    // Variable specifiers keep browser bundlers from trying to resolve Node built-ins.
    const [fsModule, pathModule] = ['node:fs', 'node:path'];
    const [fs, path] = (await Promise.all([
      import(/* webpackIgnore: true */ /* @vite-ignore */ fsModule),
      import(/* webpackIgnore: true */ /* @vite-ignore */ pathModule),
    ])) as [NodeFs & { default?: NodeFs }, NodePath & { default?: NodePath }];
    return {
      fs: (fs as { default?: NodeFs }).default ?? fs,
      path: (path as { default?: NodePath }).default ?? path,
    };
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: 'fileSystem() needs Node.js file access (node:fs), which this environment does not have.',
      fix: "In a browser save with 'indexeddb://name' or 'downloads://name', or tf.io.withSaveHandler().",
      cause: error,
    });
  }
}

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
    cause,
    ...(details ? { details } : {}),
  });
}

function corrupt(
  message: string,
  fix: string,
  cause?: unknown,
  details?: Record<string, unknown>,
): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.CHECKPOINT_CORRUPT,
    message,
    fix,
    ...(cause !== undefined ? { cause } : {}),
    ...(details ? { details } : {}),
  });
}

function bytesPerElement(spec: tf.io.WeightsManifestEntry): number | undefined {
  const quantized = spec.quantization?.dtype;
  if (quantized === 'uint8') return 1;
  if (quantized === 'uint16' || quantized === 'float16') return 2;
  switch (spec.dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'bool':
      return 1;
    case 'complex64':
      return 8;
    default:
      return undefined;
  }
}

/**
 * The byte length the specs describe, read from `data` where string weights make it dynamic.
 * Returns `undefined` when a string weight runs past the end of the data.
 */
function expectedByteLength(
  specs: readonly tf.io.WeightsManifestEntry[],
  data: Uint8Array,
): number | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((product, dimension) => product * dimension, 1);
    const size = bytesPerElement(spec);
    if (size !== undefined) {
      offset += count * size;
      continue;
    }
    // Strings: each element is a 4-byte little-endian length and its bytes.
    for (let index = 0; index < count; index += 1) {
      if (offset + 4 > data.byteLength) return undefined;
      offset += 4 + view.getUint32(offset, true);
    }
  }
  return offset;
}

function uniqueWeightsName(): string {
  const time = Date.now().toString(36);
  const random = Math.floor(Math.random() * 36 ** 6).toString(36);
  return `weights.${time}-${process.pid}-${random}.bin`;
}

/** Writes `data` to a new file and flushes it to disk before closing. */
async function writeDurably(
  fs: NodeFs,
  file: string,
  data: Uint8Array | string,
  flag: 'wx' | 'w',
): Promise<void> {
  const handle = await fs.promises.open(file, flag);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a directory entry change (a rename) where the platform allows it. */
async function syncDirectory(fs: NodeFs, directory: string): Promise<void> {
  let handle: Awaited<ReturnType<NodeFs['promises']['open']>> | undefined;
  try {
    handle = await fs.promises.open(directory, 'r');
    await handle.sync();
  } catch {
    // Directories cannot be opened or synced on some platforms (Windows); the rename is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

async function readManifestPaths(fs: NodeFs, file: string): Promise<string[]> {
  try {
    const json = JSON.parse(await fs.promises.readFile(file, 'utf8')) as tf.io.ModelJSON;
    return (json.weightsManifest ?? []).flatMap((group) => group.paths ?? []);
  } catch {
    return [];
  }
}

function toBytes(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/**
 * Saves the model artifacts into `directory`, atomically: a crash at any point leaves the previous
 * model loadable. The weights go to a new, uniquely named file (flushed to disk), then
 * `model.json.<pid>.tmp` (flushed), then a rename makes it `model.json`, so `model.json` always
 * names a complete weights file. Weights files no longer referenced are removed last.
 */
async function save(directory: string, artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
  const { fs, path } = await nodeModules();
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
  const temporaryPath = `${modelJsonPath}.${process.pid}.tmp`;
  const weightSpecs = artifacts.weightSpecs ?? [];
  const modelJson: tf.io.ModelJSON = {
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
  let step = 'create the directory';
  let previous: string[] = [];
  let weightsWritten = false;
  try {
    await fs.promises.mkdir(directory, { recursive: true });
    previous = await readManifestPaths(fs, modelJsonPath);
    step = `write the weights file ${weightsPath}`;
    await writeDurably(fs, weightsPath, toBytes(artifacts.weightData), 'wx');
    weightsWritten = true;
    step = `write ${temporaryPath}`;
    await writeDurably(fs, temporaryPath, JSON.stringify(modelJson), 'w');
    step = `rename ${temporaryPath} to ${modelJsonPath}`;
    await fs.promises.rename(temporaryPath, modelJsonPath);
  } catch (error) {
    // model.json still names the previous weights: drop what this save wrote, keep the rest.
    await fs.promises.rm(temporaryPath, { force: true }).catch(() => undefined);
    if (weightsWritten) await fs.promises.rm(weightsPath, { force: true }).catch(() => undefined);
    throw ioFailed(
      `Saving the model to ${directory} failed (${step}): ${(error as Error).message}`,
      'Check that the directory is writable and the disk has space; the previously saved model is unchanged.',
      error,
      { directory },
    );
  }
  await syncDirectory(fs, directory);
  // The new model is saved; failing to tidy up must not fail the save.
  const stale = new Set(previous.filter((file) => file !== weightsName && path.basename(file) === file));
  for (const file of await fs.promises.readdir(directory).catch(() => [] as string[])) {
    if (OWN_WEIGHTS_FILE.test(file) && file !== weightsName) stale.add(file);
  }
  for (const file of stale)
    await fs.promises.rm(path.join(directory, file), { force: true }).catch(() => undefined);
  return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
}

async function load(directory: string): Promise<tf.io.ModelArtifacts> {
  const { fs, path } = await nodeModules();
  const modelJsonPath = path.join(directory, MODEL_JSON);
  let text: string;
  try {
    text = await fs.promises.readFile(modelJsonPath, 'utf8');
  } catch (error) {
    throw ioFailed(
      `Cannot read ${modelJsonPath}: ${(error as Error).message}`,
      'Check the directory: it must hold a model.json saved with fileSystem() or model.save().',
      error,
      { path: modelJsonPath },
    );
  }
  let modelJson: tf.io.ModelJSON;
  try {
    modelJson = JSON.parse(text) as tf.io.ModelJSON;
  } catch (error) {
    throw corrupt(
      `${modelJsonPath} is not valid JSON: ${(error as Error).message}`,
      'The file is damaged or was cut short; save the model again or restore it from a backup.',
      error,
      { path: modelJsonPath },
    );
  }
  if (
    modelJson === null ||
    typeof modelJson !== 'object' ||
    modelJson.modelTopology == null ||
    !Array.isArray(modelJson.weightsManifest)
  ) {
    throw corrupt(
      `${modelJsonPath} has no modelTopology or no weightsManifest.`,
      'Point fileSystem() at a directory saved by TensorFlow.js or fineprune.',
      undefined,
      { path: modelJsonPath },
    );
  }
  return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
    const specs: tf.io.WeightsManifestEntry[] = [];
    const chunks: Uint8Array[] = [];
    for (const group of manifest) {
      if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) {
        throw corrupt(
          `A weightsManifest entry of ${modelJsonPath} has no paths or no weights.`,
          'Save the model again.',
          undefined,
          { path: modelJsonPath },
        );
      }
      specs.push(...group.weights);
      for (const file of group.paths) {
        const weightsPath = path.join(directory, file);
        try {
          chunks.push(await fs.promises.readFile(weightsPath));
        } catch (error) {
          throw corrupt(
            `${modelJsonPath} names the weights file ${file}, which cannot be read: ${(error as Error).message}`,
            'The save is incomplete or files were moved; save the model again or restore the directory from a backup.',
            error,
            { path: weightsPath },
          );
        }
      }
    }
    const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    const data = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      data.set(chunk, offset);
      offset += chunk.byteLength;
    }
    const expected = expectedByteLength(specs, data);
    if (expected !== total) {
      throw corrupt(
        `The weights of ${modelJsonPath} hold ${total} bytes but its manifest describes ${expected ?? 'more than that'}.`,
        'The weights file is truncated or belongs to another model; save the model again or restore it from a backup.',
        undefined,
        { path: modelJsonPath, bytes: total, expectedBytes: expected },
      );
    }
    return [specs, data.buffer];
  });
}

/**
 * A `tf.io.IOHandler` that saves and loads the standard TF.js layers-model format in a local
 * directory (Node.js only): `model.json` (topology, `format: 'layers-model'`, a `weightsManifest`
 * and `userDefinedMetadata`) plus one weights file. Stock TF.js loads the directory (served over
 * HTTP, or with `tfjs-node`'s `file://`).
 *
 * Saving is atomic: the weights go to a new uniquely named file and are flushed; `model.json` is
 * written to `model.json.<pid>.tmp`, flushed and renamed over the old one; then weights files that
 * are no longer referenced are removed. A crash at any point leaves the previous model loadable.
 * Only one process should save into a directory at a time.
 *
 * Loading checks that `model.json` parses and that the weights files exist and hold exactly the
 * bytes the manifest describes.
 *
 * @param directory - the directory to save into (created if missing) or load from
 * @returns the handler, for `model.save()`, {@link saveStripped}, {@link saveCheckpoint},
 *   {@link loadCheckpoint} or `tf.loadLayersModel()`
 * @throws FinepruneError (when saving or loading) `IO_FAILED` when files cannot be read or written,
 *   `CHECKPOINT_CORRUPT` when `model.json` is damaged or a weights file is missing or truncated
 *
 * @example
 * ```ts
 * await model.save(fileSystem('./models/mlp'));
 * const again = await tf.loadLayersModel(fileSystem('./models/mlp'));
 * ```
 */
export function fileSystem(directory: string): tf.io.IOHandler {
  if (typeof directory !== 'string' || directory.length === 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `fileSystem() needs a directory path, got ${JSON.stringify(directory)}.`,
      fix: "Pass a path such as './models/pruned'.",
    });
  }
  return {
    save: (artifacts) => save(directory, artifacts),
    load: () => load(directory),
  };
}
