/**
 * The safetensors writer: a deterministic file from typed arrays.
 */

import { ErrorCodes } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import { corrupt, dtypeInfo, invalid } from './dtypes';
import { float32BitsToBfloat16Bits, float32BitsToFloat16Bits } from './half';

/**
 * The dtypes {@link encodeSafetensors} writes.
 *
 * @example
 * ```ts
 * const dtype: EncodableDtype = 'F16';
 * ```
 */
export type EncodableDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'BOOL';

const ENCODABLE: readonly EncodableDtype[] = ['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'BOOL'];

/**
 * One tensor to write: its dtype, shape and values in row-major order. Float dtypes take any
 * numbers (rounded to float32 first, then to F16/BF16 to nearest even); `I32` takes integers in
 * the int32 range; `I64` takes safe integers or a `BigInt64Array`; `U8` takes integers 0..255;
 * `BOOL` takes 0 and 1.
 *
 * @example
 * ```ts
 * const input: SafetensorsInput = { dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
 * ```
 */
export interface SafetensorsInput {
  /** The element type to store. */
  dtype: EncodableDtype;
  /** The dimensions, outermost first; `[]` for a scalar. */
  shape: readonly number[];
  /** `product(shape)` values. */
  data: ArrayLike<number> | BigInt64Array;
}

/**
 * Options of {@link encodeSafetensors}.
 *
 * @example
 * ```ts
 * encodeSafetensors(tensors, { format: 'pt' }, { overflow: 'saturate' } satisfies EncodeSafetensorsOptions);
 * ```
 */
export interface EncodeSafetensorsOptions {
  /**
   * What to do with a finite value beyond the largest finite value of its float dtype (65,504 for
   * F16, about 3.39e38 for BF16, 3.40e38 for F32), which rounding would turn into Infinity:
   * `'error'` (default) throws, `'saturate'` stores the largest finite value of the same sign.
   * Infinite and NaN inputs are stored as they are.
   */
  overflow?: 'error' | 'saturate';
}

/**
 * The smallest float32 magnitude each float dtype rounds to Infinity, and its largest finite value
 * (values are rounded to float32 first, as the writer does).
 */
const FLOAT_LIMITS: Readonly<Record<'F32' | 'F16' | 'BF16', { overflowsAt: number; largest: number }>> = {
  // IEEE 754 binary16: 65504 = (2 − 2^-10)·2^15; 65520 is the tie with 2^16, which rounds to even (Infinity).
  F16: { overflowsAt: 65520, largest: 65504 },
  // bfloat16 keeps 7 mantissa bits: largest (2 − 2^-7)·2^127; (2 − 2^-8)·2^127 is the tie that rounds up.
  BF16: { overflowsAt: (2 - 2 ** -8) * 2 ** 127, largest: (2 - 2 ** -7) * 2 ** 127 },
  // binary32: largest (2 − 2^-23)·2^127; what overflows float32 is already Infinity after Math.fround.
  F32: { overflowsAt: Number.POSITIVE_INFINITY, largest: (2 - 2 ** -23) * 2 ** 127 },
};

const NATIVE_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const METADATA_KEY = '__metadata__';
/** A lone UTF-16 surrogate, which UTF-8 cannot encode (TextEncoder would replace it with U+FFFD). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Planned {
  name: string;
  input: SafetensorsInput;
  size: number;
  elementBytes: number;
  begin: number;
  end: number;
}

function checkName(name: string): void {
  if (name.length === 0 || name === METADATA_KEY) {
    throw invalid(
      `A safetensors tensor cannot be named ${quoteText(name)}.`,
      name === METADATA_KEY
        ? 'Rename the tensor: __metadata__ is reserved for the metadata; pass metadata as the second argument.'
        : 'Give every tensor a non-empty name.',
      { name },
    );
  }
  if (LONE_SURROGATE.test(name)) {
    throw invalid(
      `The tensor name ${quoteText(name)} holds a lone UTF-16 surrogate, which UTF-8 cannot store.`,
      'Use a well-formed string as the name.',
      { name },
    );
  }
}

/** The index of the first finite value that `dtype` would round to Infinity, or −1. */
function firstOverflow(data: ArrayLike<number>, dtype: 'F32' | 'F16' | 'BF16'): number {
  if (dtype === 'F32' && data instanceof Float32Array) return -1;
  const { overflowsAt } = FLOAT_LIMITS[dtype];
  for (let index = 0; index < data.length; index += 1) {
    const value = data[index]!;
    if (Number.isFinite(value) && Math.abs(Math.fround(value)) >= overflowsAt) return index;
  }
  return -1;
}

function checkFloatRange(name: string, input: SafetensorsInput, overflow: 'error' | 'saturate'): void {
  const { dtype, data } = input;
  if ((dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') || overflow === 'saturate') return;
  const index = firstOverflow(data as ArrayLike<number>, dtype);
  if (index < 0) return;
  const value = (data as ArrayLike<number>)[index]!;
  throw invalid(
    `Tensor ${quoteText(name)} holds ${value} at index ${index}, beyond the largest finite ${dtype} value (${FLOAT_LIMITS[dtype].largest}); it would be stored as Infinity.`,
    `Scale the values, store the tensor as ${dtype === 'F16' ? 'F32 or BF16' : 'F32 from a Float32Array'}, or pass { overflow: 'saturate' } to store ±${FLOAT_LIMITS[dtype].largest} instead.`,
    { name: name.slice(0, 200), index, value },
  );
}

function checkValues(name: string, input: SafetensorsInput): void {
  const { dtype, data } = input;
  if (data instanceof BigInt64Array) {
    if (dtype !== 'I64') {
      throw invalid(
        `Tensor ${quoteText(name)} has BigInt64Array data but dtype ${dtype}.`,
        "Use dtype 'I64' for BigInt64Array data, or pass numbers.",
        { name },
      );
    }
    return;
  }
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
    if (data instanceof Float32Array || data instanceof Float64Array) return;
  } else if (
    (dtype === 'I32' && data instanceof Int32Array) ||
    (dtype === 'U8' && data instanceof Uint8Array)
  ) {
    return;
  }
  const [low, high] =
    dtype === 'I32'
      ? [-0x80000000, 0x7fffffff]
      : dtype === 'U8'
        ? [0, 255]
        : dtype === 'BOOL'
          ? [0, 1]
          : dtype === 'I64'
            ? [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER]
            : [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
  const integer = dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16';
  for (let index = 0; index < data.length; index += 1) {
    const value = data[index];
    if (
      typeof value !== 'number' ||
      (integer && !(Number.isInteger(value) && value >= low && value <= high))
    ) {
      throw invalid(
        `Tensor ${quoteText(name)} has the value ${String(value)} at index ${index}, which dtype ${dtype} cannot store${integer ? ` (integers in [${low}, ${high}])` : ''}.`,
        integer
          ? 'Round or clip the values first, or choose a dtype that holds them.'
          : 'Pass numbers (a Float32Array or an array of numbers).',
        { name, index },
      );
    }
  }
}

/** Checks one tensor and plans its size; `withValues` false checks the name, dtype and shape only. */
function plan(name: string, input: unknown, overflow: 'error' | 'saturate', withValues = true): Planned {
  checkName(name);
  if (typeof input !== 'object' || input === null) {
    throw invalid(
      `Tensor ${quoteText(name)} is ${input === null ? 'null' : typeof input}, not { dtype, shape, data }.`,
      "Pass objects such as { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }.",
      { name },
    );
  }
  const { dtype, shape, data } = input as Partial<SafetensorsInput>;
  if (!ENCODABLE.includes(dtype as EncodableDtype)) {
    throw invalid(
      `Tensor ${quoteText(name)} has the dtype ${JSON.stringify(dtype)}, which encodeSafetensors() does not write.`,
      `Use one of ${ENCODABLE.join(', ')}.`,
      { name, dtype },
    );
  }
  if (!Array.isArray(shape)) {
    throw invalid(`Tensor ${quoteText(name)} has no shape array.`, 'Pass shape as an array such as [2, 3].', {
      name,
    });
  }
  let size = 1;
  for (const [axis, dimension] of shape.entries()) {
    if (typeof dimension !== 'number' || !Number.isSafeInteger(dimension) || dimension < 0) {
      throw invalid(
        `Tensor ${quoteText(name)} has the shape [${shape.join(', ')}]: dimension ${axis} is not a non-negative integer.`,
        'Use non-negative integer dimensions.',
        { name, axis },
      );
    }
    size *= dimension;
  }
  if (
    data === null ||
    typeof data !== 'object' ||
    typeof (data as { length?: unknown }).length !== 'number' ||
    !Number.isSafeInteger(size)
  ) {
    throw invalid(
      `Tensor ${quoteText(name)} has no data array (or a shape too large to hold).`,
      'Pass data as a typed array or an array of numbers.',
      { name },
    );
  }
  if (data.length !== size) {
    throw corrupt(
      `Tensor ${quoteText(name)} has ${data.length} values but its shape [${shape.join(', ')}] needs ${size}.`,
      'Pass exactly product(shape) values in row-major order.',
      { name, length: data.length, expected: size },
      undefined,
      ErrorCodes.SHAPE_MISMATCH,
    );
  }
  const typed = input as SafetensorsInput;
  if (withValues) {
    checkValues(name, typed);
    checkFloatRange(name, typed, overflow);
  }
  return { name, input: typed, size, elementBytes: dtypeInfo(typed.dtype).bytes, begin: 0, end: 0 };
}

function checkMetadata(metadata: unknown): [string, string][] {
  if (metadata === undefined) return [];
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw invalid(
      'The safetensors metadata must be an object of strings.',
      "Pass metadata such as { format: 'pt' }.",
    );
  }
  const entries = Object.entries(metadata);
  for (const [key, value] of entries) {
    if (typeof value !== 'string' || LONE_SURROGATE.test(key) || LONE_SURROGATE.test(value)) {
      throw invalid(
        `The metadata value for ${JSON.stringify(key)} is ${typeof value === 'string' ? 'a string with a lone UTF-16 surrogate' : `a ${typeof value}`}; the format allows only (well-formed) strings.`,
        'Convert metadata values to strings, for example with JSON.stringify.',
        { key },
      );
    }
  }
  return (entries as [string, string][]).sort(([a], [b]) => compareCodeUnits(a, b));
}

/** The values with finite overflows replaced by the largest finite value of the same sign. */
function saturated(values: ArrayLike<number>, dtype: 'F32' | 'F16' | 'BF16'): ArrayLike<number> {
  if (firstOverflow(values, dtype) < 0) return values;
  const { overflowsAt, largest } = FLOAT_LIMITS[dtype];
  return Float64Array.from(values, (value) =>
    Number.isFinite(value) && Math.abs(Math.fround(value)) >= overflowsAt
      ? Math.sign(value) * largest
      : value,
  );
}

function writeData(out: Uint8Array, offset: number, item: Planned, nativeLittleEndian: boolean): void {
  const { dtype, data } = item.input;
  const count = item.size;
  const view = new DataView(out.buffer, out.byteOffset + offset, item.end - item.begin);
  const floating = dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
  // Checked already when overflows are errors; with 'saturate', clamp here.
  const values = floating ? saturated(data as ArrayLike<number>, dtype) : (data as ArrayLike<number>);
  switch (dtype) {
    case 'F32':
      // The layout puts every tensor at a multiple of its element size, so the view is aligned.
      if (nativeLittleEndian) new Float32Array(out.buffer, out.byteOffset + offset, count).set(values);
      else for (let index = 0; index < count; index += 1) view.setFloat32(4 * index, values[index]!, true);
      return;
    case 'F16':
    case 'BF16': {
      // Round to float32 once, then convert the bit patterns with integer arithmetic.
      const bits = new Uint32Array(Float32Array.from(values).buffer);
      const convert = dtype === 'F16' ? float32BitsToFloat16Bits : float32BitsToBfloat16Bits;
      if (nativeLittleEndian) {
        const halves = new Uint16Array(out.buffer, out.byteOffset + offset, count);
        for (let index = 0; index < count; index += 1) halves[index] = convert(bits[index]!);
      } else {
        for (let index = 0; index < count; index += 1) view.setUint16(2 * index, convert(bits[index]!), true);
      }
      return;
    }
    case 'I32':
      if (nativeLittleEndian) new Int32Array(out.buffer, out.byteOffset + offset, count).set(values);
      else for (let index = 0; index < count; index += 1) view.setInt32(4 * index, values[index]!, true);
      return;
    case 'I64':
      if (data instanceof BigInt64Array) {
        for (let index = 0; index < count; index += 1) view.setBigInt64(8 * index, data[index]!, true);
      } else {
        for (let index = 0; index < count; index += 1)
          view.setBigInt64(8 * index, BigInt(values[index]!), true);
      }
      return;
    case 'U8':
    case 'BOOL':
      out.set(values, offset);
      return;
  }
}

/** {@link encodeSafetensors} as on a platform of the given byte order (tests cover both paths). @internal */
export function encodeSafetensorsWith(
  tensors: Record<string, SafetensorsInput>,
  metadata: Record<string, string> | undefined,
  nativeLittleEndian: boolean,
  options: EncodeSafetensorsOptions = {},
): Uint8Array {
  const overflow = options.overflow ?? 'error';
  if (overflow !== 'error' && overflow !== 'saturate') {
    throw invalid(
      `encodeSafetensors() option overflow must be 'error' or 'saturate', got ${quoteText(overflow)}.`,
      "Leave it out (values beyond the dtype's range are an error) or pass 'saturate'.",
    );
  }
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors)) {
    throw invalid(
      'encodeSafetensors() needs an object mapping tensor names to { dtype, shape, data }.',
      "Pass for example { 'fc.weight': { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) } }.",
    );
  }
  const items = Object.entries(tensors).map(([name, input]) => plan(name, input, overflow));
  const { header, order, total } = layOut(items, checkMetadata(metadata));
  let out: Uint8Array;
  try {
    out = new Uint8Array(total);
  } catch (error) {
    throw corrupt(
      `The safetensors file would have ${total} bytes, more than this JavaScript engine can allocate.`,
      'Split the tensors over several files (shards), or write it with writeSafetensorsFileStreamed().',
      { bytes: total },
      error,
      ErrorCodes.INVALID_ARGUMENT,
    );
  }
  out.set(header, 0);
  for (const item of order) writeData(out, header.byteLength + item.begin, item, nativeLittleEndian);
  return out;
}

