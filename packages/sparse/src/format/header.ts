/**
 * The JSON header of a compact sparse export, and its validation as untrusted input: every field's
 * type and range, tensor byte ranges that tile the data section exactly, the byte length each entry's
 * layout implies, and a bound on the memory the tensors take once densified.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import { MAX_LAYOUT_ELEMENTS } from '../layout/compressed-rows';
import { channelView } from './channel-rows';
import { bitmapBytes, MATRIX_LAYOUTS, type MatrixLayout } from './tensor-layouts';
import { bytesPerValue, scaleBytes, VALUE_ENCODINGS, type ValueEncoding } from './values';

/**
 * The `format` field of every compact export.
 *
 * @example
 * ```ts
 * header.format === COMPACT_FORMAT; // 'fineprune-sparse'
 * ```
 */
export const COMPACT_FORMAT = 'fineprune-sparse';
/**
 * The format version this package writes and reads.
 *
 * @example
 * ```ts
 * if (header.formatVersion !== COMPACT_FORMAT_VERSION) console.log('another version');
 * ```
 */
export const COMPACT_FORMAT_VERSION = 1;
/**
 * Most tensors a header may list.
 *
 * @example
 * ```ts
 * if (tensors.length > MAX_COMPACT_TENSORS) throw new Error('split the model');
 * ```
 */
export const MAX_COMPACT_TENSORS = 100_000;
/** Most dimensions of a tensor. */
const MAX_RANK = 8;
/** Longest tensor name. */
const MAX_NAME_LENGTH = 4096;
/** Most entries of one tensor (typed arrays and int32 positions must hold them). */
const MAX_TENSOR_ENTRIES = 2 ** 31 - 1;

/**
 * What model a compact export holds besides its tensors: a TF.js layers model (its topology and the
 * other fields of model.json but the weights manifest), a Hugging Face model (its config.json), or
 * plain named tensors.
 *
 * @example
 * ```ts
 * const model: CompactModelDescription = { kind: 'huggingface', config: { model_type: 'bert', hidden_size: 128 } };
 * ```
 */
export type CompactModelDescription =
  | { kind: 'layers-model'; artifacts: LayersModelFields }
  | { kind: 'huggingface'; config: Record<string, unknown> }
  | { kind: 'tensors'; metadata?: Record<string, unknown> };

/**
 * The fields of a TF.js model.json a compact export keeps (everything but the weights manifest).
 *
 * @example
 * ```ts
 * const fields: LayersModelFields = { modelTopology: model.toJSON(null, false) as object, format: 'layers-model' };
 * ```
 */
export interface LayersModelFields {
  modelTopology: Record<string, unknown>;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  trainingConfig?: Record<string, unknown>;
  signature?: Record<string, unknown>;
  userDefinedMetadata?: Record<string, unknown>;
}

/**
 * How one tensor is stored: `vector` (every value as float32: biases, norms, tensors of rank < 2),
 * or a matrix layout with its channel axis and value encoding.
 *
 * @example
 * ```ts
 * const entry: CompactTensorEntry = {
 *   name: 'dense_1/kernel', shape: [784, 300], layout: 'delta', values: 'int8', channelAxis: 1,
 *   nonzeros: 23520, indexBytes: 24012, offset: 0, byteLength: 48732,
 * };
 * ```
 */
export interface CompactTensorEntry {
  name: string;
  shape: number[];
  layout: 'vector' | MatrixLayout;
  values: ValueEncoding;
  /** Matrices: the output-channel axis, 0 or rank − 1. */
  channelAxis?: number;
  /** `bitmap` and `delta`: the stored entries. */
  nonzeros?: number;
  /** `delta`: bytes of the coded indices, which precede the value block. */
  indexBytes?: number;
  /** Byte offset in the data section. */
  offset: number;
  byteLength: number;
}

/**
 * The header of a compact export (the JSON after the magic bytes and its length).
 *
 * @example
 * ```ts
 * const { header } = await readCompactModel(bytes);
 * console.log(header.tensors.map((entry) => `${entry.name}: ${entry.layout} ${entry.values}`));
 * ```
 */
export interface CompactHeader {
  format: typeof COMPACT_FORMAT;
  formatVersion: typeof COMPACT_FORMAT_VERSION;
  model: CompactModelDescription;
  tensors: CompactTensorEntry[];
  /** Bytes of the data section. */
  dataBytes: number;
  /** SHA-256 of the header text without this field, and of the data section. */
  integrity?: { algorithm: 'sha256'; header: string; data: string };
}

