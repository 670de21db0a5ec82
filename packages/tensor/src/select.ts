/**
 * k-th value selection over float32 scores: a two-pass radix select on the IEEE-754 bit patterns.
 *
 * Pass 1 histograms the high 16 bits of every score, pass 2 histograms the low 16 bits of the scores
 * that fall in the bucket holding the k-th value. Both passes are a single linear scan with no sort,
 * no comparison-based partitioning and no copy of the scores, so selection is O(n) with 512 KiB of
 * extra memory whatever n is.
 */

import type * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';

const BUCKETS = 0x10000;
/** High 16 bits of +Infinity (0x7f800000) and -Infinity (0xff800000); NaNs sit at or beyond them. */
const POSITIVE_INFINITY_HIGH = 0x7f80;
const NEGATIVE_INFINITY_HIGH = 0xff80;

// Scratch space shared by all calls (the module is single-threaded, calls never overlap).
const highHistogram = new Uint32Array(BUCKETS);
const lowHistogram = new Uint32Array(BUCKETS);
const bitsScratch = new Uint32Array(1);
const floatScratch = new Float32Array(bitsScratch.buffer);

/** The result of one selection. */
interface Selection {
  /** The k-th largest value (+0 rather than -0). */
  value: number;
  /** How many scores are numerically strictly greater than `value`. */
  above: number;
  /** How many scores are numerically equal to `value` (so `k - above` of them are within the top k). */
  ties: number;
}