/**
 * The file layout of planned tensors: the header (length field, JSON, space padding), the tensors
 * in data order with their `begin`/`end` set, and the file's total size.
 */
function layOut(
  items: Planned[],
  metadataEntries: [string, string][],
): { header: Uint8Array; order: Planned[]; total: number } {
  // Data order: larger elements first, then by name, so each tensor starts at a multiple of its
  // element size once the data buffer starts 8-byte aligned (as the reference writer does).
  const order = items
    .slice()
    .sort((a, b) => b.elementBytes - a.elementBytes || compareCodeUnits(a.name, b.name));
  let dataLength = 0;
  for (const item of order) {
    item.begin = dataLength;
    dataLength += item.size * item.elementBytes;
    item.end = dataLength;
  }

  // Header keys: __metadata__ first, then tensor names in code-unit order. Built by hand, because
  // JavaScript objects list integer-like keys first whatever their insertion order.
  const parts: string[] = [];
  if (metadataEntries.length > 0) {
    const fields = metadataEntries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    parts.push(`${JSON.stringify(METADATA_KEY)}:{${fields.join(',')}}`);
  }
  for (const item of items.slice().sort((a, b) => compareCodeUnits(a.name, b.name))) {
    parts.push(
      `${JSON.stringify(item.name)}:{"dtype":${JSON.stringify(item.input.dtype)},"shape":[${item.input.shape.join(',')}],"data_offsets":[${item.begin},${item.end}]}`,
    );
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  // Pad with spaces (allowed by the format) so that 8 + N, the start of the data, is a multiple of 8.
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + headerLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerLength), true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.byteLength);
  return { header, order, total: header.byteLength + dataLength };
}

