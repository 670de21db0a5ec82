/**
 * The safetensors reader: parses and checks the header, then hands out views of the data.
 *
 * Layout (huggingface/safetensors README, "Format"): 8 bytes little-endian u64 N, N bytes of UTF-8
 * JSON header, then the data buffer, which the header's `data_offsets` must index completely.
 */

import { checkJsonBounds, quoteText } from '@fineprune/tensor/untrusted';
import {
  type SafetensorsDtype,
  SAFETENSORS_DTYPES,
  corrupt,
  dtypeInfo,
  invalid,
  isSafetensorsDtype,
} from './dtypes';

/**
 * The default bound on the header length N: 100 MiB, the reference implementation's limit.
 *
 * @example
 * ```ts
 * readSafetensors(bytes, { maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES * 2 }); // allow a 200 MiB header
 * ```
 */
export const DEFAULT_MAX_HEADER_BYTES = 100 * 1024 * 1024;

/**
 * The default bound on the number of tensors in one file: 100,000 (BERT-large has about 400;
 * each entry costs about 1 KB to parse).
 *
 * @example
 * ```ts
 * readSafetensors(bytes, { maxTensors: DEFAULT_MAX_TENSORS * 4 });
 * ```
 */
export const DEFAULT_MAX_TENSORS = 100_000;
/**
 * The default bound on the number of `__metadata__` entries: 10,000.
 *
 * @example
 * ```ts
 * readSafetensors(bytes, { maxMetadataEntries: DEFAULT_MAX_METADATA_ENTRIES });
 * ```
 */
export const DEFAULT_MAX_METADATA_ENTRIES = 10_000;
/** A valid header nests 3 levels (header, tensor entry, shape); deeper text is refused before parsing. */
const MAX_HEADER_DEPTH = 8;
/** JSON values allowed per tensor entry in the value budget (an entry of rank r uses 6 + r). */
const VALUES_PER_TENSOR = 32;

/**
 * Options of {@link readSafetensors}.
 *
 * @example
 * ```ts
 * const options: ReadSafetensorsOptions = { maxHeaderBytes: 1024 * 1024, maxTensors: 1000 };
 * ```
 */
export interface ReadSafetensorsOptions {
  /** Refuse files whose header is longer than this many bytes. Default 100 MiB. */
  maxHeaderBytes?: number;
  /** Refuse headers with more tensors than this. Default {@link DEFAULT_MAX_TENSORS}. */
  maxTensors?: number;
  /** Refuse headers with more `__metadata__` entries than this. Default {@link DEFAULT_MAX_METADATA_ENTRIES}. */
  maxMetadataEntries?: number;
}

/**
 * One tensor of a {@link SafetensorsFile}: its header entry and a view of its bytes.
 *
 * @example
 * ```ts
 * const tensor = readSafetensors(bytes).tensors.get('fc1.weight')!;
 * console.log(tensor.dtype, tensor.shape, tensor.byteLength);
 * const values = decodeFloat32(tensor);
 * ```
 */
export interface SafetensorsTensor {
  /** The header key. */
  readonly name: string;
  /** The element type. */
  readonly dtype: SafetensorsDtype;
  /** The dimensions, outermost first (row-major, C order). `[]` is a scalar. */
  readonly shape: readonly number[];
  /** The header's `[begin, end)`, relative to the start of the data buffer. */
  readonly dataOffsets: readonly [number, number];
  /** Where the tensor's bytes start, counted from the start of the file (8 + N + begin). */
  readonly byteOffset: number;
  /** How many bytes the tensor holds: product(shape) × element size. */
  readonly byteLength: number;
  /** How many elements the tensor holds: product(shape). */
  readonly size: number;
  /**
   * The tensor's bytes (little-endian), as a view of the file's bytes: no copy, and writing into it
   * changes the file's bytes. May be unaligned for its element type.
   */
  bytes(): Uint8Array;
}

/**
 * A parsed safetensors file.
 *
 * @example
 * ```ts
 * const file: SafetensorsFile = readSafetensors(bytes);
 * for (const [name, tensor] of file.tensors) console.log(name, tensor.dtype, tensor.shape);
 * console.log(file.metadata.format); // for example 'pt'
 * ```
 */
export interface SafetensorsFile {
  /** The `__metadata__` strings (empty when the header has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** The tensors by name, in the order of their data (`begin` ascending). */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
  /** Where the data buffer starts in the file: 8 + N. */
  readonly dataOffset: number;
}

