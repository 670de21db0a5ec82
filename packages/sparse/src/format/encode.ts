/**
 * Writing a compact sparse export: per tensor the smallest of the dense, bitmap and delta layouts in
 * the chosen value encoding (matrices; biases, norms and other vectors stay float32), a header, and
 * content hashes. A pruned model is never written larger than the model it came from unless the
 * caller allows it.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import type { CompressedRows, DenseValues } from '../layout/compressed-rows';
import { allChannelRows, channelRows, channelView } from './channel-rows';
import { assembleCompactModel } from './container';
import {
  COMPACT_FORMAT,
  COMPACT_FORMAT_VERSION,
  type CompactHeader,
  type CompactModelDescription,
  type CompactTensorEntry,
  impliedByteLength,
  isMatrixShape,
  shapeSize,
} from './header';
import {
  bitmapBytes,
  deltaIndexBytes,
  encodeBitmap,
  encodeDeltas,
  type MatrixLayout,
} from './tensor-layouts';
import { bytesPerValue, encodeValueBlock, scaleBytes, VALUE_ENCODINGS, type ValueEncoding } from './values';

/**
 * One tensor to export.
 *
 * @example
 * ```ts
 * const kernel: CompactTensorInput = { name: 'dense_1/kernel', shape: [784, 300], values: masked }; // zeros are pruned
 * const weight: CompactTensorInput = { name: 'bert.encoder.layer.0.attention.self.query.weight', shape: [128, 128], values, mask, channelAxis: 0 };
 * ```
 */
export interface CompactTensorInput {
  name: string;
  shape: readonly number[];
  /** The values, row-major, float32. */
  values: Float32Array;
  /** A 0/1 mask of the same size: 1 keeps the entry (even a zero), 0 drops it. Default: keep the nonzeros. */
  mask?: DenseValues;
  /**
   * The output-channel axis of a matrix: the last (default; TF.js kernels) or 0 (PyTorch / Hugging
   * Face Linear weights [out, in]). The int8 scales are per channel.
   */
  channelAxis?: number;
  /** Store as a matrix (sparse layouts, the value encoding). Default: rank ≥ 2. False keeps it float32. */
  matrix?: boolean;
}

/**
 * Options of {@link planCompactModel} and {@link encodeCompactModel}.
 *
 * @example
 * ```ts
 * const options: CompactExportOptions = { values: 'int8', referenceBytes: 2_600_000 };
 * ```
 */
export interface CompactExportOptions {
  /** How matrix values are stored. Default `'float32'` (exact). */
  values?: ValueEncoding;
  /**
   * The size of the model the export came from, in bytes: the export is refused when it would be
   * larger. Default: the tensors as float32 (4 bytes per entry).
   */
  referenceBytes?: number;
  /** Write the export even when it is larger than `referenceBytes`. Default false. */
  allowLarger?: boolean;
}

/**
 * How one tensor will be stored, and the bytes each candidate layout would take.
 *
 * @example
 * ```ts
 * const plan = planCompactModel(model, { values: 'int8' });
 * for (const tensor of plan.tensors) console.log(tensor.entry.name, tensor.entry.layout, tensor.candidates);
 * ```
 */
export interface PlannedTensor {
  entry: CompactTensorEntry;
  /** Bytes of each layout considered (matrices), the chosen one the smallest. */
  candidates: Partial<Record<'vector' | MatrixLayout, number>>;
  /** Kept entries by channel (matrices stored sparse). */
  rows?: CompressedRows;
  input: CompactTensorInput;
}

/**
 * A whole planned export: tensors, the byte count of the data section, and the reference size.
 *
 * @example
 * ```ts
 * const { dataBytes, referenceBytes } = planCompactModel(model, { values: 'int8' });
 * ```
 */
export interface CompactPlan {
  model: CompactModelDescription;
  values: ValueEncoding;
  tensors: PlannedTensor[];
  /** Bytes of the data section (the file adds its header, about 1–100 KB). */
  dataBytes: number;
  referenceBytes: number;
}

/**
 * What a compact export holds: a model description and its tensors.
 *
 * @example
 * ```ts
 * const input: CompactModelInput = { model: { kind: 'tensors' }, tensors: [{ name: 'w', shape: [2, 2], values }] };
 * ```
 */
export interface CompactModelInput {
  model: CompactModelDescription;
  tensors: readonly CompactTensorInput[];
}

function invalid(message: string, fix: string, details?: Record<string, unknown>): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message,
    fix,
    ...(details ? { details } : {}),
  });
}

