/**
 * Reading a compact sparse export as untrusted input: checked whole before anything is decoded (see
 * container.ts and header.ts), then each tensor decoded on request with its indices and values
 * checked, into channel rows (what the sparse kernels take) or a dense float32 array.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { readRegularFile } from '@fineprune/tensor/untrusted';
import { type CompressedRows, validateCompressedRows } from '../layout/compressed-rows';
import { type ChannelView, channelRows, channelView, denseFromChannelRows } from './channel-rows';
import { splitCompactModel } from './container';
import { type CompactHeader, type CompactTensorEntry, corruptCompact, shapeSize } from './header';
import { bitmapBytes, type DecodedIndices, decodeBitmap, decodeDeltas } from './tensor-layouts';
import { copyOut, decodeValueBlock, scaleBytes } from './values';

/**
 * Default of {@link ReadCompactOptions.maxDenseBytes}: 4 GiB of float32 tensors.
 *
 * @example
 * ```ts
 * await readCompactModel(bytes, { maxDenseBytes: DEFAULT_MAX_DENSE_BYTES / 4 }); // 1 GiB in a browser tab
 * ```
 */
export const DEFAULT_MAX_DENSE_BYTES = 4 * 1024 ** 3;

/**
 * Options of {@link readCompactModel}.
 *
 * @example
 * ```ts
 * const options: ReadCompactOptions = { source: 'model.fpsparse', maxDenseBytes: 1024 ** 3 };
 * ```
 */
export interface ReadCompactOptions {
  /** How errors name the file. Default `'the compact export'`. */
  source?: string;
  /** Most bytes the tensors may take as float32 once densified. Default 4 GiB. */
  maxDenseBytes?: number;
}

/**
 * One tensor of a compact export, decoded on request.
 *
 * @example
 * ```ts
 * const tensor = model.tensor('dense_1/kernel');
 * const kernel = tf.tensor(tensor.dense(), tensor.shape); // densified, row-major
 * const rows = tensor.rows(); // kept entries by output channel, for prepareSparseDenseFromRows
 * ```
 */
export class CompactTensor {
  constructor(
    /** The header entry (name, shape, layout, values, byte range). */
    readonly entry: CompactTensorEntry,
    private readonly data: Uint8Array,
    private readonly source: string,
  ) {}

  get name(): string {
    return this.entry.name;
  }

  get shape(): readonly number[] {
    return this.entry.shape;
  }

  /** Whether it is stored as a matrix (with a channel axis), not as a float32 vector. */
  get isMatrix(): boolean {
    return this.entry.layout !== 'vector';
  }

  private fail(problem: string): FinepruneError {
    return corruptCompact(this.source, this.entry.name, problem);
  }

  private view(): ChannelView {
    return channelView(this.entry.shape, this.entry.channelAxis!);
  }

  /** Stored entries by channel: indices from the layout, then values; both checked. */
  private storedRows(): CompressedRows {
    const { entry, data } = this;
    const view = this.view();
    const { channels, positions } = view;
    let indices: DecodedIndices;
    let valuesAt = entry.offset;
    if (entry.layout === 'dense') {
      indices = {
        rowPointers: Int32Array.from({ length: channels + 1 }, (_, channel) => channel * positions),
        inputIndices: Int32Array.from({ length: channels * positions }, (_, index) => index % positions),
      };
    } else if (entry.layout === 'bitmap') {
      indices = decodeBitmap(data, entry.offset, channels, positions, entry.nonzeros!);
      valuesAt += bitmapBytes(channels * positions);
    } else {
      indices = decodeDeltas(data, entry.offset, entry.indexBytes!, channels, positions, entry.nonzeros!);
      valuesAt += entry.indexBytes!;
    }
    if ('problem' in indices) throw this.fail(indices.problem);
    const count = indices.inputIndices.length;
    const decoded = decodeValueBlock(entry.values, data, valuesAt, count, indices.rowPointers);
    if ('problem' in decoded) throw this.fail(decoded.problem);
    // Checked again as the kernels' input (sizes, ascending indices): cheap, and a second guard.
    const rows = { inputSize: positions, outputSize: channels, ...indices, values: decoded.values };
    try {
      return validateCompressedRows(rows, `${this.source}: ${entry.name}`);
    } catch (error) {
      throw this.fail(`its entries do not form valid rows (${(error as Error).message.slice(0, 300)})`);
    }
  }

  /**
   * The tensor's values, densified: row-major float32 of its shape, zeros where nothing is stored.
   *
   * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the file and the tensor when its indices or
   *   values are malformed (non-finite values, indices out of range, counts that disagree)
   */
  dense(): Float32Array {
    const { entry } = this;
    if (entry.layout === 'vector') {
      const values = new Float32Array(copyOut(this.data, entry.offset, entry.byteLength));
      const bad = values.findIndex((value) => !Number.isFinite(value));
      if (bad >= 0) throw this.fail(`its value ${bad} is ${values[bad]}`);
      return values;
    }
    return denseFromChannelRows(this.storedRows(), entry.shape, this.view());
  }