/**
 * One tensor of a streamed safetensors file: its dtype and shape now, its values when its turn
 * to be written comes (so that only one tensor's values need to exist at a time).
 *
 * @example
 * ```ts
 * const entry: StreamedTensor = { dtype: 'F32', shape: [2], values: async () => new Float32Array([1, 2]) };
 * ```
 */
export interface StreamedTensor {
  dtype: EncodableDtype;
  shape: readonly number[];
  /** The `product(shape)` values, asked for once, when the tensor is written. */
  values(): ArrayLike<number> | BigInt64Array | Promise<ArrayLike<number> | BigInt64Array>;
}

/**
 * The plan of a streamed safetensors file (see `writeSafetensorsFileStreamed` of
 * `@fineprune/safetensors/node`): its header bytes, then its tensors in data order, each encoded by
 * `encode()` when its values arrive. The bytes are those {@link encodeSafetensors} gives for the
 * same tensors and metadata.
 *
 * @param tensors - tensor name → {@link StreamedTensor}
 * @param metadata - optional `__metadata__` strings
 * @returns the header, the tensors in file order, and the total size
 * @throws FinepruneError as {@link encodeSafetensors} for names, dtypes, shapes and metadata;
 *   `encode()` throws as it does for values
 *
 * @example
 * ```ts
 * const plan = planSafetensorsStream({ bias: { dtype: 'F32', shape: [2], values: () => new Float32Array([1, 2]) } });
 * const chunks = [plan.header, ...(await Promise.all(plan.tensors.map((tensor) => tensor.encode())))];
 * ```
 */