function checkInput(input: CompactTensorInput): void {
  const name = quoteText(input?.name);
  if (typeof input?.name !== 'string' || input.name.length === 0)
    throw invalid(`A tensor to export has the name ${name}.`, 'Give every tensor a non-empty name.');
  if (
    !Array.isArray(input.shape) ||
    !input.shape.every((dimension) => Number.isSafeInteger(dimension) && dimension >= 0)
  )
    throw invalid(
      `The tensor ${name} has the shape ${JSON.stringify(input.shape)}.`,
      'Pass its shape as a list of sizes.',
    );
  if (!(input.values instanceof Float32Array) || input.values.length !== shapeSize(input.shape))
    throw invalid(
      `The tensor ${name} has ${input.values?.length} values for the shape [${input.shape}].`,
      'Pass its values as a Float32Array of the shape’s size (only float32 tensors are exported).',
    );
  for (let index = 0; index < input.values.length; index += 1) {
    if (!Number.isFinite(input.values[index]!))
      throw invalid(
        `The tensor ${name} holds ${input.values[index]} at index ${index}; an export holds finite numbers only.`,
        'The model diverged or was damaged; export a healthy model.',
        { tensor: input.name.slice(0, 200), index },
      );
  }
  const rank = input.shape.length;
  if (input.channelAxis !== undefined && input.channelAxis !== 0 && input.channelAxis !== rank - 1)
    throw invalid(
      `The tensor ${name} has channelAxis ${input.channelAxis}; it must be 0 or ${rank - 1}.`,
      'Name the output-channel axis: the last for TF.js kernels, 0 for PyTorch Linear weights.',
    );
}

function vectorPlan(input: CompactTensorInput): PlannedTensor {
  const entry: CompactTensorEntry = {
    name: input.name,
    shape: [...input.shape],
    layout: 'vector',
    values: 'float32',
    offset: 0,
    byteLength: 4 * input.values.length,
  };
  return { entry, candidates: { vector: entry.byteLength }, input };
}

/** The cheapest layout of one matrix in one value encoding (ties to the simpler layout). */
function matrixPlan(input: CompactTensorInput, values: ValueEncoding): PlannedTensor {
  const channelAxis = input.channelAxis ?? input.shape.length - 1;
  const view = channelView(input.shape, channelAxis);
  const rows = channelRows(input.values, input.shape, view, input.mask);
  const nonzeros = rows.inputIndices.length;
  const valueBytes = (count: number) => scaleBytes(values, view.channels) + count * bytesPerValue(values);
  const indexBytes = deltaIndexBytes(rows);
  const candidates = {
    dense: valueBytes(view.channels * view.positions),
    bitmap: bitmapBytes(view.channels * view.positions) + valueBytes(nonzeros),
    delta: indexBytes + valueBytes(nonzeros),
  };
  const layout = (['dense', 'bitmap', 'delta'] as const).reduce((best, next) =>
    candidates[next] < candidates[best] ? next : best,
  );
  const entry: CompactTensorEntry = {
    name: input.name,
    shape: [...input.shape],
    layout,
    values,
    channelAxis,
    ...(layout === 'dense' ? {} : { nonzeros }),
    ...(layout === 'delta' ? { indexBytes } : {}),
    offset: 0,
    byteLength: candidates[layout],
  };
  return { entry, candidates, ...(layout === 'dense' ? {} : { rows }), input };
}

/**
 * Plans a compact export without writing it: the layout of every tensor, the bytes of each candidate,
 * the size of the data section, and the reference size it is compared with.
 *
 * @param input - the model description and its tensors
 * @param options - the value encoding and the reference size
 * @returns the plan
 * @throws FinepruneError `INVALID_ARGUMENT` for a malformed tensor, a non-finite value, a mask entry
 *   other than 0/1, a duplicate name or an unknown value encoding
 *
 * @example
 * ```ts
 * const plan = planCompactModel({ model: { kind: 'tensors' }, tensors }, { values: 'int8' });
 * console.log(`${plan.dataBytes} bytes of tensors against ${plan.referenceBytes}`);
 * ```
 */