  /**
   * The kept entries by output channel ({@link CompressedRows}: a row is an output channel, its
   * indices the positions along the other axes), float32 (int8 and float16 decoded). For a matrix
   * stored dense, its nonzero entries.
   *
   * @throws FinepruneError `CHECKPOINT_CORRUPT` as {@link CompactTensor.dense}; `INVALID_ARGUMENT` for a vector
   */
  rows(): CompressedRows {
    if (!this.isMatrix)
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `${this.entry.name} is stored as a vector, not as a matrix with output channels.`,
        fix: 'Read it with dense().',
      });
    const stored = this.storedRows();
    if (this.entry.layout !== 'dense') return stored;
    const view = this.view();
    return channelRows(denseFromChannelRows(stored, this.entry.shape, view), this.entry.shape, view);
  }

  /**
   * Decodes and checks the stored entries (indices and values) without densifying: memory in
   * proportion to the bytes the tensor takes in the file, whatever shape it declares.
   *
   * @throws FinepruneError `CHECKPOINT_CORRUPT` as {@link CompactTensor.dense}
   */
  check(): void {
    if (this.entry.layout === 'vector') this.dense();
    else this.storedRows();
  }

  /** Bytes it takes in the file. */
  get byteLength(): number {
    return this.entry.byteLength;
  }

  /** Stored entries: every entry for `dense` and `vector`, the kept ones otherwise. */
  get storedEntries(): number {
    return this.entry.nonzeros ?? shapeSize(this.entry.shape);
  }

  /** Bytes of its per-channel int8 scales. */
  get scaleBytes(): number {
    return this.isMatrix ? scaleBytes(this.entry.values, this.view().channels) : 0;
  }
}

/**
 * A compact export, checked: its header, its size, and its tensors (decoded on request).
 *
 * @example
 * ```ts
 * const model = await readCompactModel(bytes, { source: 'model.fpsparse' });
 * console.log(model.header.model.kind, model.byteLength, model.tensors.length);
 * ```
 */
export interface CompactModel {
  header: CompactHeader;
  /** Bytes of the whole file. */
  byteLength: number;
  tensors: CompactTensor[];
  /** The tensor of that name. @throws FinepruneError `INVALID_ARGUMENT` when there is none */
  tensor(name: string): CompactTensor;
}

/**
 * Reads the bytes of a compact sparse export, treating them as untrusted: magic bytes, a bounded
 * header (length, JSON depth and size), SHA-256 content hashes of header and data, every entry's
 * fields, byte ranges that tile the data exactly with the lengths their layouts imply, and the
 * densified size within `maxDenseBytes`. Tensors are decoded on request (`dense()`, `rows()`), and
 * their indices and values checked then.
 *
 * @param bytes - the file
 * @param options - `source` (named in errors), `maxDenseBytes`
 * @returns the checked model
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming the file (and the entry) for anything malformed,
 *   `CHECKPOINT_MISMATCH` for another format version, `MISSING_DEPENDENCY` without Web Crypto
 *
 * @example
 * ```ts
 * const response = await fetch('model.fpsparse');
 * const model = await readCompactModel(new Uint8Array(await response.arrayBuffer()), { source: 'model.fpsparse' });
 * ```
 */
export async function readCompactModel(
  bytes: Uint8Array,
  options: ReadCompactOptions = {},
): Promise<CompactModel> {
  const source = options.source ?? 'the compact export';
  const maxDenseBytes = options.maxDenseBytes ?? DEFAULT_MAX_DENSE_BYTES;
  if (!(Number.isSafeInteger(maxDenseBytes) && maxDenseBytes > 0))
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `maxDenseBytes must be a positive integer, got ${String(maxDenseBytes)}.`,
      fix: 'Leave it out for 4 GiB, or pass a byte count.',
    });
  const { header, data } = await splitCompactModel(bytes, source, { maxDenseBytes });
  const tensors = header.tensors.map((entry) => new CompactTensor(entry, data, source));
  const byName = new Map(tensors.map((tensor) => [tensor.name, tensor]));
  return {
    header,
    byteLength: bytes.length,
    tensors,
    tensor(name: string): CompactTensor {
      const found = byName.get(name);
      if (found === undefined)
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: `${source} holds no tensor named ${JSON.stringify(name.slice(0, 200))}.`,
          fix: `Pick one of its ${tensors.length} tensors (model.tensors lists them).`,
        });
      return found;
    },
  };
}

/**
 * Options of {@link readCompactFile}: those of {@link readCompactModel} and a file size limit.
 *
 * @example
 * ```ts
 * const options: ReadCompactFileOptions = { maxBytes: 512 * 1024 ** 2 };
 * ```
 */
export interface ReadCompactFileOptions extends ReadCompactOptions {
  /** Refuse files larger than this. Default 4 GiB. */
  maxBytes?: number;
}

/**
 * Reads a compact export from a file (Node.js only): a regular file (not a FIFO or a device) of at
 * most `maxBytes`, then {@link readCompactModel}.
 *
 * @param file - the path
 * @param options - limits
 * @returns the checked model
 * @throws FinepruneError `IO_FAILED` when the file cannot be read, `CHECKPOINT_CORRUPT` when it is not a
 *   regular file, is too large or malformed; `MISSING_DEPENDENCY` outside Node
 *
 * @example
 * ```ts
 * const model = await readCompactFile('out/run/sparse/model.fpsparse');
 * ```
 */
export async function readCompactFile(
  file: string,
  options: ReadCompactFileOptions = {},
): Promise<CompactModel> {
  const bytes = await readRegularFile(file, {
    maxBytes: options.maxBytes ?? 4 * 1024 ** 3 - 1,
    what: 'the compact export',
    fix: 'Point at a .fpsparse file written by fineprune export --format sparse.',
    code: ErrorCodes.CHECKPOINT_CORRUPT,
  });
  return readCompactModel(bytes, { source: file, ...options });
}