const METADATA_KEY = '__metadata__';
const REFERENCE =
  'Re-export the file (for example with safetensors.torch.save_file) or restore it from a copy.';

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'string' ? `the string ${JSON.stringify(value).slice(0, 60)}` : `a ${typeof value}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toUint8Array(bytes: Uint8Array | ArrayBuffer): Uint8Array {
  // A plain Uint8Array over the same memory: subclasses such as Node's Buffer change slice() into a view.
  if (bytes instanceof Uint8Array) {
    return bytes.constructor === Uint8Array
      ? bytes
      : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw invalid(
    `readSafetensors() needs a Uint8Array or an ArrayBuffer, got ${describe(bytes)}.`,
    'Pass the file contents, for example new Uint8Array(await response.arrayBuffer()).',
  );
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
  size: number;
}

function checkEntry(fullName: string, value: unknown, dataLength: number): Entry {
  // Errors keep at most 200 characters of the name in their details.
  const name = fullName.slice(0, 200);
  const where = `Tensor ${quoteText(fullName)} of the safetensors header`;
  if (!isPlainObject(value)) {
    throw corrupt(
      `${where} is ${describe(value)}, not an object with dtype, shape and data_offsets.`,
      REFERENCE,
      { name },
    );
  }
  for (const field of ['dtype', 'shape', 'data_offsets']) {
    if (!Object.hasOwn(value, field)) {
      throw corrupt(`${where} has no "${field}".`, REFERENCE, { name, field });
    }
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') {
    throw corrupt(`${where} has a dtype that is ${describe(dtype)}, not a string.`, REFERENCE, { name });
  }
  if (!isSafetensorsDtype(dtype)) {
    throw corrupt(
      `${where} has the dtype ${quoteText(dtype)}, which this reader does not support.`,
      `Convert the tensor to one of ${SAFETENSORS_DTYPES.join(', ')} before saving.`,
      { name, dtype },
    );
  }
  if (!Array.isArray(shape)) {
    throw corrupt(`${where} has a shape that is ${describe(shape)}, not an array.`, REFERENCE, { name });
  }
  let size = 1;
  for (const [axis, dimension] of shape.entries()) {
    if (typeof dimension !== 'number' || !Number.isSafeInteger(dimension) || dimension < 0) {
      throw corrupt(
        `${where} has the shape ${JSON.stringify(shape).slice(0, 80)}: dimension ${axis} is not a non-negative safe integer.`,
        REFERENCE,
        { name, axis },
      );
    }
    size *= dimension;
    if (!Number.isSafeInteger(size)) {
      throw corrupt(
        `${where} has the shape ${JSON.stringify(shape).slice(0, 80)}, whose element count exceeds 2^53.`,
        REFERENCE,
        { name },
      );
    }
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((offset) => typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0)
  ) {
    throw corrupt(
      `${where} has data_offsets ${JSON.stringify(offsets)?.slice(0, 80)}, not two non-negative safe integers [begin, end].`,
      REFERENCE,
      { name },
    );
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) {
    throw corrupt(`${where} has data_offsets [${begin}, ${end}] with begin after end.`, REFERENCE, {
      name,
      begin,
      end,
    });
  }
  if (end > dataLength) {
    throw corrupt(
      `${where} ends at data offset ${end}, past the end of the data buffer (${dataLength} bytes): the file is truncated.`,
      'The file was cut short (an interrupted download or copy); download or copy it again.',
      { name, end, dataLength },
    );
  }
  const elementBytes = dtypeInfo(dtype).bytes;
  const expected = size * elementBytes;
  if (end - begin !== expected) {
    throw corrupt(
      `${where} has ${end - begin} bytes (data_offsets [${begin}, ${end}]) but its shape [${shape.join(', ')}] of ${dtype} needs ${expected}.`,
      REFERENCE,
      { name, byteLength: end - begin, expected },
    );
  }
  return { name: fullName, dtype, shape: shape as number[], begin, end, size };
}

function readMetadata(value: unknown, maxEntries: number): Record<string, string> {
  if (!isPlainObject(value)) {
    throw corrupt(
      `The safetensors header's __metadata__ is ${describe(value)}, not an object of strings.`,
      REFERENCE,
    );
  }
  if (Object.keys(value).length > maxEntries) {
    throw corrupt(
      `The safetensors header's __metadata__ has ${Object.keys(value).length} entries, more than maxMetadataEntries (${maxEntries}).`,
      'If the file really holds that much metadata, raise maxMetadataEntries.',
      { entries: Object.keys(value).length, maxMetadataEntries: maxEntries },
    );
  }
  const entries: [string, string][] = [];
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      throw corrupt(
        `The safetensors header's __metadata__ value for ${quoteText(key)} is ${describe(entry)}; the format allows only strings.`,
        'Store metadata values as strings (for example JSON.stringify them) and save again.',
        { key: key.slice(0, 200) },
      );
    }
    entries.push([key, entry]);
  }
  return Object.freeze(Object.fromEntries(entries));
}