export function planSafetensorsStream(
  tensors: Record<string, StreamedTensor>,
  metadata?: Record<string, string>,
  options: EncodeSafetensorsOptions = {},
): {
  header: Uint8Array;
  tensors: Array<{ name: string; byteLength: number; encode(): Promise<Uint8Array> }>;
  total: number;
} {
  const overflow = options.overflow ?? 'error';
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors)) {
    throw invalid(
      'planSafetensorsStream() needs an object mapping tensor names to { dtype, shape, values }.',
      "Pass for example { 'fc.weight': { dtype: 'F32', shape: [2], values: () => new Float32Array([1, 2]) } }.",
    );
  }
  const sources = new Map(Object.entries(tensors));
  // Plan from the shapes alone, with a stand-in of the right length; the values come later.
  const items = [...sources].map(([name, tensor]) => {
    const shape = Array.isArray(tensor?.shape) ? tensor.shape : [];
    const size = shape.reduce((product: number, dimension: number) => product * dimension, 1);
    const placeholder = { length: Number.isSafeInteger(size) && size >= 0 ? size : -1 };
    return plan(name, { dtype: tensor?.dtype, shape: tensor?.shape, data: placeholder }, overflow, false);
  });
  const { header, order, total } = layOut(items, checkMetadata(metadata));
  return {
    header,
    total,
    tensors: order.map((item) => ({
      name: item.name,
      byteLength: item.end - item.begin,
      async encode() {
        const source = sources.get(item.name)!;
        const data = await source.values();
        const checked = plan(item.name, { dtype: source.dtype, shape: source.shape, data }, overflow);
        const out = new Uint8Array(item.end - item.begin);
        writeData(out, 0, { ...checked, begin: 0, end: out.byteLength }, NATIVE_LITTLE_ENDIAN);
        return out;
      },
    })),
  };
}

