/**
 * Decoding tensor bytes (little-endian, per the safetensors format) into typed arrays.
 */

import { ErrorCodes } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import { corrupt, dtypeInfo, invalid } from './dtypes';
import {
  bfloat16BitsToFloat32,
  float8E4M3BitsToFloat32,
  float8E5M2BitsToFloat32,
  float16Lookup,
} from './half';
import type { SafetensorsTensor } from './read';

/** True on little-endian platforms, where typed arrays read safetensors bytes directly. */
const NATIVE_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Integers up to 2^24 in magnitude are exact in float32 (24-bit significand, IEEE 754 binary32). */
const FLOAT32_EXACT_INTEGER = 2 ** 24;

/** What a decoder needs of a tensor: {@link SafetensorsTensor} minus the header bookkeeping. */
type Decodable = Pick<SafetensorsTensor, 'name' | 'dtype' | 'size' | 'bytes'>;

function checkTensor(tensor: Decodable, caller: string): Uint8Array {
  if (
    typeof tensor !== 'object' ||
    tensor === null ||
    typeof (tensor as { bytes?: unknown }).bytes !== 'function'
  ) {
    throw invalid(
      `${caller}() needs a tensor of readSafetensors(), got ${tensor === null ? 'null' : typeof tensor}.`,
      `Pass file.tensors.get(name) of a file returned by readSafetensors().`,
    );
  }
  const bytes = tensor.bytes();
  const expected = tensor.size * dtypeInfo(tensor.dtype).bytes;
  if (bytes.byteLength !== expected) {
    throw invalid(
      `Tensor ${quoteText(tensor.name)} has ${bytes.byteLength} bytes but ${tensor.size} elements of ${tensor.dtype} need ${expected}.`,
      'Pass a tensor returned by readSafetensors() unchanged.',
      { name: tensor.name.slice(0, 200) },
    );
  }
  return bytes;
}