function readHeaderLength(source: Uint8Array, maxHeaderBytes: number): number {
  if (source.byteLength < 8) {
    throw corrupt(
      `The file has ${source.byteLength} bytes, fewer than the 8-byte header length of a safetensors file.`,
      'The file is empty or truncated, or not a safetensors file; download or copy it again.',
      { fileLength: source.byteLength },
    );
  }
  const view = new DataView(source.buffer, source.byteOffset, 8);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  // 2^53 = 2^32 · 2^21: a high word of 2^21 or more cannot be an exact JavaScript number.
  if (high >= 0x200000) {
    throw corrupt(
      `The header length field at offset 0 is ${(BigInt(high) << 32n) | BigInt(low)}, beyond 2^53: this is not a safetensors file.`,
      'Check that the file is a .safetensors file (not a pickle .bin or a Git LFS pointer) and not damaged.',
      { highWord: high, lowWord: low },
    );
  }
  const length = high * 2 ** 32 + low;
  if (length === 0) {
    throw corrupt(
      'The header length field at offset 0 is 0; a safetensors header is at least "{}".',
      'Check that the file is a .safetensors file and not damaged.',
    );
  }
  if (length > maxHeaderBytes) {
    throw corrupt(
      `The header length field at offset 0 is ${length} bytes, more than maxHeaderBytes (${maxHeaderBytes}).`,
      'Check that the file is a .safetensors file; if its header really is that large, raise maxHeaderBytes.',
      { headerLength: length, maxHeaderBytes },
    );
  }
  if (8 + length > source.byteLength) {
    throw corrupt(
      `The header length field says the header ends at byte ${8 + length}, past the end of the ${source.byteLength}-byte file: it is truncated or not a safetensors file.`,
      'The file was cut short or is not a safetensors file; download or copy it again.',
      { headerLength: length, fileLength: source.byteLength },
    );
  }
  return length;
}

interface HeaderLimits {
  maxTensors: number;
  maxMetadataEntries: number;
}

/**
 * Refuses header text whose structure exceeds what the limits allow, in one scan before
 * `JSON.parse` builds anything: nesting deeper than a header can be, more top-level entries than
 * `maxTensors` (+ `__metadata__`), an object or array with more entries than `maxMetadataEntries`,
 * or more values in all than the tensors and metadata could need.
 */
function checkHeaderBounds(text: string, limits: HeaderLimits): void {
  const excess = checkJsonBounds(text, {
    maxDepth: MAX_HEADER_DEPTH,
    maxRootMembers: limits.maxTensors + 1,
    maxNestedMembers: Math.max(limits.maxMetadataEntries, 64),
    maxValues: VALUES_PER_TENSOR * (limits.maxTensors + 1) + 2 * limits.maxMetadataEntries,
  });
  if (excess === undefined) return;
  const fix =
    excess.bound === 'rootMembers'
      ? 'If the file really holds that many tensors, raise maxTensors; otherwise it is damaged or hostile.'
      : excess.bound === 'nestedMembers'
        ? 'If the file really holds that much metadata, raise maxMetadataEntries; otherwise it is damaged or hostile.'
        : REFERENCE;
  throw corrupt(
    `The safetensors header ${excess.description} (at header character ${excess.offset}), beyond what this reader accepts.`,
    fix,
    { bound: excess.bound, limit: excess.limit },
  );
}

function parseHeader(source: Uint8Array, length: number, limits: HeaderLimits): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(source.subarray(8, 8 + length));
  } catch (error) {
    throw corrupt('The safetensors header (bytes 8 onward) is not valid UTF-8.', REFERENCE, undefined, error);
  }
  checkHeaderBounds(text, limits);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw corrupt(
      `The safetensors header (bytes 8 to ${8 + length}) is not valid JSON: ${(error as Error).message}`,
      REFERENCE,
      { headerLength: length },
      error,
    );
  }
  if (!isPlainObject(header)) {
    throw corrupt(`The safetensors header is ${describe(header)}, not a JSON object of tensors.`, REFERENCE);
  }
  return header;
}

function checkedLimit(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalid(
      `${name} must be a non-negative integer, got ${value}.`,
      `Leave ${name} out for the default, or pass a count such as 1000.`,
    );
  }
  return value;
}

function makeTensor(source: Uint8Array, dataOffset: number, entry: Entry): SafetensorsTensor {
  const byteOffset = dataOffset + entry.begin;
  const byteLength = entry.end - entry.begin;
  return Object.freeze({
    name: entry.name,
    dtype: entry.dtype,
    shape: Object.freeze(entry.shape.slice()),
    dataOffsets: Object.freeze([entry.begin, entry.end] as [number, number]),
    byteOffset,
    byteLength,
    size: entry.size,
    bytes: () => source.subarray(byteOffset, byteOffset + byteLength),
  });
}