/**
 * Writes tensors into a safetensors file in memory. The output is deterministic: the same input
 * gives the same bytes. Header keys are `__metadata__` (when given) and then the tensor names in
 * code-unit order; the header is padded with spaces so the data starts 8-byte aligned; data is laid
 * out larger element types first, then by name, so every tensor is aligned to its element size.
 * F16 and BF16 values are rounded from float32 to nearest, ties to even. A finite value beyond
 * the float dtype's range (65520 or 1e6 in F16) is an error, never a silent Infinity, unless
 * `options.overflow` is `'saturate'`.
 *
 * @param tensors - tensor name → {@link SafetensorsInput}
 * @param metadata - optional `__metadata__` strings (for example `{ format: 'pt' }`)
 * @param options - `overflow`: `'error'` (default) or `'saturate'`
 * @returns the file's bytes
 * @throws FinepruneError `INVALID_ARGUMENT` for an empty or reserved name, an unsupported dtype, a
 *   dimension that is not a non-negative integer, a value the dtype cannot store (an integer out
 *   of range, a finite float beyond the dtype's largest value) or non-string metadata; `SHAPE_MISMATCH` when the data length is not product(shape)
 *
 * @example
 * ```ts
 * const bytes = encodeSafetensors(
 *   { 'fc.weight': { dtype: 'F16', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } },
 *   { format: 'pt' },
 * );
 * readSafetensors(bytes).tensors.get('fc.weight')?.dtype; // 'F16'
 * ```
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
  options: EncodeSafetensorsOptions = {},
): Uint8Array {
  return encodeSafetensorsWith(tensors, metadata, NATIVE_LITTLE_ENDIAN, options);
}
