/**
 * A defensive parser for the IDX format of MNIST-style data sets
 * (http://yann.lecun.com/exdb/mnist/): a 4-byte magic number `0x00 0x00 <type> <ndims>`, `ndims`
 * big-endian uint32 dimension sizes, then the data, big-endian, row-major.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { nodeBuiltinSync } from '@fineprune/tensor/runtime';

/** Element types an IDX file can hold. */
export type IdxDataType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The typed array an {@link IdxDataType} decodes to. */
export type IdxTypedArray = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/**
 * A decoded IDX file.
 *
 * @example
 * ```ts
 * const { dataType, dims, data } = parseIdx(bytes);
 * // dataType 'uint8', dims [60000, 28, 28], data.length 47_040_000
 * ```
 */
export interface IdxFile {
  /** The element type named by the third magic byte. */
  dataType: IdxDataType;
  /** Dimension sizes, outermost first. */
  dims: number[];
  /** The elements in row-major order, in host byte order, in a buffer of their own. */
  data: IdxTypedArray;
}

/**
 * Checks {@link parseIdx} applies beyond the format itself.
 *
 * @example
 * ```ts
 * parseIdx(bytes, { name: 'train-labels-idx1-ubyte', expectedMagic: 2049, expectedDims: [60000] });
 * ```
 */
export interface ParseIdxOptions {
  /** How errors name the data (usually the file name). Default `'IDX data'`. */
  name?: string;
  /** The whole 32-bit magic number the file must have, e.g. 2051 (`0x0803`) for uint8 images of rank 3. */
  expectedMagic?: number;
  /** Dimension sizes the file must have; `-1` accepts any size on that axis. */
  expectedDims?: number[];
  /** The fix sentence to put in errors about malformed data. Default: a generic "re-download or reinstall". */
  fix?: string;
  /**
   * Largest (decompressed) file accepted, header included, in bytes. Default 1 GiB (MNIST's
   * training images are 47 MB). A gzipped file is inflated only up to the size its header
   * declares, so a decompression bomb fails after its first bytes.
   */
  maxBytes?: number;
}

/** The default of {@link ParseIdxOptions.maxBytes}: 1 GiB. */
const DEFAULT_MAX_BYTES = 2 ** 30;
/** Deflate expands at most 1032-fold, so a compressed prefix of n bytes inflates to at most this many bytes. */
const DEFLATE_MAX_RATIO = 1032;

interface TypeInfo {
  dataType: IdxDataType;
  size: number;
}

const TYPE_CODES: ReadonlyMap<number, TypeInfo> = new Map([
  [0x08, { dataType: 'uint8', size: 1 }],
  [0x09, { dataType: 'int8', size: 1 }],
  [0x0b, { dataType: 'int16', size: 2 }],
  [0x0c, { dataType: 'int32', size: 4 }],
  [0x0d, { dataType: 'float32', size: 4 }],
  [0x0e, { dataType: 'float64', size: 8 }],
]);

/**
 * The IDX type code (third magic byte) of each {@link IdxDataType}.
 *
 * @example
 * ```ts
 * const magic = (IDX_TYPE_CODES.uint8 << 8) | 3; // 2051, MNIST images
 * ```
 */
export const IDX_TYPE_CODES: Readonly<Record<IdxDataType, number>> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

const DEFAULT_FIX =
  'Re-download the file or reinstall the package that ships it; the file is corrupt or not IDX.';

function hex(value: number, digits: number): string {
  return `0x${value.toString(16).padStart(digits, '0')}`;
}

function invalid(message: string, fix: string, details: Record<string, unknown>, cause?: unknown): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_DATA, message, fix, details, cause });
}

/** True when the bytes start with the gzip magic `0x1f 0x8b`. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decodes an IDX file, gunzipping it first when it starts with the gzip magic `0x1f 0x8b`.
 *
 * Every structural fact is checked before anything large is allocated: the two zero magic bytes,
 * a known type code, a complete header, and that the dimension sizes times the element size equal
 * the bytes that follow the header exactly (a truncated or over-long file is rejected).
 * Multi-byte elements are read big-endian.
 *
 * @param bytes - The raw (optionally gzipped) file contents.
 * @param options - A name for error messages and optional expected magic number and dimensions.
 * @returns The element type, dimension sizes and a freshly allocated typed array of the elements.
 * @throws FinepruneError `INVALID_DATA` naming the file and the expected and actual values.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * const labels = parseIdx(readFileSync('train-labels-idx1-ubyte'), {
 *   name: 'train-labels-idx1-ubyte',
 *   expectedMagic: 2049,
 * });
 * console.log(labels.dims, labels.data[0]); // [60000] 5
 * ```
 */
