/**
 * The three ways the compact export stores a matrix (channels × positions), each followed by its
 * value block (see values.ts):
 *
 * - `dense`: every entry, channel by channel;
 * - `bitmap`: one bit per entry (channel by channel, least significant bit first), then the kept values;
 * - `delta`: per channel, its kept count then the gap before each kept position (position − previous
 *   − 1, the first from −1) as LEB128 varints, then the kept values.
 *
 * Per tensor the export keeps the smallest (ties go to the simpler layout, in this order).
 */

import type { CompressedRows } from '../layout/compressed-rows';
import { VarintReader, varintLength, writeVarint } from './varint';

/**
 * A matrix layout of the compact export.
 *
 * @example
 * ```ts
 * const layout: MatrixLayout = 'delta';
 * ```
 */
export type MatrixLayout = 'dense' | 'bitmap' | 'delta';

/**
 * Every {@link MatrixLayout}, simplest first (ties between equal sizes go to the earlier).
 *
 * @example
 * ```ts
 * MATRIX_LAYOUTS.includes(entry.layout as MatrixLayout); // false for a vector
 * ```
 */
export const MATRIX_LAYOUTS: readonly MatrixLayout[] = ['dense', 'bitmap', 'delta'];

/** Bytes of the bitmap of `entries` entries. */
export function bitmapBytes(entries: number): number {
  return Math.ceil(entries / 8);
}

/** Bytes of the delta-coded indices of these rows. */
export function deltaIndexBytes(rows: CompressedRows): number {
  let bytes = 0;
  for (let channel = 0; channel < rows.outputSize; channel += 1) {
    const begin = rows.rowPointers[channel]!;
    const end = rows.rowPointers[channel + 1]!;
    bytes += varintLength(end - begin);
    let previous = -1;
    for (let entry = begin; entry < end; entry += 1) {
      const position = rows.inputIndices[entry]!;
      bytes += varintLength(position - previous - 1);
      previous = position;
    }
  }
  return bytes;
}

/** The bitmap of these rows' kept entries over channels × positions. */
export function encodeBitmap(rows: CompressedRows): Uint8Array {
  const bits = new Uint8Array(bitmapBytes(rows.outputSize * rows.inputSize));
  for (let channel = 0; channel < rows.outputSize; channel += 1) {
    for (let entry = rows.rowPointers[channel]!; entry < rows.rowPointers[channel + 1]!; entry += 1) {
      const bit = channel * rows.inputSize + rows.inputIndices[entry]!;
      bits[bit >>> 3]! |= 1 << (bit & 7);
    }
  }
  return bits;
}

/** The delta-coded indices of these rows ({@link deltaIndexBytes} bytes). */
export function encodeDeltas(rows: CompressedRows): Uint8Array {
  const bytes = new Uint8Array(deltaIndexBytes(rows));
  let at = 0;
  for (let channel = 0; channel < rows.outputSize; channel += 1) {
    const begin = rows.rowPointers[channel]!;
    const end = rows.rowPointers[channel + 1]!;
    at = writeVarint(bytes, at, end - begin);
    let previous = -1;
    for (let entry = begin; entry < end; entry += 1) {
      const position = rows.inputIndices[entry]!;
      at = writeVarint(bytes, at, position - previous - 1);
      previous = position;
    }
  }
  return bytes;
}

/** Kept positions by channel, or what is wrong with the index bytes. */
export type DecodedIndices =
  | { rowPointers: Int32Array; inputIndices: Int32Array }
  | { problem: string; entry: number };

/**
 * The kept positions a bitmap of `channels` × `positions` bits at `offset` describes; it must set
 * exactly `nonzeros` bits (and none in the padding of its last byte).
 */
export function decodeBitmap(
  bytes: Uint8Array,
  offset: number,
  channels: number,
  positions: number,
  nonzeros: number,
): DecodedIndices {
  const entries = channels * positions;
  const rowPointers = new Int32Array(channels + 1);
  const inputIndices = new Int32Array(nonzeros);
  let count = 0;
  for (let channel = 0; channel < channels; channel += 1) {
    for (let position = 0; position < positions; position += 1) {
      const bit = channel * positions + position;
      if ((bytes[offset + (bit >>> 3)]! & (1 << (bit & 7))) === 0) continue;
      if (count === nonzeros) return { problem: `its bitmap sets more than ${nonzeros} bits`, entry: bit };
      inputIndices[count] = position;
      count += 1;
    }
    rowPointers[channel + 1] = count;
  }
  const last = bytes[offset + bitmapBytes(entries) - 1] ?? 0;
  if (entries % 8 !== 0 && last >>> (entries % 8) !== 0)
    return { problem: 'its bitmap sets bits past the last entry', entry: entries };
  if (count !== nonzeros) return { problem: `its bitmap sets ${count} bits, not ${nonzeros}`, entry: count };
  return { rowPointers, inputIndices };
}

/**
 * The kept positions that `indexBytes` delta-coded bytes at `offset` describe: exactly `channels`
 * counts, positions inside [0, positions), `nonzeros` in all, every byte used.
 */
export function decodeDeltas(
  bytes: Uint8Array,
  offset: number,
  indexBytes: number,
  channels: number,
  positions: number,
  nonzeros: number,
): DecodedIndices {
  const reader = new VarintReader(bytes, offset, offset + indexBytes);
  const rowPointers = new Int32Array(channels + 1);
  const inputIndices = new Int32Array(nonzeros);
  let total = 0;
  for (let channel = 0; channel < channels; channel += 1) {
    const count = reader.next();
    if (count === undefined || count > positions || total + count > nonzeros)
      return { problem: `its index count of channel ${channel} is malformed or too large`, entry: channel };
    let previous = -1;
    for (let kept = 0; kept < count; kept += 1) {
      const gap = reader.next();
      const position = gap === undefined ? positions : previous + 1 + gap;
      if (position >= positions)
        return {
          problem: `channel ${channel} has an index gap past position ${positions - 1}`,
          entry: channel,
        };
      inputIndices[total] = position;
      total += 1;
      previous = position;
    }
    rowPointers[channel + 1] = total;
  }
  if (total !== nonzeros)
    return { problem: `its indices list ${total} entries, not ${nonzeros}`, entry: total };
  if (reader.offset !== offset + indexBytes)
    return { problem: `its indices end ${offset + indexBytes - reader.offset} bytes early`, entry: total };
  return { rowPointers, inputIndices };
}
