/**
 * model.json as untrusted input: bounded parsing, the structure of its weights manifest, the bytes
 * each entry needs, and what kind of artefact it describes. Pure: no file access.
 */

import type * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError, type FinepruneErrorCode } from '@fineprune/tensor/errors';
import { checkJsonBounds, quoteText } from '@fineprune/tensor/untrusted';

/** The file that names the model's topology and weights files. */
export const MODEL_JSON = 'model.json';
/** The top-level key of model.json that holds the content hashes {@link fileSystem} writes. */
export const INTEGRITY_KEY = 'finepruneIntegrity';

/** The checkpoint format version from which checkpoints carry content hashes. */
export const SEALED_CHECKPOINT_VERSION = 2;

/** True when model.json says it is a checkpoint of a format written with content hashes. */
export function declaresSealedCheckpoint(json: Record<string, unknown>): boolean {
  const metadata = json.userDefinedMetadata;
  if (!isPlainObject(metadata) || !isPlainObject(metadata.fineprune)) return false;
  const version = metadata.fineprune.formatVersion;
  return typeof version !== 'number' || version >= SEALED_CHECKPOINT_VERSION;
}

/** Deepest nesting accepted in model.json (a layers topology nests about 12 levels). */
const MAX_MODEL_JSON_DEPTH = 64;
/** Most JSON values accepted in model.json (a model with 10,000 weights needs about 100,000). */
const MAX_MODEL_JSON_VALUES = 2_000_000;
/** Most dimensions of one weight. */
const MAX_RANK = 32;
/** Longest name kept in error details. */
const QUOTED_LENGTH = 120;

/** A name from the file, quoted and cut short for a message. */
export const quote = quoteText;

/** A FinepruneError about a file, naming it (and the entry) in its details. */
export function fileError(
  code: FinepruneErrorCode,
  message: string,
  fix: string,
  details: Record<string, unknown>,
  cause?: unknown,
): FinepruneError {
  return new FinepruneError({ code, message, fix, details, ...(cause !== undefined ? { cause } : {}) });
}

const RESAVE =
  'The file is damaged or was edited; save the model again or restore the directory from a backup.';