/** A copy of `bytes` in a fresh buffer (explicit: a Node Buffer's slice() would be a view). */
function copyOf(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/** The bytes as an aligned buffer we may read with typed arrays: a view when aligned, else a copy. */
function alignedBuffer(bytes: Uint8Array, elementBytes: number): { buffer: ArrayBuffer; offset: number } {
  if (bytes.byteOffset % elementBytes === 0 && bytes.buffer instanceof ArrayBuffer) {
    return { buffer: bytes.buffer, offset: bytes.byteOffset };
  }
  return { buffer: copyOf(bytes).buffer as ArrayBuffer, offset: 0 };
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes a float tensor to a new `Float32Array`: `F32` is copied, `F16`, `BF16`, `F8_E4M3` and
 * `F8_E5M2` are decoded exactly (every value of theirs is a float32), `F64` is rounded to float32
 * (to nearest even; magnitudes beyond float32's range become ±Infinity). Integer and `BOOL` tensors
 * are decoded with {@link decodeInt32} and converted, provided every value is exact in float32
 * (|v| ≤ 2^24). Unaligned data is handled by copying.
 *
 * @param tensor - a tensor of {@link readSafetensors}
 * @returns a new array of `product(shape)` values, row-major
 * @throws FinepruneError `INVALID_DATA` when an integer value is not exact in float32 (or, for `I64`/`U64`/`U32`, not an int32)
 *
 * @example
 * ```ts
 * const file = readSafetensors(bytes);
 * const kernel = decodeFloat32(file.tensors.get('fc1.weight')!); // Float32Array
 * ```
 */
export function decodeFloat32(tensor: SafetensorsTensor): Float32Array {
  return decodeFloat32With(tensor, NATIVE_LITTLE_ENDIAN);
}

/** {@link decodeFloat32} as on a platform of the given byte order (tests cover both paths). @internal */
export function decodeFloat32With(tensor: Decodable, nativeLittleEndian: boolean): Float32Array {
  const bytes = checkTensor(tensor, 'decodeFloat32');
  const count = tensor.size;
  const info = dtypeInfo(tensor.dtype);
  if (info.kind !== 'float') {
    const integers = decodeInt32With(tensor, nativeLittleEndian);
    for (let index = 0; index < count; index += 1) {
      const value = integers[index]!;
      if (value > FLOAT32_EXACT_INTEGER || value < -FLOAT32_EXACT_INTEGER) {
        throw corrupt(
          `Tensor ${quoteText(tensor.name)} (${tensor.dtype}) holds ${value} at index ${index}, which float32 cannot represent exactly (|v| > 2^24).`,
          'Read it with decodeInt32() instead of decodeFloat32().',
          { name: tensor.name.slice(0, 200), index, value },
          undefined,
          ErrorCodes.INVALID_DATA,
        );
      }
    }
    return Float32Array.from(integers);
  }
  const out = new Float32Array(count);
  switch (tensor.dtype) {
    case 'F32': {
      if (nativeLittleEndian) {
        // The copy is a fresh, aligned buffer, whatever the view's offset.
        return new Float32Array(copyOf(bytes).buffer, 0, count);
      }
      const data = view(bytes);
      for (let index = 0; index < count; index += 1) out[index] = data.getFloat32(4 * index, true);
      return out;
    }
    case 'F64': {
      const data = view(bytes);
      // Assigning a double to a Float32Array element rounds to nearest even (ECMAScript ToFloat32).
      for (let index = 0; index < count; index += 1) out[index] = data.getFloat64(8 * index, true);
      return out;
    }
    case 'F16': {
      const table = float16Lookup();
      if (nativeLittleEndian) {
        const { buffer, offset } = alignedBuffer(bytes, 2);
        const halves = new Uint16Array(buffer, offset, count);
        for (let index = 0; index < count; index += 1) out[index] = table[halves[index]!]!;
        return out;
      }
      const data = view(bytes);
      for (let index = 0; index < count; index += 1) out[index] = table[data.getUint16(2 * index, true)]!;
      return out;
    }
    case 'BF16': {
      if (nativeLittleEndian) {
        // bfloat16 is the top half of a float32: place each value in the high 16 bits.
        const { buffer, offset } = alignedBuffer(bytes, 2);
        const halves = new Uint16Array(buffer, offset, count);
        const words = new Int32Array(out.buffer);
        for (let index = 0; index < count; index += 1) words[index] = halves[index]! << 16;
        return out;
      }
      const data = view(bytes);
      for (let index = 0; index < count; index += 1) {
        out[index] = bfloat16BitsToFloat32(data.getUint16(2 * index, true));
      }
      return out;
    }
    case 'F8_E4M3':
      for (let index = 0; index < count; index += 1) out[index] = float8E4M3BitsToFloat32(bytes[index]!);
      return out;
    case 'F8_E5M2':
      for (let index = 0; index < count; index += 1) out[index] = float8E5M2BitsToFloat32(bytes[index]!);
      return out;
    default:
      throw invalid(`decodeFloat32() cannot decode dtype ${tensor.dtype}.`, 'Use decodeInt32().');
  }
}

function outOfRange(tensor: Decodable, index: number, value: bigint | number): never {
  throw corrupt(
    `Tensor ${quoteText(tensor.name)} (${tensor.dtype}) holds ${value} at index ${index}, outside the int32 range [-2147483648, 2147483647].`,
    'Read the raw bytes with tensor.bytes() (for example into a BigInt64Array) instead of decodeInt32().',
    { name: tensor.name.slice(0, 200), index, value: String(value) },
    undefined,
    ErrorCodes.INVALID_DATA,
  );
}

/**
 * Decodes an integer or `BOOL` tensor to a new `Int32Array`. `I8`, `I16`, `I32`, `U8` and `U16`
 * always fit; `I64`, `U64` and `U32` values must lie in the int32 range; `BOOL` bytes must be 0 or 1.
 *
 * @param tensor - a tensor of {@link readSafetensors} with an integer or `BOOL` dtype
 * @returns a new array of `product(shape)` values, row-major
 * @throws FinepruneError `INVALID_DATA` naming the tensor, index and value when a value does not fit
 *   in int32 or a `BOOL` byte is neither 0 nor 1; `INVALID_ARGUMENT` for a float tensor
 *
 * @example
 * ```ts
 * const ids = decodeInt32(readSafetensors(bytes).tensors.get('position_ids')!); // Int32Array
 * ```
 */
export function decodeInt32(tensor: SafetensorsTensor): Int32Array {
  return decodeInt32With(tensor, NATIVE_LITTLE_ENDIAN);
}

/** {@link decodeInt32} as on a platform of the given byte order (tests cover both paths). @internal */
export function decodeInt32With(tensor: Decodable, nativeLittleEndian: boolean): Int32Array {
  const bytes = checkTensor(tensor, 'decodeInt32');
  const count = tensor.size;
  const info = dtypeInfo(tensor.dtype);
  if (info.kind === 'float') {
    throw invalid(
      `decodeInt32() was given tensor ${quoteText(tensor.name)} of float dtype ${tensor.dtype}.`,
      'Use decodeFloat32() for float tensors.',
      { name: tensor.name.slice(0, 200), dtype: tensor.dtype },
    );
  }
  const out = new Int32Array(count);
  const data = view(bytes);
  switch (tensor.dtype) {
    case 'I32':
      if (nativeLittleEndian) return new Int32Array(copyOf(bytes).buffer, 0, count);
      for (let index = 0; index < count; index += 1) out[index] = data.getInt32(4 * index, true);
      return out;
    case 'I16':
      for (let index = 0; index < count; index += 1) out[index] = data.getInt16(2 * index, true);
      return out;
    case 'U16':
      for (let index = 0; index < count; index += 1) out[index] = data.getUint16(2 * index, true);
      return out;
    case 'I8':
      for (let index = 0; index < count; index += 1) out[index] = data.getInt8(index);
      return out;
    case 'U8':
      out.set(bytes);
      return out;
    case 'BOOL':
      for (let index = 0; index < count; index += 1) {
        const value = bytes[index]!;
        if (value > 1) {
          throw corrupt(
            `Tensor ${quoteText(tensor.name)} (BOOL) holds the byte ${value} at index ${index}; booleans are 0 or 1.`,
            'The file is damaged or was written by a faulty exporter; re-export it.',
            { name: tensor.name.slice(0, 200), index, value },
            undefined,
            ErrorCodes.INVALID_DATA,
          );
        }
        out[index] = value;
      }
      return out;
    case 'U32':
      for (let index = 0; index < count; index += 1) {
        const value = data.getUint32(4 * index, true);
        if (value > 0x7fffffff) outOfRange(tensor, index, value);
        out[index] = value;
      }
      return out;
    case 'I64':
      for (let index = 0; index < count; index += 1) {
        const low = data.getInt32(8 * index, true);
        const high = data.getInt32(8 * index + 4, true);
        // A two's-complement int64 fits in int32 when its high word is the sign extension of the low word.
        if (high !== low >> 31) outOfRange(tensor, index, data.getBigInt64(8 * index, true));
        out[index] = low;
      }
      return out;
    case 'U64':
      for (let index = 0; index < count; index += 1) {
        const low = data.getUint32(8 * index, true);
        const high = data.getUint32(8 * index + 4, true);
        if (high !== 0 || low > 0x7fffffff) outOfRange(tensor, index, data.getBigUint64(8 * index, true));
        out[index] = low;
      }
      return out;
    default:
      throw invalid(`decodeInt32() cannot decode dtype ${tensor.dtype}.`, 'Use decodeFloat32().');
  }
}
