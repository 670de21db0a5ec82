/**
 * How the compact export stores the values of a tensor: float32, float16, or int8 with one symmetric
 * float32 scale per output channel (q = round(w / s_c), s_c = max_k |w_ck| / 127, w ≈ q · s_c).
 */

import { firstNonFiniteFloat16, float16FromFloat32, float32FromFloat16 } from '@fineprune/tensor/float16';

/**
 * The value encodings of the compact export.
 *
 * @example
 * ```ts
 * const values: ValueEncoding = 'int8';
 * ```
 */
export type ValueEncoding = 'float32' | 'float16' | 'int8';

/**
 * Every {@link ValueEncoding}.
 *
 * @example
 * ```ts
 * for (const values of VALUE_ENCODINGS) console.log(values, (await encodeCompactModel(input, { values })).length);
 * ```
 */
export const VALUE_ENCODINGS: readonly ValueEncoding[] = ['float32', 'float16', 'int8'];

/** Bytes per stored value. */
export function bytesPerValue(encoding: ValueEncoding): number {
  return encoding === 'float32' ? 4 : encoding === 'float16' ? 2 : 1;
}

/** Bytes of the per-channel scales that precede the values (int8 only). */
export function scaleBytes(encoding: ValueEncoding, channels: number): number {
  return encoding === 'int8' ? 4 * channels : 0;
}

/** The largest int8 code used; −128 is never written, so the code range is symmetric. */
export const INT8_LIMIT = 127;

/**
 * Per-channel symmetric int8 scales: s_c = max |value| over channel c's entries / 127, rounded to
 * float32 (0 for a channel of zeros). `pointers` has one entry per channel plus the end.
 */
export function int8Scales(values: Float32Array, pointers: Int32Array): Float32Array {
  const channels = pointers.length - 1;
  const scales = new Float32Array(channels);
  for (let channel = 0; channel < channels; channel += 1) {
    let largest = 0;
    for (let entry = pointers[channel]!; entry < pointers[channel + 1]!; entry += 1)
      largest = Math.max(largest, Math.abs(values[entry]!));
    scales[channel] = largest / INT8_LIMIT;
  }
  return scales;
}

/** q = round(w / s_c) in [−127, 127] per channel (0 where s_c = 0). */
export function quantizeInt8(values: Float32Array, pointers: Int32Array, scales: Float32Array): Int8Array {
  const codes = new Int8Array(values.length);
  for (let channel = 0; channel < scales.length; channel += 1) {
    const scale = scales[channel]!;
    if (scale === 0) continue;
    for (let entry = pointers[channel]!; entry < pointers[channel + 1]!; entry += 1) {
      const code = Math.round(values[entry]! / scale);
      codes[entry] = Math.max(-INT8_LIMIT, Math.min(INT8_LIMIT, code));
    }
  }
  return codes;
}

/** w = q · s_c, rounded to float32. */
export function dequantizeInt8(codes: Int8Array, pointers: Int32Array, scales: Float32Array): Float32Array {
  const values = new Float32Array(codes.length);
  for (let channel = 0; channel < scales.length; channel += 1) {
    const scale = scales[channel]!;
    for (let entry = pointers[channel]!; entry < pointers[channel + 1]!; entry += 1)
      values[entry] = codes[entry]! * scale;
  }
  return values;
}

/**
 * The bytes of a value block: for int8 the scales then the codes, otherwise the values in the
 * encoding (little-endian). Returns the index of a value float16 cannot hold (±Infinity after
 * rounding, for magnitudes of 65520 and more) instead of bytes when there is one.
 */
export function encodeValueBlock(
  encoding: ValueEncoding,
  values: Float32Array,
  pointers: Int32Array,
): Uint8Array | { overflow: number } {
  if (encoding === 'float32') return new Uint8Array(Float32Array.from(values).buffer);
  if (encoding === 'float16') {
    const bits = float16FromFloat32(values);
    const overflow = firstNonFiniteFloat16(bits);
    return overflow >= 0 ? { overflow } : new Uint8Array(bits.buffer);
  }
  const scales = int8Scales(values, pointers);
  const codes = quantizeInt8(values, pointers, scales);
  const block = new Uint8Array(scales.byteLength + codes.length);
  block.set(new Uint8Array(scales.buffer), 0);
  block.set(new Uint8Array(codes.buffer), scales.byteLength);
  return block;
}

/** What a decoded value block holds, or what is wrong with it. */
export type DecodedValues = { values: Float32Array } | { problem: string; entry: number };

/**
 * Copies `length` bytes from `offset` into a fresh (aligned) buffer. Never `bytes.slice(…).buffer`:
 * on a Node.js Buffer, `slice` is a view into a shared pool.
 */
export function copyOut(bytes: Uint8Array, offset: number, length: number): ArrayBuffer {
  const copy = new Uint8Array(length);
  copy.set(bytes.subarray(offset, offset + length));
  return copy.buffer;
}

/**
 * Decodes a value block of `count` values (pointers give each channel's entries) at `offset` of
 * untrusted bytes whose length was checked. Every value must be finite; int8 scales finite and ≥ 0,
 * codes in [−127, 127].
 */
export function decodeValueBlock(
  encoding: ValueEncoding,
  bytes: Uint8Array,
  offset: number,
  count: number,
  pointers: Int32Array,
): DecodedValues {
  let values: Float32Array;
  if (encoding === 'float32') values = new Float32Array(copyOut(bytes, offset, 4 * count));
  else if (encoding === 'float16')
    values = float32FromFloat16(new Uint16Array(copyOut(bytes, offset, 2 * count)));
  else {
    const channels = pointers.length - 1;
    const scales = new Float32Array(copyOut(bytes, offset, 4 * channels));
    for (let channel = 0; channel < channels; channel += 1) {
      const scale = scales[channel]!;
      if (!(Number.isFinite(scale) && scale >= 0))
        return { problem: `its int8 scale of channel ${channel} is ${scale}`, entry: channel };
    }
    const codes = new Int8Array(copyOut(bytes, offset + 4 * channels, count));
    const low = codes.indexOf(-128);
    if (low >= 0) return { problem: `its int8 code ${low} is −128, outside [−127, 127]`, entry: low };
    values = dequantizeInt8(codes, pointers, scales);
  }
  for (let entry = 0; entry < values.length; entry += 1) {
    if (!Number.isFinite(values[entry]!)) return { problem: `its value ${entry} is ${values[entry]}`, entry };
  }
  return { values };
}