/**
 * Parses a safetensors file held in memory and checks it completely before returning: the header
 * length against the file and `maxHeaderBytes`, the header as UTF-8 JSON, every entry's dtype,
 * shape and `data_offsets`, each byte range against its shape, and that the ranges tile the data
 * buffer exactly (no overlap, no hole, nothing past the end, nothing left over). Tensor data is not
 * copied: each tensor's `bytes()` is a view of `bytes`.
 *
 * @param bytes - the whole file
 * The header's structure is bounded before it is parsed: nesting, the number of tensors
 * (`maxTensors`) and of metadata entries (`maxMetadataEntries`), so a header of 40 million nested
 * brackets or a million empty tensors fails after one linear scan. Names quoted in errors are cut
 * to 120 characters.
 *
 * @param options - `maxHeaderBytes` (default 100 MiB), `maxTensors` (100,000),
 *   `maxMetadataEntries` (10,000)
 * @returns the metadata and the tensors by name
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the first problem found (the tensor, the offset
 *   and the values), `INVALID_ARGUMENT` for a bad argument
 *
 * @example
 * ```ts
 * const file = readSafetensors(new Uint8Array(await (await fetch(url)).arrayBuffer()));
 * const kernel = file.tensors.get('fc1.weight');
 * if (kernel) console.log(kernel.shape, decodeFloat32(kernel));
 * ```
 */
export function readSafetensors(
  bytes: Uint8Array | ArrayBuffer,
  options: ReadSafetensorsOptions = {},
): SafetensorsFile {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 2) {
    throw invalid(
      `maxHeaderBytes must be an integer of at least 2, got ${maxHeaderBytes}.`,
      'Leave it out for the default of 100 MiB, or pass a byte count such as 1048576.',
    );
  }
  const limits = {
    maxTensors: checkedLimit('maxTensors', options.maxTensors ?? DEFAULT_MAX_TENSORS),
    maxMetadataEntries: checkedLimit(
      'maxMetadataEntries',
      options.maxMetadataEntries ?? DEFAULT_MAX_METADATA_ENTRIES,
    ),
  };
  const source = toUint8Array(bytes);
  const headerLength = readHeaderLength(source, maxHeaderBytes);
  const header = parseHeader(source, headerLength, limits);
  const dataOffset = 8 + headerLength;
  const dataLength = source.byteLength - dataOffset;

  let metadata: Record<string, string> = Object.freeze({});
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) metadata = readMetadata(value, limits.maxMetadataEntries);
    else entries.push(checkEntry(name, value, dataLength));
  }
  if (entries.length > limits.maxTensors) {
    throw corrupt(
      `The safetensors header has ${entries.length} tensors, more than maxTensors (${limits.maxTensors}).`,
      'If the file really holds that many tensors, raise maxTensors; otherwise it is damaged or hostile.',
      { tensors: entries.length, maxTensors: limits.maxTensors },
    );
  }

  // The reference implementation requires the ranges, sorted, to cover [0, dataLength) with no gap.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: Entry | undefined;
  for (const entry of entries) {
    if (entry.begin < covered) {
      throw corrupt(
        `Tensor ${quoteText(entry.name)} (data_offsets [${entry.begin}, ${entry.end}]) overlaps tensor ${quoteText(previous?.name)} (data_offsets [${previous?.begin}, ${previous?.end}]).`,
        `${REFERENCE} Overlapping tensors are refused because writing one would change the other.`,
        {
          name: entry.name.slice(0, 200),
          other: previous?.name.slice(0, 200),
          begin: entry.begin,
          previousEnd: covered,
        },
      );
    }
    if (entry.begin > covered) {
      throw corrupt(
        `The data buffer has a hole: bytes ${covered} to ${entry.begin} belong to no tensor (before tensor ${quoteText(entry.name)}).`,
        `${REFERENCE} The safetensors format requires the data buffer to be fully indexed.`,
        { name: entry.name.slice(0, 200), holeBegin: covered, holeEnd: entry.begin },
      );
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) {
    throw corrupt(
      `The data buffer has ${dataLength - covered} bytes after the last tensor's end (data offset ${covered}) that belong to no tensor.`,
      `${REFERENCE} The safetensors format requires the data buffer to be fully indexed.`,
      { holeBegin: covered, holeEnd: dataLength },
    );
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const entry of entries) tensors.set(entry.name, makeTensor(source, dataOffset, entry));
  return Object.freeze({ metadata, tensors, dataOffset });
}