export function parseIdx(bytes: Uint8Array, options: ParseIdxOptions = {}): IdxFile {
  const name = options.name ?? 'IDX data';
  const fix = options.fix ?? DEFAULT_FIX;
  if (!(bytes instanceof Uint8Array)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `parseIdx expects a Uint8Array (or Buffer) for ${name}, got ${typeof bytes}.`,
      fix: 'Pass the file contents, e.g. from fs.readFileSync(path).',
    });
  }
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (!(Number.isSafeInteger(maxBytes) && maxBytes >= 4)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `parseIdx maxBytes must be an integer of at least 4, got ${maxBytes}.`,
      fix: 'Leave it out for the default of 1 GiB, or pass a byte count.',
    });
  }
  if (isGzip(bytes)) bytes = gunzipBounded(bytes, { ...options, name, fix, maxBytes });
  const header = readHeader(bytes, { ...options, name, fix, maxBytes });
  const { type, dims, headerBytes, dataBytes } = header;
  const actualDataBytes = bytes.length - headerBytes;
  if (dataBytes !== actualDataBytes) {
    const kind = dataBytes > actualDataBytes ? 'truncated' : 'over-long';
    invalid(
      `${name} is ${kind}: its header declares dimensions [${dims.join(', ')}] of ${type.dataType} ` +
        `(${dataBytes} data bytes, ${headerBytes + dataBytes} bytes in all), but the file has ` +
        `${actualDataBytes} data bytes (${bytes.length} bytes in all).`,
      fix,
      {
        file: name,
        dims,
        dataType: type.dataType,
        expectedBytes: headerBytes + dataBytes,
        actualBytes: bytes.length,
      },
    );
  }
  return { dataType: type.dataType, dims, data: decode(bytes, headerBytes, header.elements, type.dataType) };
}

type CheckedOptions = ParseIdxOptions & { name: string; fix: string; maxBytes: number };

interface IdxHeader {
  type: TypeInfo;
  dims: number[];
  elements: number;
  headerBytes: number;
  dataBytes: number;
}

/**
 * Reads and checks the header at the start of `bytes` (the whole file, or only its first bytes):
 * the magic number, the type code, the dimensions against the expected ones, and the size they
 * declare against `maxBytes`.
 */