/** The number of entries of a shape. */
export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

/** Whether a tensor of this shape can be stored as a matrix (rank ≥ 2, no empty axis). */
export function isMatrixShape(shape: readonly number[]): boolean {
  return shape.length >= 2 && shapeSize(shape) > 0;
}

/** The bytes an entry's layout implies (for `delta`, given its `indexBytes`). */
export function impliedByteLength(entry: CompactTensorEntry): number {
  if (entry.layout === 'vector') return 4 * shapeSize(entry.shape);
  const { channels, positions } = channelView(entry.shape, entry.channelAxis!);
  const valueBytes = (count: number) =>
    scaleBytes(entry.values, channels) + count * bytesPerValue(entry.values);
  if (entry.layout === 'dense') return valueBytes(channels * positions);
  if (entry.layout === 'bitmap') return bitmapBytes(channels * positions) + valueBytes(entry.nonzeros!);
  return entry.indexBytes! + valueBytes(entry.nonzeros!);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : quoteText(JSON.stringify(value));
}

function isCount(value: unknown, limit = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= limit;
}

/**
 * A `CHECKPOINT_CORRUPT` error about a compact export, naming the file and the entry.
 *
 * @example
 * ```ts
 * throw corruptCompact('model.fpsparse', 'dense_1/kernel', 'its bitmap sets 3 bits, not 4');
 * ```
 */
export function corruptCompact(source: string, entry: string, problem: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.CHECKPOINT_CORRUPT,
    message: `${source}: ${entry === '' ? '' : `${quoteText(entry)}: `}${problem}.`,
    fix: 'The compact export is damaged, cut short or was edited; export the model again (fineprune export --format sparse) or restore the file.',
    details: { file: source, entry: entry.slice(0, 200) },
  });
}

/** Limits of {@link validateHeader}. */
export interface HeaderLimits {
  /** Most bytes the tensors may take as float32 once densified. */
  maxDenseBytes: number;
}

function checkModel(model: unknown, fail: (problem: string) => FinepruneError): CompactModelDescription {
  if (!isPlainObject(model)) throw fail(`its model is ${describe(model)}, not an object`);
  if (model.kind === 'layers-model') {
    const artifacts = model.artifacts;
    if (!isPlainObject(artifacts) || !isPlainObject(artifacts.modelTopology))
      throw fail('its layers model has no modelTopology object');
    return model as CompactModelDescription;
  }
  if (model.kind === 'huggingface') {
    if (!isPlainObject(model.config)) throw fail('its Hugging Face model has no config object');
    return model as CompactModelDescription;
  }
  if (model.kind === 'tensors') {
    if (model.metadata !== undefined && !isPlainObject(model.metadata))
      throw fail('its tensors metadata is not an object');
    return model as CompactModelDescription;
  }
  throw fail(
    `its model kind is ${describe(model.kind)}; 'layers-model', 'huggingface' or 'tensors' expected`,
  );
}

function checkShape(shape: unknown, fail: (problem: string) => FinepruneError): number[] {
  if (!Array.isArray(shape) || shape.length > MAX_RANK)
    throw fail(`its shape is ${describe(shape)}, not an array of at most ${MAX_RANK} dimensions`);
  let size = 1;
  for (const dimension of shape) {
    if (!isCount(dimension, MAX_TENSOR_ENTRIES))
      throw fail(`its shape [${shape.map(describe).join(', ')}] holds something other than sizes`);
    size *= dimension;
    if (size > MAX_TENSOR_ENTRIES) throw fail(`its shape holds more than ${MAX_TENSOR_ENTRIES} entries`);
  }
  return shape as number[];
}

