/**
 * `@fineprune/transformers/node`: Hugging Face checkpoint directories (model.safetensors +
 * config.json) on the Node.js file system. Kept out of the main entry so browser bundles stay free
 * of `node:fs`.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensorsFile, writeSafetensorsFile } from '@fineprune/safetensors/node';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { checkJsonBounds, readRegularFile } from '@fineprune/tensor/untrusted';
import {
  applyHuggingFaceLoad,
  type ExportHuggingFaceOptions,
  exportHuggingFace,
  type HuggingFaceLoadReport,
  planHuggingFaceLoad,
  taskFromHuggingFace,
} from './checkpoint';
import { configFromHuggingFace } from './config';
import type { BertTask } from './layout';
import { type BertModel, createBertModel } from './model';
import { writeTextAtomically } from './write-text-atomically';

/**
 * The weights file of a checkpoint directory.
 *
 * @example
 * ```ts
 * path.join(directory, WEIGHTS_FILE); // …/model.safetensors
 * ```
 */
export const WEIGHTS_FILE = 'model.safetensors';
/**
 * The configuration file of a checkpoint directory.
 *
 * @example
 * ```ts
 * JSON.parse(fs.readFileSync(path.join(directory, CONFIG_FILE), 'utf8'));
 * ```
 */
export const CONFIG_FILE = 'config.json';

function ioFailed(message: string, fix: string, cause: unknown): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.IO_FAILED, message, fix, cause });
}

/** The largest config.json read (a BERT config has about 30 keys). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** Reads config.json as untrusted: a regular file of at most 1 MiB, shallow JSON. */
async function readConfigJson(configPath: string): Promise<Record<string, unknown>> {
  const bytes = await readRegularFile(configPath, {
    maxBytes: MAX_CONFIG_BYTES,
    what: 'the config',
    fix: 'Pass a directory that holds the config.json and model.safetensors of a BERT checkpoint.',
    code: ErrorCodes.CHECKPOINT_CORRUPT,
  });
  const text = new TextDecoder().decode(bytes);
  const corrupt = (message: string, cause?: unknown) =>
    new FinepruneError({
      code: ErrorCodes.CHECKPOINT_CORRUPT,
      message: `${configPath} ${message}`,
      fix: 'Restore config.json from the original checkpoint.',
      ...(cause !== undefined ? { cause } : {}),
      details: { file: configPath },
    });
  const excess = checkJsonBounds(text, { maxDepth: 16, maxValues: 100_000 });
  if (excess) throw corrupt(`${excess.description}; no config.json does.`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw corrupt(`is not valid JSON: ${(error as Error).message.slice(0, 200)}`, error);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw corrupt('is not a JSON object.');
  return json as Record<string, unknown>;
}

/** Runs `check` and names `file` in any FinepruneError it throws (message and details). */
function inFile<T>(file: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!FinepruneError.is(error)) throw error;
    const message = error.message.slice(`[${error.code}] `.length, -` Fix: ${error.fix}`.length);
    throw new FinepruneError({
      code: error.code,
      message: `${file}: ${message}`,
      fix: error.fix,
      cause: error,
      details: { ...error.details, file },
    });
  }
}

/**
 * Saves a model as a Hugging Face checkpoint directory: `model.safetensors` (written atomically by
 * `@fineprune/safetensors/node`) and `config.json` (temporary file + rename). The directory is
 * created when missing. See {@link exportHuggingFace} for what is written.
 *
 * @param model - the model to save
 * @param directory - the target directory
 * @param options - `dtype`, `includeMasks`
 * @returns the two paths written
 * @throws FinepruneError `IO_FAILED` when the directory or a file cannot be written
 *
 * @example
 * ```ts
 * import { saveHuggingFaceDirectory } from '@fineprune/transformers/node';
 * await saveHuggingFaceDirectory(model, './pruned-bert', { includeMasks: true });
 * ```
 */