function readHeader(bytes: Uint8Array, options: CheckedOptions): IdxHeader {
  const { name, fix } = options;
  if (bytes.length < 4) {
    invalid(
      `${name} is too short to be IDX: it has ${bytes.length} bytes, the magic number alone needs 4.`,
      fix,
      { file: name, expectedBytes: 4, actualBytes: bytes.length },
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const typeCode = bytes[2]!;
  const rank = bytes[3]!;
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    invalid(`${name} is not IDX: its magic number ${hex(magic, 8)} must start with two zero bytes.`, fix, {
      file: name,
      magic,
    });
  }
  const type = TYPE_CODES.get(typeCode);
  if (type === undefined) {
    invalid(
      `${name} has unknown IDX type code ${hex(typeCode, 2)} (known: 0x08 uint8, 0x09 int8, 0x0b int16, ` +
        '0x0c int32, 0x0d float32, 0x0e float64).',
      fix,
      { file: name, magic, typeCode },
    );
  }
  if (options.expectedMagic !== undefined && magic !== options.expectedMagic) {
    invalid(
      `${name} has magic number ${magic} (${hex(magic, 8)}: ${type.dataType}, rank ${rank}), expected ` +
        `${options.expectedMagic} (${hex(options.expectedMagic, 8)}). Is it the wrong file (images for labels)?`,
      fix,
      { file: name, magic, expectedMagic: options.expectedMagic },
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    invalid(
      `${name} is truncated inside its header: rank ${rank} needs a ${headerBytes}-byte header, the file has ` +
        `${bytes.length} bytes.`,
      fix,
      { file: name, expectedBytes: headerBytes, actualBytes: bytes.length },
    );
  }
  const dims: number[] = [];
  let elements = 1;
  for (let axis = 0; axis < rank; axis++) {
    const size = view.getUint32(4 + 4 * axis, false);
    dims.push(size);
    elements *= size;
  }
  if (options.expectedDims !== undefined) {
    const expected = options.expectedDims;
    const matches =
      expected.length === rank && expected.every((size, axis) => size === -1 || size === dims[axis]);
    if (!matches) {
      const shown = expected.map((size) => (size === -1 ? '*' : String(size))).join(', ');
      invalid(`${name} has dimensions [${dims.join(', ')}], expected [${shown}].`, fix, {
        file: name,
        dims,
        expectedDims: expected,
      });
    }
  }
  const dataBytes = elements * type.size;
  if (!Number.isSafeInteger(dataBytes) || headerBytes + dataBytes > options.maxBytes) {
    invalid(
      `${name} declares dimensions [${dims.join(', ')}] of ${type.dataType}: ${headerBytes + dataBytes} bytes, ` +
        `more than the ${options.maxBytes} this reader accepts.`,
      `${fix} If the file really is that large, pass a larger maxBytes.`,
      {
        file: name,
        dims,
        dataType: type.dataType,
        expectedBytes: headerBytes + dataBytes,
        maxBytes: options.maxBytes,
      },
    );
  }
  return { type, dims, elements, headerBytes, dataBytes };
}

/** Node's zlib (gzipped IDX files are inflated only in Node; a browser passes inflated bytes). */
function zlib(name: string) {
  return nodeBuiltinSync('zlib', `parseIdx() of the gzipped ${name}`);
}

function decompressionFailed(name: string, fix: string, compressedBytes: number, error: unknown): never {
  return invalid(
    `${name} starts with the gzip magic but could not be decompressed (${(error as Error).message}).`,
    fix,
    { file: name, compressedBytes },
    error,
  );
}

/**
 * The header of a gzipped IDX file, from inflating only a prefix of it (growing fourfold until
 * the header is complete); undefined when even the whole stream holds no complete header.
 */
function gzippedHeader(bytes: Uint8Array, options: CheckedOptions): IdxHeader | undefined {
  const { gunzipSync, constants } = zlib(options.name);
  for (let length = 256; ; length *= 4) {
    const prefix = bytes.subarray(0, Math.min(length, bytes.length));
    let inflated: Uint8Array;
    try {
      inflated = gunzipSync(prefix, {
        finishFlush: constants.Z_SYNC_FLUSH,
        maxOutputLength: DEFLATE_MAX_RATIO * prefix.length + 1024,
      });
    } catch (error) {
      return decompressionFailed(options.name, options.fix, bytes.length, error);
    }
    const needed = inflated.length >= 4 ? 4 + 4 * inflated[3]! : 4;
    if (inflated.length >= needed) return readHeader(inflated, options);
    if (prefix.length === bytes.length) return undefined;
  }
}

/**
 * Inflates a gzipped IDX file to at most the size its header declares (plus one byte, to tell an
 * over-long file), so memory stays bounded by the declared size, itself bounded by `maxBytes`.
 */
function gunzipBounded(bytes: Uint8Array, options: CheckedOptions): Uint8Array {
  const header = gzippedHeader(bytes, options);
  const declared = header ? header.headerBytes + header.dataBytes : 4 + 4 * 255;
  try {
    return zlib(options.name).gunzipSync(bytes, { maxOutputLength: declared + 1 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      invalid(
        `${options.name} is over-long: it decompresses to more than the ${declared} bytes its header declares ` +
          `(dimensions [${header?.dims.join(', ')}]); it is damaged or a decompression bomb.`,
        options.fix,
        { file: options.name, expectedBytes: declared, compressedBytes: bytes.length },
        error,
      );
    }
    return decompressionFailed(options.name, options.fix, bytes.length, error);
  }
}

function decode(bytes: Uint8Array, offset: number, count: number, dataType: IdxDataType): IdxTypedArray {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dataType) {
    case 'uint8':
      return bytes.slice(offset, offset + count);
    case 'int8':
      return new Int8Array(bytes.slice(offset, offset + count).buffer);
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(offset + 2 * i, false);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(offset + 4 * i, false);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, false);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(offset + 8 * i, false);
      return out;
    }
  }
}

/**
 * Checks that every label is an integer in `[0, classes)`.
 *
 * @param labels - The labels to check.
 * @param classes - The number of classes.
 * @param name - How errors name the labels (usually the file name).
 * @param fix - The fix sentence for the error.
 * @throws FinepruneError `INVALID_DATA` naming the first bad label and its index.
 *
 * @example
 * ```ts
 * validateLabels(split.labels, 10, 'train-labels-idx1-ubyte');
 * ```
 */
export function validateLabels(
  labels: ArrayLike<number>,
  classes: number,
  name = 'labels',
  fix = DEFAULT_FIX,
): void {
  if (!Number.isInteger(classes) || classes < 1) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `classes must be a positive integer, got ${classes}.`,
      fix: 'Pass the number of classes, e.g. 10 for MNIST.',
    });
  }
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (!(Number.isInteger(label) && label >= 0 && label < classes)) {
      invalid(
        `${name} has label ${label} at index ${i}, outside the ${classes} classes 0..${classes - 1}.`,
        fix,
        { file: name, index: i, label, classes },
      );
    }
  }
}