/** Checks one entry's fields (not yet its place in the data section). */
function checkEntry(value: unknown, index: number, source: string): CompactTensorEntry {
  if (!isPlainObject(value))
    throw corruptCompact(source, '', `its tensors[${index}] is ${describe(value)}, not an object`);
  const { name } = value;
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH)
    throw corruptCompact(source, '', `its tensors[${index}] has the name ${describe(name)}`);
  const fail = (problem: string) => corruptCompact(source, name, problem);
  const shape = checkShape(value.shape, fail);
  const layout = value.layout as CompactTensorEntry['layout'];
  const values = value.values as ValueEncoding;
  if (layout !== 'vector' && !MATRIX_LAYOUTS.includes(layout as MatrixLayout))
    throw fail(`its layout is ${describe(layout)}; 'vector', 'dense', 'bitmap' or 'delta' expected`);
  if (!VALUE_ENCODINGS.includes(values)) throw fail(`its value encoding is ${describe(values)}`);
  if (!isCount(value.offset) || !isCount(value.byteLength))
    throw fail('its offset or byteLength is not a byte count');
  if (layout === 'vector') {
    if (values !== 'float32') throw fail('a vector must be stored as float32');
    return value as unknown as CompactTensorEntry;
  }
  if (!isMatrixShape(shape)) throw fail(`a ${layout} matrix needs a shape of rank ≥ 2 with no empty axis`);
  const { channelAxis } = value;
  if (channelAxis !== 0 && channelAxis !== shape.length - 1)
    throw fail(`its channelAxis is ${describe(channelAxis)}; 0 or ${shape.length - 1} expected`);
  const view = channelView(shape, channelAxis);
  if (view.channels > MAX_LAYOUT_ELEMENTS || view.positions > MAX_LAYOUT_ELEMENTS)
    throw fail(
      `it has ${view.channels} channels of ${view.positions} positions; the sparse layouts hold at most ${MAX_LAYOUT_ELEMENTS} of each`,
    );
  if (layout !== 'dense' && !isCount(value.nonzeros, shapeSize(shape)))
    throw fail(`its nonzeros is ${describe(value.nonzeros)}, not a count up to ${shapeSize(shape)}`);
  if (layout === 'delta' && !isCount(value.indexBytes, value.byteLength as number))
    throw fail(`its indexBytes is ${describe(value.indexBytes)}`);
  return value as unknown as CompactTensorEntry;
}

/**
 * Checks a parsed header (its integrity record already taken out): the format and version, the
 * model description, every tensor entry, names unique, byte ranges tiling the data section in order
 * (each tensor starts where the previous ends) with the lengths their layouts imply, and the
 * densified size within the limit.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the file and the entry
 */
export function validateHeader(json: unknown, source: string, limits: HeaderLimits): CompactHeader {
  const fail = (problem: string) => corruptCompact(source, '', problem);
  if (!isPlainObject(json)) throw fail('its header is not a JSON object');
  if (json.format !== COMPACT_FORMAT)
    throw fail(`its format is ${describe(json.format)}, not "${COMPACT_FORMAT}"`);
  if (json.formatVersion !== COMPACT_FORMAT_VERSION)
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `${source}: compact format version ${describe(json.formatVersion)}; this version of @fineprune/sparse reads version ${COMPACT_FORMAT_VERSION}.`,
      fix: 'Read it with the version of @fineprune/sparse that wrote it, or export the model again.',
      details: { file: source },
    });
  checkModel(json.model, fail);
  const { tensors } = json;
  if (!Array.isArray(tensors) || tensors.length > MAX_COMPACT_TENSORS)
    throw fail(`its tensors is ${describe(tensors)}, not a list of at most ${MAX_COMPACT_TENSORS} entries`);
  if (!isCount(json.dataBytes)) throw fail('its dataBytes is not a byte count');
  const names = new Set<string>();
  let end = 0;
  let denseBytes = 0;
  for (const [index, value] of tensors.entries()) {
    const entry = checkEntry(value, index, source);
    const bad = (problem: string) => corruptCompact(source, entry.name, problem);
    if (names.has(entry.name)) throw bad('the name appears twice');
    names.add(entry.name);
    if (entry.offset !== end)
      throw bad(`it starts at byte ${entry.offset}; the previous tensor ends at ${end}`);
    const implied = impliedByteLength(entry);
    if (entry.byteLength !== implied)
      throw bad(`its byteLength is ${entry.byteLength}; its ${entry.layout} layout needs ${implied}`);
    end += entry.byteLength;
    denseBytes += 4 * shapeSize(entry.shape);
    if (denseBytes > limits.maxDenseBytes)
      throw new FinepruneError({
        code: ErrorCodes.CHECKPOINT_CORRUPT,
        message: `${source}: its tensors take more than ${limits.maxDenseBytes} bytes as float32 (reached at ${quoteText(entry.name)}), more than this loader accepts.`,
        fix: 'If the model really is that large, pass a larger maxDenseBytes; otherwise the file is damaged.',
        details: { file: source, entry: entry.name.slice(0, 200), maxDenseBytes: limits.maxDenseBytes },
      });
  }
  if (end !== json.dataBytes) throw fail(`its tensors cover ${end} bytes; dataBytes says ${json.dataBytes}`);
  return json as unknown as CompactHeader;
}