export async function saveHuggingFaceDirectory(
  model: BertModel,
  directory: string,
  options: ExportHuggingFaceOptions = {},
): Promise<{ weights: string; config: string }> {
  const { safetensors, config } = await exportHuggingFace(model, options);
  try {
    await fs.promises.mkdir(directory, { recursive: true });
  } catch (error) {
    throw ioFailed(
      `Cannot create the directory ${directory}: ${(error as Error).message}`,
      'Choose a writable location.',
      error,
    );
  }
  const weights = path.join(directory, WEIGHTS_FILE);
  const configPath = path.join(directory, CONFIG_FILE);
  await writeSafetensorsFile(weights, safetensors);
  await writeTextAtomically(configPath, `${JSON.stringify(config, null, 2)}\n`, 'the previous file');
  return { weights, config: configPath };
}

/**
 * Options of {@link loadHuggingFaceDirectory}.
 *
 * @example
 * ```ts
 * const options: LoadHuggingFaceDirectoryOptions = { task: { type: 'span' }, strict: false };
 * ```
 */
export interface LoadHuggingFaceDirectoryOptions {
  /**
   * The task head to build; default: the one config.json's `architectures` names (classification,
   * question answering or masked LM).
   */
  task?: BertTask;
  /** Seed of the fresh parts (a new head) and of dropout; default 0. */
  seed?: number;
  /** See `createBertModel`; default true for classification and span, false for mlm. */
  freezeEmbeddings?: boolean;
  /** See {@link loadHuggingFaceWeights}; default true. */
  strict?: boolean;
}

/**
 * Builds a model from a Hugging Face checkpoint directory (`config.json` + `model.safetensors`)
 * and loads its weights. Both files are untrusted: the config is validated (sizes bounded), and
 * every tensor is checked against it (names, shapes, dtypes, finite values) before the model is
 * built, so a config with `vocab_size: 2^40` or a NaN weight fails without allocating anything.
 *
 * @param directory - the checkpoint directory
 * @param options - task, seed, freezeEmbeddings, strict
 * @returns the model and the load report
 * @throws FinepruneError `IO_FAILED` when a file cannot be read, `CHECKPOINT_CORRUPT` for a
 *   malformed file or non-finite weights, `INVALID_ARGUMENT` when config.json is not a BERT config
 *   (or describes more than 2^31 parameters) or names no task and none is given,
 *   `CHECKPOINT_MISMATCH` when the weights do not fit; each names the file
 *
 * @example
 * ```ts
 * import { loadHuggingFaceDirectory } from '@fineprune/transformers/node';
 * const { model, report } = await loadHuggingFaceDirectory('./bert-base-uncased', {
 *   task: { type: 'classification', numLabels: 2 },
 *   strict: false,
 * });
 * ```
 */
export async function loadHuggingFaceDirectory(
  directory: string,
  options: LoadHuggingFaceDirectoryOptions = {},
): Promise<{ model: BertModel; report: HuggingFaceLoadReport }> {
  const configPath = path.join(directory, CONFIG_FILE);
  const json = await readConfigJson(configPath);
  const config = inFile(configPath, () => configFromHuggingFace(json));
  const task = options.task ?? inFile(configPath, () => taskFromHuggingFace(json));
  if (task === undefined) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${configPath} names no task head this package builds (architectures ${JSON.stringify(json.architectures)}).`,
      fix: "Pass options.task, for example { type: 'classification', numLabels: 2 }.",
    });
  }
  const weightsPath = path.join(directory, WEIGHTS_FILE);
  const file = await readSafetensorsFile(weightsPath);
  // Every tensor is checked against the config (names, shapes, finite values) before the model exists.
  const plan = inFile(weightsPath, () => planHuggingFaceLoad(config, task, file, options.strict ?? true));
  const model = createBertModel({
    config,
    task,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.freezeEmbeddings !== undefined ? { freezeEmbeddings: options.freezeEmbeddings } : {}),
  });
  try {
    applyHuggingFaceLoad(model, plan);
    return { model, report: plan.report };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
export {
  type BertPrunerStateSource,
  CHECKPOINT_INDEX_FILE,
  hasBertCheckpoint,
  type LoadedBertCheckpoint,
  loadBertCheckpoint,
  saveBertCheckpoint,
} from './training-checkpoint';