function asList(values: Float32Array | readonly Float32Array[]): readonly Float32Array[] {
  if (values instanceof Float32Array) return [values];
  if (!Array.isArray(values)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Expected a Float32Array or an array of Float32Arrays, got ${describe(values)}.`,
      fix: 'Read tensors with readFloat32() or wrap plain numbers in a Float32Array.',
    });
  }
  values.forEach((array, index) => {
    if (!(array instanceof Float32Array)) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `Input ${index} is ${describe(array)}, not a Float32Array.`,
        fix: 'Pass Float32Arrays only (readFloat32() converts a tensor of any dtype).',
        details: { arrayIndex: index },
      });
    }
  });
  return values;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  return (value as object).constructor?.name ?? 'an object';
}

function totalLength(arrays: readonly Float32Array[]): number {
  let n = 0;
  for (const array of arrays) n += array.length;
  return n;
}

function bitsOf(array: Float32Array): Uint32Array {
  return new Uint32Array(array.buffer, array.byteOffset, array.length);
}

/** Throws NON_FINITE naming the first NaN (only called when the histogram shows one may exist). */
function throwFirstNaN(arrays: readonly Float32Array[]): void {
  for (let arrayIndex = 0; arrayIndex < arrays.length; arrayIndex += 1) {
    const array = arrays[arrayIndex]!;
    for (let index = 0; index < array.length; index += 1) {
      if (Number.isNaN(array[index])) {
        const where = arrays.length > 1 ? `input ${arrayIndex}, index ${index}` : `index ${index}`;
        throw new FinepruneError({
          code: ErrorCodes.NON_FINITE,
          message: `Score at ${where} is NaN; a k-th value cannot be selected among NaNs.`,
          fix: 'Find where the scores became NaN (a diverging loss or a 0/0) and fix it, or replace NaNs before selecting.',
          details: { arrayIndex, index },
        });
      }
    }
  }
}

/** NaN bit patterns lie strictly beyond ±Infinity, i.e. in high buckets past the infinities' ones. */
function mayContainNaN(histogram: Uint32Array): boolean {
  for (let high = POSITIVE_INFINITY_HIGH; high < 0x8000; high += 1) if (histogram[high] !== 0) return true;
  for (let high = NEGATIVE_INFINITY_HIGH; high < BUCKETS; high += 1) if (histogram[high] !== 0) return true;
  return false;
}

/**
 * Visits the 16-bit buckets from the largest float to the smallest. Positive floats grow with their
 * bits (0x7fff → 0x0000 is descending); negative floats shrink as their bits grow (0x8000 → 0xffff).
 */
function bucketInDescendingOrder(position: number): number {
  return position < 0x8000 ? 0x7fff - position : position;
}

// The two hot loops below close over the module-level histograms rather than taking them as
// parameters, and are unrolled by 8 and 4: V8 then keeps the histogram's base and bounds in
// registers (measured 2x faster than the plain loop with the histogram as a parameter).

/** Pass 1: counts the high 16 bits (sign, exponent, top 7 mantissa bits) of every pattern. */
function histogramHigh(bits: Uint32Array): void {
  const length = bits.length;
  let index = 0;
  for (; index + 7 < length; index += 8) {
    const a0 = bits[index]! >>> 16;
    const a1 = bits[index + 1]! >>> 16;
    const a2 = bits[index + 2]! >>> 16;
    const a3 = bits[index + 3]! >>> 16;
    const a4 = bits[index + 4]! >>> 16;
    const a5 = bits[index + 5]! >>> 16;
    const a6 = bits[index + 6]! >>> 16;
    const a7 = bits[index + 7]! >>> 16;
    highHistogram[a0]!++;
    highHistogram[a1]!++;
    highHistogram[a2]!++;
    highHistogram[a3]!++;
    highHistogram[a4]!++;
    highHistogram[a5]!++;
    highHistogram[a6]!++;
    highHistogram[a7]!++;
  }
  for (; index < length; index += 1) highHistogram[bits[index]! >>> 16]!++;
}

/** Pass 2: counts the low 16 bits of the patterns whose high 16 bits equal `high`. */
function histogramLow(bits: Uint32Array, high: number): void {
  const length = bits.length;
  let index = 0;
  for (; index + 3 < length; index += 4) {
    const p0 = bits[index]!;
    const p1 = bits[index + 1]!;
    const p2 = bits[index + 2]!;
    const p3 = bits[index + 3]!;
    // One well-predicted branch per 4 patterns: most of them are outside the bucket.
    if (p0 >>> 16 === high || p1 >>> 16 === high || p2 >>> 16 === high || p3 >>> 16 === high) {
      if (p0 >>> 16 === high) lowHistogram[p0 & 0xffff]!++;
      if (p1 >>> 16 === high) lowHistogram[p1 & 0xffff]!++;
      if (p2 >>> 16 === high) lowHistogram[p2 & 0xffff]!++;
      if (p3 >>> 16 === high) lowHistogram[p3 & 0xffff]!++;
    }
  }
  for (; index < length; index += 1) {
    const pattern = bits[index]!;
    if (pattern >>> 16 === high) lowHistogram[pattern & 0xffff]!++;
  }
}

/**
 * Radix select of the k-th largest float (1 <= k <= n, checked by the callers). Floats are ordered by
 * their bit patterns read as order-preserving keys (negative → ~bits, positive → bits | 0x80000000);
 * the histograms are indexed by raw bits and visited in key order instead, which saves the mapping.
 */
function selectInternal(arrays: readonly Float32Array[], k: number): Selection {
  highHistogram.fill(0);
  for (const array of arrays) histogramHigh(bitsOf(array));
  if (mayContainNaN(highHistogram)) throwFirstNaN(arrays);

  let above = 0;
  let high = 0;
  for (let position = 0; position < BUCKETS; position += 1) {
    const bucket = bucketInDescendingOrder(position);
    const count = highHistogram[bucket]!;
    if (above + count >= k) {
      high = bucket;
      break;
    }
    above += count;
  }

  lowHistogram.fill(0);
  for (const array of arrays) histogramLow(bitsOf(array), high);

  // Within a positive bucket larger low bits mean larger floats; within a negative one, smaller.
  const negative = high >= 0x8000;
  let low = 0;
  for (let position = 0; position < BUCKETS; position += 1) {
    const candidate = negative ? position : 0xffff - position;
    const count = lowHistogram[candidate]!;
    if (above + count >= k) {
      low = candidate;
      break;
    }
    above += count;
  }

  const pattern = ((high << 16) | low) >>> 0;
  if (pattern === 0 || pattern === 0x80000000) {
    // +0 and -0 are adjacent in key order but one value: count around 0 numerically.
    return { value: 0, ...countAroundZero(arrays) };
  }
  bitsScratch[0] = pattern;
  return { value: floatScratch[0]!, above, ties: lowHistogram[low]! };
}

function countAroundZero(arrays: readonly Float32Array[]): { above: number; ties: number } {
  let above = 0;
  let ties = 0;
  for (const array of arrays) {
    const length = array.length;
    for (let index = 0; index < length; index += 1) {
      const score = array[index]!;
      if (score > 0) above += 1;
      else if (score === 0) ties += 1;
    }
  }
  return { above, ties };
}

function checkOut(arrays: readonly Float32Array[], out: Float32Array[]): Float32Array[] {
  const matches =
    Array.isArray(out) &&
    out.length === arrays.length &&
    out.every((mask, index) => mask instanceof Float32Array && mask.length === arrays[index]!.length);
  if (!matches) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `The output masks (${Array.isArray(out) ? out.map((mask) => mask?.length).join(', ') : describe(out)}) do not match the scores' lengths (${arrays.map((array) => array.length).join(', ')}).`,
      fix: 'Pass one Float32Array per score array, of the same length, or omit `out`.',
    });
  }
  const scoreBuffers = new Set(arrays.map((array) => array.buffer));
  if (out.some((mask) => scoreBuffers.has(mask.buffer))) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'An output mask shares its memory with the scores.',
      fix: 'Pass separate Float32Arrays as `out`; the scores are read again after the masks are written.',
    });
  }
  return out;
}