function corrupt(file: string, message: string, details: Record<string, unknown> = {}): FinepruneError {
  return fileError(ErrorCodes.CHECKPOINT_CORRUPT, `${file} ${message}`, RESAVE, { file, ...details });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses model.json text after checking its structure is bounded (depth and value count), so a
 * file of nested brackets fails in one linear scan instead of exhausting memory.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the file
 */
export function parseModelJson(text: string, file: string): Record<string, unknown> {
  const excess = checkJsonBounds(text, { maxDepth: MAX_MODEL_JSON_DEPTH, maxValues: MAX_MODEL_JSON_VALUES });
  if (excess) {
    throw corrupt(file, `${excess.description} (at character ${excess.offset}); no model.json does.`, {
      bound: excess.bound,
      limit: excess.limit,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw fileError(
      ErrorCodes.CHECKPOINT_CORRUPT,
      `${file} is not valid JSON: ${(error as Error).message.slice(0, 200)}`,
      'The file is damaged or was cut short; save the model again or restore it from a backup.',
      { file },
      error,
    );
  }
  if (!isPlainObject(json)) throw corrupt(file, `is ${describe(json)}, not a JSON object.`);
  return json;
}

/**
 * What a model.json describes: a fineprune `checkpoint` (`userDefinedMetadata.fineprune`), a
 * `graph-model` (TF.js converter output, which a layers loader cannot read), or a plain layers
 * `model` (an export, or any model saved by TF.js).
 *
 * @example
 * ```ts
 * artefactKind(JSON.parse(text)); // 'checkpoint'
 * ```
 */
export type ArtefactKind = 'checkpoint' | 'graph-model' | 'model';

/** The {@link ArtefactKind} of a parsed model.json. */
export function artefactKind(json: Record<string, unknown>): ArtefactKind {
  const metadata = json.userDefinedMetadata;
  if (isPlainObject(metadata) && metadata.fineprune !== undefined) return 'checkpoint';
  const topology = json.modelTopology;
  if (json.format === 'graph-model') return 'graph-model';
  if (isPlainObject(topology) && (Array.isArray(topology.node) || isPlainObject(topology.versions)))
    return 'graph-model';
  return 'model';
}

/** Bytes per element of a manifest entry, by its storage (quantized) dtype. */
function bytesPerElement(entry: tf.io.WeightsManifestEntry): number {
  const quantized = entry.quantization?.dtype;
  if (quantized === 'uint8') return 1;
  if (quantized === 'uint16' || quantized === 'float16') return 2;
  if (entry.dtype === 'bool') return 1;
  if (entry.dtype === 'complex64') return 8;
  return 4; // float32, int32
}

/** The bytes a manifest entry of a fixed-size dtype occupies: product(shape) × stored element size. */
export function entryByteLength(entry: tf.io.WeightsManifestEntry): number {
  return entry.shape.reduce((product, dimension) => product * dimension, 1) * bytesPerElement(entry);
}

const DTYPES = new Set(['float32', 'int32', 'bool', 'complex64']);
const QUANTIZED_DTYPES = new Set(['uint8', 'uint16', 'float16']);

/**
 * A manifest entry checked for structure, with the byte range it occupies in the concatenated
 * weights data.
 */
export interface CheckedEntry {
  spec: tf.io.WeightsManifestEntry;
  /** Offset of the entry's bytes in the concatenation of all weights files. */
  begin: number;
  /** Byte length: product(shape) × bytes per stored element. */
  byteLength: number;
}

/** One manifest group: its files and its entries. */
export interface CheckedGroup {
  paths: string[];
  entries: CheckedEntry[];
}

function checkShape(file: string, where: string, shape: unknown, entry: Record<string, unknown>): number {
  if (!Array.isArray(shape))
    throw corrupt(file, `has ${where} whose shape is ${describe(shape)}, not an array.`, entry);
  if (shape.length > MAX_RANK)
    throw corrupt(
      file,
      `has ${where} with ${shape.length} dimensions; at most ${MAX_RANK} are supported.`,
      entry,
    );
  let count = 1;
  for (const [axis, dimension] of shape.entries()) {
    if (typeof dimension !== 'number' || !Number.isSafeInteger(dimension) || dimension < 0)
      throw corrupt(
        file,
        `has ${where} whose dimension ${axis} is ${quote(JSON.stringify(dimension) ?? 'missing')}, not a non-negative integer.`,
        entry,
      );
    count *= dimension;
    if (!Number.isSafeInteger(count))
      throw corrupt(file, `has ${where} whose shape holds more than 2^53 elements.`, entry);
  }
  return count;
}

function checkQuantization(
  file: string,
  where: string,
  quantization: unknown,
  entry: Record<string, unknown>,
): void {
  if (quantization === undefined) return;
  if (!isPlainObject(quantization) || !QUANTIZED_DTYPES.has(quantization.dtype as string))
    throw corrupt(
      file,
      `has ${where} with a quantization that is not { dtype: 'uint8' | 'uint16' | 'float16', … }.`,
      entry,
    );
  if (quantization.dtype !== 'float16') {
    const finite = (value: unknown) => typeof value === 'number' && Number.isFinite(value);
    if (!finite(quantization.scale) || !finite(quantization.min))
      throw corrupt(
        file,
        `has ${where} whose ${quantization.dtype} quantization lacks a finite scale and min.`,
        entry,
      );
  }
}

function checkEntry(file: string, group: number, index: number, value: unknown): tf.io.WeightsManifestEntry {
  const where = `weightsManifest[${group}].weights[${index}]`;
  if (!isPlainObject(value))
    throw corrupt(file, `has a ${where} that is ${describe(value)}, not { name, shape, dtype }.`, {
      entry: where,
    });
  const { name, dtype } = value;
  if (typeof name !== 'string' || name.length === 0)
    throw corrupt(file, `has a ${where} whose name is ${describe(name)}, not a non-empty string.`, {
      entry: where,
    });
  const named = `the weight ${quote(name)} (${where})`;
  if (typeof dtype !== 'string' || !DTYPES.has(dtype)) {
    throw fileError(
      ErrorCodes.CHECKPOINT_CORRUPT,
      `${file} declares ${named} with dtype ${quote(dtype)}; a layers model stores float32, int32, bool or complex64.`,
      dtype === 'string'
        ? 'String weights are not supported by fileSystem(); save the model without them.'
        : RESAVE,
      { file, entry: name.slice(0, QUOTED_LENGTH) },
    );
  }
  const entry = { entry: name.slice(0, QUOTED_LENGTH) };
  checkShape(file, named, value.shape, entry);
  checkQuantization(file, named, value.quantization, entry);
  return value as unknown as tf.io.WeightsManifestEntry;
}

function checkPath(file: string, group: number, index: number, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0'))
    throw corrupt(
      file,
      `has weightsManifest[${group}].paths[${index}] that is ${describe(value)}, not a file name.`,
    );
  return value;
}

/**
 * Checks a parsed model.json's `modelTopology` and `weightsManifest`: every group has `paths` (file
 * names) and `weights` (entries with a non-empty unique name, a known dtype, a shape of
 * non-negative integers, a well-formed quantization), and the whole manifest describes at most
 * `maxWeightBytes` bytes. Returns the groups with each entry's byte range.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the file and the entry; `CHECKPOINT_MISMATCH`
 *   for a graph model; `IO_FAILED`-free (no file is read here)
 */
export function checkManifest(
  json: Record<string, unknown>,
  file: string,
  maxWeightBytes: number,
): { groups: CheckedGroup[]; totalBytes: number } {
  if (artefactKind(json) === 'graph-model') {
    throw fileError(
      ErrorCodes.CHECKPOINT_MISMATCH,
      `${file} describes a TF.js graph model (format ${quote(json.format ?? 'graph')}), not a layers model; fileSystem() and fineprune load layers models only.`,
      'Load graph models with tf.loadGraphModel(); to prune, start from the Keras/layers model it was converted from (tensorflowjs_converter --output_format=tfjs_layers_model).',
      { file, format: json.format ?? null },
    );
  }
  if (!isPlainObject(json.modelTopology))
    throw corrupt(file, `has a modelTopology that is ${describe(json.modelTopology)}, not an object.`);
  // A layers topology is { class_name, config } (TF.js also accepts it wrapped in model_config).
  const topology = isPlainObject(json.modelTopology.model_config)
    ? json.modelTopology.model_config
    : json.modelTopology;
  if (typeof topology.class_name !== 'string' || !isPlainObject(topology.config)) {
    throw corrupt(
      file,
      `has a modelTopology without a class_name and a config object; it is not a layers model topology.`,
      {
        entry: 'modelTopology',
      },
    );
  }
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest))
    throw corrupt(file, `has a weightsManifest that is ${describe(manifest)}, not an array of groups.`);
  const names = new Set<string>();
  const groups: CheckedGroup[] = [];
  let totalBytes = 0;
  for (const [groupIndex, group] of manifest.entries()) {
    if (!isPlainObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw corrupt(
        file,
        `has weightsManifest[${groupIndex}] that is ${describe(group)}, not { paths: [...], weights: [...] }.`,
        { entry: `weightsManifest[${groupIndex}]` },
      );
    }
    const paths = group.paths.map((value, index) => checkPath(file, groupIndex, index, value));
    const entries: CheckedEntry[] = [];
    for (const [index, value] of group.weights.entries()) {
      const spec = checkEntry(file, groupIndex, index, value);
      if (names.has(spec.name))
        throw corrupt(file, `names the weight ${quote(spec.name)} twice.`, {
          entry: spec.name.slice(0, QUOTED_LENGTH),
        });
      names.add(spec.name);
      const byteLength = entryByteLength(spec);
      entries.push({ spec, begin: totalBytes, byteLength });
      totalBytes += byteLength;
      if (!Number.isSafeInteger(totalBytes) || totalBytes > maxWeightBytes) {
        throw fileError(
          ErrorCodes.CHECKPOINT_CORRUPT,
          `${file} declares more than ${maxWeightBytes} bytes of weights (reached at ${quote(spec.name)}), more than this loader accepts.`,
          'If the model really is that large, pass a larger maxWeightBytes to fileSystem(directory, { maxWeightBytes }); otherwise the file is damaged.',
          { file, entry: spec.name.slice(0, QUOTED_LENGTH), maxWeightBytes },
        );
      }
    }
    if (entries.length > 0 && paths.length === 0)
      throw corrupt(file, `has weightsManifest[${groupIndex}] with weights but no paths.`);
    groups.push({ paths, entries });
  }
  return { groups, totalBytes };
}