export function planCompactModel(input: CompactModelInput, options: CompactExportOptions = {}): CompactPlan {
  const values = options.values ?? 'float32';
  if (!VALUE_ENCODINGS.includes(values))
    throw invalid(
      `The value encoding ${quoteText(values)} is not one of ${VALUE_ENCODINGS.join(', ')}.`,
      "Pass values: 'float32', 'float16' or 'int8'.",
    );
  const names = new Set<string>();
  let offset = 0;
  const tensors = input.tensors.map((tensor) => {
    checkInput(tensor);
    if (names.has(tensor.name))
      throw invalid(`Two tensors are named ${quoteText(tensor.name)}.`, 'Give every tensor its own name.');
    names.add(tensor.name);
    const asMatrix = (tensor.matrix ?? tensor.shape.length >= 2) && isMatrixShape(tensor.shape);
    const planned = asMatrix ? matrixPlan(tensor, values) : vectorPlan(tensor);
    planned.entry.offset = offset;
    offset += planned.entry.byteLength;
    return planned;
  });
  const referenceBytes =
    options.referenceBytes ?? input.tensors.reduce((sum, tensor) => sum + 4 * tensor.values.length, 0);
  return { model: input.model, values, tensors, dataBytes: offset, referenceBytes };
}

/** The value block and index bytes of one planned tensor. */
function encodeTensor(planned: PlannedTensor): Uint8Array {
  const { entry, input, rows } = planned;
  if (entry.layout === 'vector') return new Uint8Array(Float32Array.from(input.values).buffer);
  const view = channelView(entry.shape, entry.channelAxis!);
  const stored = rows ?? allChannelRows(input.values, input.shape, view);
  const block = encodeValueBlock(entry.values, stored.values, stored.rowPointers);
  if (!(block instanceof Uint8Array)) {
    throw invalid(
      `The tensor ${quoteText(entry.name)} holds ${stored.values[block.overflow]}, which float16 cannot hold (its largest value is 65504).`,
      "Export with values 'float32' or 'int8' (int8 scales each channel).",
      { tensor: entry.name.slice(0, 200) },
    );
  }
  const indices =
    entry.layout === 'bitmap'
      ? encodeBitmap(stored)
      : entry.layout === 'delta'
        ? encodeDeltas(stored)
        : undefined;
  const bytes = new Uint8Array(entry.byteLength);
  if (indices) bytes.set(indices, 0);
  bytes.set(block, indices?.length ?? 0);
  if ((indices?.length ?? 0) + block.length !== impliedByteLength(entry))
    throw new Error(
      `compact export: ${entry.name} encoded to ${(indices?.length ?? 0) + block.length} bytes, planned ${entry.byteLength}`,
    );
  return bytes;
}

/**
 * The error of an export larger than the model it came from.
 *
 * @example
 * ```ts
 * throw largerThanSource(1_200_000, 1_066_440, 'float32');
 * ```
 */
export function largerThanSource(bytes: number, referenceBytes: number, values: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.LARGER_THAN_SOURCE,
    message: `The ${values} export would take ${bytes} bytes, more than the ${referenceBytes} bytes of the model it came from.`,
    fix: "Prune further or store smaller values (values 'int8' or 'float16'); to write it anyway, pass allowLarger (fineprune export --allow-larger).",
    details: { bytes, referenceBytes, values },
  });
}

/**
 * Encodes a compact sparse export (see the package README for the format): per tensor the smallest
 * of the dense, bitmap and delta layouts, values in float32, float16 or int8 with per-channel scales
 * (vectors stay float32), a JSON header with the model description, and SHA-256 content hashes.
 *
 * @param input - the model description and its tensors
 * @param options - value encoding, reference size, `allowLarger`
 * @returns the file bytes
 * @throws FinepruneError `INVALID_ARGUMENT` (see {@link planCompactModel}; also a value float16 cannot
 *   hold); `LARGER_THAN_SOURCE` when the file would be larger than `referenceBytes` and `allowLarger`
 *   is not set
 *
 * @example
 * ```ts
 * const bytes = await encodeCompactModel(
 *   { model: { kind: 'tensors' }, tensors: [{ name: 'w', shape: [784, 300], values: masked }] },
 *   { values: 'int8' },
 * );
 * ```
 */
export async function encodeCompactModel(
  input: CompactModelInput,
  options: CompactExportOptions = {},
): Promise<Uint8Array> {
  const plan = planCompactModel(input, options);
  const data = new Uint8Array(plan.dataBytes);
  for (const planned of plan.tensors) data.set(encodeTensor(planned), planned.entry.offset);
  const header: CompactHeader = {
    format: COMPACT_FORMAT,
    formatVersion: COMPACT_FORMAT_VERSION,
    model: plan.model,
    tensors: plan.tensors.map((planned) => planned.entry),
    dataBytes: plan.dataBytes,
  };
  const bytes = await assembleCompactModel(header, data);
  if (bytes.length > plan.referenceBytes && options.allowLarger !== true)
    throw largerThanSource(bytes.length, plan.referenceBytes, plan.values);
  return bytes;
}