function checkCount(name: string, value: number, min: number, max: number, fix: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${name} must be an integer in [${min}, ${max}], got ${value}.`,
      fix,
      details: { [name]: value, min, max },
    });
  }
}

/**
 * The k-th largest value (k is 1-based) over the concatenation of one or more Float32Arrays.
 * Runs in O(n) with a radix select on the float bit patterns; ±Infinity are ordered normally,
 * -0 and +0 are equal (the result is never -0), and any NaN throws `NON_FINITE`.
 *
 * @param values - one array, or several treated as one concatenated array
 * @param k - rank from the top, in [1, n]; `k = 1` is the maximum and `k = n` the minimum
 * @returns the k-th largest value
 * @throws FinepruneError `INVALID_ARGUMENT` when k is not an integer in [1, n], `NON_FINITE` on NaN
 *
 * @example
 * ```ts
 * kthLargest(new Float32Array([0.5, -1, 3, 2]), 2); // 2
 * kthLargest([new Float32Array([1, 9]), new Float32Array([4])], 3); // 1
 * ```
 */
export function kthLargest(values: Float32Array | readonly Float32Array[], k: number): number {
  const arrays = asList(values);
  const n = totalLength(arrays);
  checkCount('k', k, 1, n, `Pass a rank between 1 and the number of scores (${n}).`);
  return selectInternal(arrays, k).value;
}

/**
 * 0/1 masks that keep exactly `keep` of the largest scores across all arrays together (a global
 * selection; pass a single array for a local, per-tensor one). Scores equal to the threshold are
 * kept in a deterministic order: lower array index first, then lower element index.
 *
 * @param scores - the scores, one Float32Array per tensor
 * @param keep - how many ones the masks hold in total, in [0, n]
 * @param out - optional masks to overwrite (same count and lengths as `scores`), to avoid allocating
 *   new ones on every call; they must not alias the scores
 * @returns one Float32Array mask per input (`out` when given), with exactly `keep` ones in total
 * @throws FinepruneError `INVALID_ARGUMENT` when keep is not an integer in [0, n], `NON_FINITE` on
 *   NaN, `SHAPE_MISMATCH` when `out` does not match `scores`
 *
 * @example
 * ```ts
 * const [a, b] = topCountMasks([new Float32Array([3, 1]), new Float32Array([2, 3])], 2);
 * // a = [1, 0], b = [0, 1]
 * ```
 */
export function topCountMasks(
  scores: readonly Float32Array[],
  keep: number,
  out?: Float32Array[],
): Float32Array[] {
  const arrays = asList(scores);
  const n = totalLength(arrays);
  checkCount('keep', keep, 0, n, `Pass how many scores to keep, between 0 and their number (${n}).`);
  const masks =
    out === undefined ? arrays.map((array) => new Float32Array(array.length)) : checkOut(arrays, out);
  if (keep === 0 || keep === n) {
    // Still reject NaN scores, as for any other keep.
    for (const array of arrays) {
      for (let index = 0; index < array.length; index += 1) {
        if (Number.isNaN(array[index])) throwFirstNaN(arrays);
      }
    }
    for (const mask of masks) mask.fill(keep === n ? 1 : 0);
    return masks;
  }
  const { value: threshold, above, ties } = selectInternal(arrays, keep);
  const tiesToKeep = keep - above;
  if (tiesToKeep === ties) {
    // Every tie is kept: one branch-free pass, mask = [score >= threshold].
    for (let arrayIndex = 0; arrayIndex < arrays.length; arrayIndex += 1) {
      writeMaskAtLeast(arrays[arrayIndex]!, masks[arrayIndex]!, threshold);
    }
    return masks;
  }
  // Some ties are dropped: mask = [score > threshold], then the first `tiesToKeep` ties in
  // (array index, element index) order.
  for (let arrayIndex = 0; arrayIndex < arrays.length; arrayIndex += 1) {
    writeMaskAbove(arrays[arrayIndex]!, masks[arrayIndex]!, threshold);
  }
  let tiesLeft = tiesToKeep;
  for (let arrayIndex = 0; arrayIndex < arrays.length && tiesLeft > 0; arrayIndex += 1) {
    const array = arrays[arrayIndex]!;
    const mask = masks[arrayIndex]!;
    const length = array.length;
    for (let index = 0; index < length && tiesLeft > 0; index += 1) {
      if (array[index] === threshold) {
        mask[index] = 1;
        tiesLeft -= 1;
      }
    }
  }
  return masks;
}

// Unrolled by 4: measured ~1.4x faster than the plain loop in V8.
function writeMaskAtLeast(scores: Float32Array, mask: Float32Array, threshold: number): void {
  const length = scores.length;
  let index = 0;
  for (; index + 3 < length; index += 4) {
    const s0 = scores[index]!;
    const s1 = scores[index + 1]!;
    const s2 = scores[index + 2]!;
    const s3 = scores[index + 3]!;
    mask[index] = +(s0 >= threshold);
    mask[index + 1] = +(s1 >= threshold);
    mask[index + 2] = +(s2 >= threshold);
    mask[index + 3] = +(s3 >= threshold);
  }
  for (; index < length; index += 1) mask[index] = +(scores[index]! >= threshold);
}

function writeMaskAbove(scores: Float32Array, mask: Float32Array, threshold: number): void {
  const length = scores.length;
  let index = 0;
  for (; index + 3 < length; index += 4) {
    const s0 = scores[index]!;
    const s1 = scores[index + 1]!;
    const s2 = scores[index + 2]!;
    const s3 = scores[index + 3]!;
    mask[index] = +(s0 > threshold);
    mask[index + 1] = +(s1 > threshold);
    mask[index + 2] = +(s2 > threshold);
    mask[index + 3] = +(s3 > threshold);
  }
  for (; index < length; index += 1) mask[index] = +(scores[index]! > threshold);
}

/**
 * Reads a tensor's values as a Float32Array (any dtype is converted). On the cpu backend the result
 * may share memory with the tensor: treat it as read-only.
 *
 * @param tensor - the tensor to read; it is not disposed
 * @returns its values, row-major
 *
 * @example
 * ```ts
 * const scores = await readFloat32(tf.tensor1d([0.1, 0.7]));
 * ```
 */
export async function readFloat32(tensor: tf.Tensor): Promise<Float32Array> {
  const data = await tensor.data();
  if (data instanceof Float32Array) return data;
  if (Array.isArray(data)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Cannot read a ${tensor.dtype} tensor as float32.`,
      fix: 'Pass a numeric tensor (float32, int32 or bool).',
      details: { dtype: tensor.dtype },
    });
  }
  return Float32Array.from(data as ArrayLike<number>);
}

/**
 * The k-th largest value (1-based) over all the given tensors' values together.
 *
 * @param tensors - the tensors to read (not disposed)
 * @param k - rank from the top, in [1, total size]
 * @returns the k-th largest value
 *
 * @example
 * ```ts
 * const threshold = await kthLargestOfTensors([scoresA, scoresB], 1000);
 * ```
 */
export async function kthLargestOfTensors(tensors: tf.Tensor[], k: number): Promise<number> {
  const arrays = await Promise.all(tensors.map((tensor) => readFloat32(tensor)));
  return kthLargest(arrays, k);
}
