/**
 * k-th value selection over float32 scores.
 *
 * The exact method is a two-pass radix select on the IEEE-754 bit patterns: pass 1 histograms the
 * high 16 bits of every score, pass 2 histograms the low 16 bits of the scores that fall in the
 * bucket holding the k-th value. Both passes are a single linear scan with no sort and no copy, so
 * it is O(n) with 512 KiB of extra memory whatever n is.
 *
 * Large inputs (n ≥ 16,384) first try a sampled bracket (the idea of Floyd and Rivest's SELECT): the
 * k-th value of a small quasi-random sample, widened by four binomial standard deviations, gives
 * bounds lo ≤ hi that hold the k-th value with near certainty; one branch-free scan counts the
 * scores above hi and copies those in [lo, hi] (a few percent of them) aside, and the radix select
 * runs on that copy only. A streaming comparison scan is ~3x cheaper than a histogram scan (whose
 * random increments into 256 KiB miss the cache), so selection costs about one pass instead of two.
 * The result is exact either way: when the bracket misses (or a NaN is present), the full radix
 * select runs.
 */

import * as tfCore from '@tensorflow/tfjs-core';
import type * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';
import { sharedState } from './runtime';
import { SimdSelector, scansFor } from './select-simd';
import { wasmHeapOf } from './wasm-heap';

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
 * `staged` is set when the selection copied `arrays` into the SIMD selector, which can then write
 * their masks.
 */
function selectInternal(arrays: readonly Float32Array[], k: number): Selection & { staged?: SimdSelector } {
  const n = totalLength(arrays);
  if (n >= SAMPLED_MIN_LENGTH) {
    const sampled = selectBySample(arrays, n, k);
    if (sampled !== undefined) return sampled;
  } else {
    // Small inputs: the radix select's fixed cost (clearing and scanning two 64k-bucket
    // histograms, ~0.1 ms) outweighs a quickselect on a copy.
    if (smallScratch.length < n) smallScratch = new Float32Array(Math.max(n, 1024));
    const copy = smallScratch.subarray(0, n);
    let offset = 0;
    for (const array of arrays) {
      copy.set(array, offset);
      offset += array.length;
    }
    if (!containsNaN(copy)) {
      const quick = selectByQuickselect(copy, k);
      if (quick !== undefined) return quick;
    }
  }
  return radixSelect(arrays, k);
}

let smallScratch = new Float32Array(0);
const RANGE_BUCKETS = 1024;
const rangeHistogram = new Uint32Array(RANGE_BUCKETS);

/**
 * The k-th largest of `values`, all finite and within [lo, hi]: a histogram of 1,024 equal-width
 * buckets over [lo, hi] (bucket = ⌊(x − lo)·scale⌋, monotonic in x, so bucket order is value order and
 * equal values share a bucket), then a sort of the one bucket that holds the k-th value.
 * `undefined` when the range is unbounded or that bucket is crowded (> 4,096 values).
 */
function selectInRange(values: Float32Array, k: number, lo: number, hi: number): Selection | undefined {
  const n = values.length;
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return undefined;
  if (lo === hi) return { value: lo === 0 ? 0 : lo, above: 0, ties: n };
  const scale = (RANGE_BUCKETS - 1) / (hi - lo);
  if (!Number.isFinite(scale)) return undefined;
  rangeHistogram.fill(0);
  for (let index = 0; index < n; index += 1) rangeHistogram[Math.floor((values[index]! - lo) * scale)]!++;
  let above = 0;
  let bucket = RANGE_BUCKETS - 1;
  for (; bucket >= 0; bucket -= 1) {
    const count = rangeHistogram[bucket]!;
    if (above + count >= k) break;
    above += count;
  }
  const size = rangeHistogram[bucket]!;
  if (bucket < 0 || size > 4096) return undefined;
  if (bucketScratch.length < size) bucketScratch = new Float32Array(Math.max(size, 256));
  const members = bucketScratch.subarray(0, size);
  let filled = 0;
  for (let index = 0; index < n; index += 1) {
    const x = values[index]!;
    if (Math.floor((x - lo) * scale) === bucket) members[filled++] = x;
  }
  members.sort(); // ascending
  const selection = tally(members, members[size - (k - above)]!);
  return { ...selection, above: above + selection.above };
}
let bucketScratch = new Float32Array(0);

function containsNaN(values: Float32Array): boolean {
  for (let index = 0; index < values.length; index += 1) if (Number.isNaN(values[index])) return true;
  return false;
}

/**
 * The k-th largest of `values` (no NaN), found by a quickselect that permutes `values` in place:
 * three-way partitions around a median-of-three pivot, so runs of equal scores cost one pass. Gives
 * up (`undefined`) after 4·log₂(n) + 32 partitions, so an adversarial order cannot make it
 * quadratic; the caller then runs the radix select.
 */
function selectByQuickselect(values: Float32Array, k: number): Selection | undefined {
  let low = 0;
  let high = values.length - 1;
  // Descending order: the k-th largest ends up at index k − 1.
  const target = k - 1;
  let rounds = 4 * Math.ceil(Math.log2(values.length + 1)) + 32;
  let value = Number.NaN;
  while (rounds > 0) {
    rounds -= 1;
    if (low === high) {
      value = values[low]!;
      break;
    }
    const a = values[low]!;
    const b = values[(low + high) >>> 1]!;
    const c = values[high]!;
    const pivot = a < b ? (b < c ? b : a < c ? c : a) : a < c ? a : b < c ? c : b;
    // Dutch flag: [low, lt) > pivot, [lt, i) == pivot, (gt, high] < pivot.
    let lt = low;
    let gt = high;
    let i = low;
    while (i <= gt) {
      const x = values[i]!;
      if (x > pivot) {
        values[i] = values[lt]!;
        values[lt] = x;
        lt += 1;
        i += 1;
      } else if (x < pivot) {
        values[i] = values[gt]!;
        values[gt] = x;
        gt -= 1;
      } else {
        i += 1;
      }
    }
    if (target < lt) high = lt - 1;
    else if (target > gt) low = gt + 1;
    else {
      value = pivot;
      break;
    }
  }
  return Number.isNaN(value) ? undefined : tally(values, value);
}

/** `value` as a selection of `values`: how many are above it and equal to it (−0 and +0 are one value; +0 is reported). */
function tally(values: Float32Array, value: number): Selection {
  let above = 0;
  let ties = 0;
  for (let index = 0; index < values.length; index += 1) {
    const x = values[index]!;
    above += +(x > value);
    ties += +(x === value);
  }
  return { value: value === 0 ? 0 : value, above, ties };
}

/** Inputs at least this long try the sampled bracket first. */
const SAMPLED_MIN_LENGTH = 16384;
/** The golden ratio's fractional part: j·φ mod 1 spreads sample positions evenly (a Weyl sequence). */
const GOLDEN_FRACTION = 0.6180339887498949;
let sampleScratch = new Float32Array(0);
/** Created on first use; `null` where WebAssembly SIMD is missing. */
let simdSelector: SimdSelector | null | undefined;

function selector(): SimdSelector | null {
  if (simdSelector === undefined) simdSelector = SimdSelector.create() ?? null;
  return simdSelector;
}

/** The value at 0-based position `index` of the concatenation of `arrays`. */
function valueAt(arrays: readonly Float32Array[], index: number): number {
  let rest = index;
  for (const array of arrays) {
    if (rest < array.length) return array[rest]!;
    rest -= array.length;
  }
  return Number.NaN;
}

/**
 * The sampled bracket described in the module comment; `undefined` when WebAssembly SIMD is
 * missing, the input is too long to stage, the bracket misses the k-th value or a NaN is seen (the
 * caller then runs the full radix select, which also reports NaNs).
 */
function selectBySample(
  arrays: readonly Float32Array[],
  n: number,
  k: number,
): (Selection & { staged: SimdSelector }) | undefined {
  const simd = selector();
  if (simd === null || !simd.stage(arrays, n)) return undefined;
  const selection = bracketSelect(n, k, arrays, (lo, hi) => simd.bracket(lo, hi));
  return selection && { ...selection, staged: simd };
}

/**
 * The k-th largest of the n scores of `parts` (read as one concatenation) from a sampled bracket:
 * `scan` counts those above hi and below lo and returns those in [lo, hi].
 */
function bracketSelect(
  n: number,
  k: number,
  parts: readonly Float32Array[],
  scan: (lo: number, hi: number) => { above: number; below: number; inside: Float32Array },
  hint?: SelectionHint,
): Selection | undefined {
  if (hint?.lo !== undefined && hint.hi !== undefined) {
    const hinted = selectWithin(n, k, hint.lo, hint.hi, scan);
    if (hinted !== undefined) {
      updateHint(hint, n, hinted);
      return hinted.selection;
    }
  }
  const sampled = sampleAndSelect(n, k, parts, scan);
  if (sampled !== undefined && hint !== undefined) updateHint(hint, n, sampled);
  return sampled?.selection;
}

/**
 * What a caller that selects from slowly changing scores (learned scores, re-selected every step)
 * keeps between calls to {@link topCountMaskTensors}: the last threshold and a bracket around it.
 * The next call first tries that bracket, which skips the sample and its sort and, being narrow,
 * copies few scores aside; when it misses, the call samples as usual. Results are exact either way.
 * Create an empty object and pass the same one each time.
 */
export interface SelectionHint {
  lo?: number;
  hi?: number;
  threshold?: number;
}

interface Bracketed {
  selection: Selection;
  lo: number;
  hi: number;
  inside: number;
}

/** Scans with bounds [lo, hi]; `undefined` when they do not hold the k-th value or a NaN is seen. */
function selectWithin(
  n: number,
  k: number,
  lo: number,
  hi: number,
  scan: (lo: number, hi: number) => { above: number; below: number; inside: Float32Array },
): Bracketed | undefined {
  const { above, below, inside } = scan(lo, hi);
  // A NaN fails every comparison, so it shows up as a missing count.
  if (above + below + inside.length !== n) return undefined;
  if (!(above < k && k <= above + inside.length)) return undefined;
  const inner = selectInRange(inside, k - above, lo, hi) ?? radixSelect([inside], k - above);
  return {
    selection: { value: inner.value, above: above + inner.above, ties: inner.ties },
    lo,
    hi,
    inside: inside.length,
  };
}

/**
 * Centres the next bracket on this threshold, wide enough to hold ~0.5% of the scores (at the
 * density just seen) and at least four times the threshold's last move.
 */
function updateHint(hint: SelectionHint, n: number, bracketed: Bracketed): void {
  const threshold = bracketed.selection.value;
  const width = bracketed.hi - bracketed.lo;
  const density = Number.isFinite(width) && width > 0 ? bracketed.inside / width : Number.NaN;
  const wanted = Math.max(64, n * 0.005);
  let half = Number.isFinite(density) && density > 0 ? wanted / (2 * density) : Math.abs(threshold) * 0.01;
  if (hint.threshold !== undefined) half = Math.max(half, 4 * Math.abs(threshold - hint.threshold));
  half = Math.max(half, Math.abs(threshold) * 1e-6, 1e-30);
  hint.lo = threshold - half;
  hint.hi = threshold + half;
  hint.threshold = threshold;
}

/** The sampled bracket of the module comment. */
function sampleAndSelect(
  n: number,
  k: number,
  parts: readonly Float32Array[],
  scan: (lo: number, hi: number) => { above: number; below: number; inside: Float32Array },
): Bracketed | undefined {
  const m = Math.min(4096, Math.max(1024, Math.round(4 * Math.sqrt(n))));
  if (sampleScratch.length < m) sampleScratch = new Float32Array(m);
  const sample = sampleScratch.subarray(0, m);
  let position = 0.5 * GOLDEN_FRACTION;
  for (let j = 0; j < m; j += 1) {
    sample[j] = valueAt(parts, Math.floor(position * n));
    position += GOLDEN_FRACTION;
    if (position >= 1) position -= 1;
  }
  sample.sort(); // ascending; NaNs last
  if (Number.isNaN(sample[m - 1])) return undefined;
  // The k-th largest sits near rank q·m from the top of the sample; bracket it by ±(4σ + 2) ranks.
  const q = (k - 0.5) / n;
  const fromTop = q * m;
  const spread = Math.ceil(4 * Math.sqrt(m * q * (1 - q)) + 2);
  const hiRank = Math.floor(fromTop - spread);
  const loRank = Math.ceil(fromTop + spread);
  const hi = hiRank < 0 ? Number.POSITIVE_INFINITY : sample[m - 1 - hiRank]!;
  const lo = loRank >= m ? Number.NEGATIVE_INFINITY : sample[m - 1 - loRank]!;
  return selectWithin(n, k, lo, hi, scan);
}

/**
 * The active wasm backend's heap and the SIMD scans bound to its memory; `undefined` on another
 * backend or where WebAssembly SIMD is missing.
 */
function wasmHeap() {
  const heap = wasmHeapOf();
  const scans = heap && scansFor(heap.memory);
  return heap && scans && { ...heap, scans };
}

/** Scratch space in the wasm backend's heap for the bracket's copy, per backend instance. */
const heapScratch = new WeakMap<object, { offset: number; bytes: number }>();
/** The largest selection band kept allocated between calls (64 MiB: 16M scores). */
const KEPT_SCRATCH_BYTES = 64 * 1024 * 1024;

/**
 * A backend's own top-count selection: the masks of {@link topCountMasks} (exactly `keep` ones over
 * all the tensors together, ties to the lower tensor then the lower index) computed where the
 * tensors lie, or `undefined` when it does not apply.
 *
 * @example
 * ```ts
 * const route: TopCountRoute = (scores, keep) => (keep > 0 ? undefined : scores.map((s) => tf.zerosLike(s)));
 * ```
 */
export type TopCountRoute = (scores: readonly tf.Tensor[], keep: number) => tf.Tensor[] | undefined;

const topCountRoutes = sharedState('tensor.topCountRoutes.v1', () => new Map<string, TopCountRoute>());

/**
 * Registers (or with `undefined`, removes) a backend's device-side top-count selection, which
 * {@link topCountMaskTensors} then tries first on that backend: the WebGPU backend selects on the GPU
 * so that a learned-score step reads nothing back.
 *
 * @param backend - the TF.js backend name (`'webgpu'`)
 * @param route - the selection, or `undefined` to remove it
 *
 * @example
 * ```ts
 * registerTopCountRoute('webgpu', gpuTopCountMasks);
 * ```
 */
export function registerTopCountRoute(backend: string, route: TopCountRoute | undefined): void {
  if (route === undefined) topCountRoutes.delete(backend);
  else topCountRoutes.set(backend, route);
}

/**
 * Top-count masks of score tensors, computed where the tensors lie on the `wasm` backend: the same
 * masks as {@link topCountMasks} (exactly `keep` ones over all the tensors together, ties to the lower
 * tensor then the lower index), returned as new float32 tensors, without reading the scores out of
 * the wasm heap nor copying masks back in. On a backend with a route of {@link registerTopCountRoute}
 * (WebGPU), that route answers instead. The bracket scan and the mask writes are WebAssembly SIMD
 * bound to the backend's memory. Returns `undefined` when this route does not apply (another
 * backend, no WebAssembly SIMD, fewer than 16,384 scores, keep of 0 or all, a NaN, or the rare
 * bracket miss): use `topCountMasks` on the read values then.
 *
 * @param scores - float32 score tensors (one for a local selection, several for a global one)
 * @param keep - how many ones the masks hold in total
 * @param hint - optional state kept by the caller between calls on the same, slowly changing scores
 *   (see {@link SelectionHint}); it speeds selection up and never changes the result
 * @returns one 0/1 float32 mask per score tensor (owned by the caller), or `undefined`
 *
 * @example
 * ```ts
 * const masks = topCountMaskTensors([scores], 1000) ?? [tf.tensor(topCountMasks([await readFloat32(scores)], 1000)[0]!, scores.shape)];
 * ```
 */
export function topCountMaskTensors(
  scores: readonly tf.Tensor[],
  keep: number,
  hint?: SelectionHint,
): tf.Tensor[] | undefined {
  const route = topCountRoutes.get(tfCore.getBackend());
  if (route !== undefined && scores.length > 0) return route(scores, keep);
  if (tfCore.getBackend() !== 'wasm' || scores.length === 0) return undefined;
  if (scores.some((tensor) => tensor.dtype !== 'float32' || tensor.isDisposed)) return undefined;
  const n = scores.reduce((sum, tensor) => sum + tensor.size, 0);
  if (n < SAMPLED_MIN_LENGTH || !(Number.isInteger(keep) && keep > 0 && keep < n)) return undefined;
  const heap = wasmHeap();
  const malloc = heap?.backend.wasm?._malloc;
  const free = heap?.backend.wasm?._free;
  if (heap === undefined || !malloc || !free) return undefined;
  const { backend, memory, scans, offsetOf } = heap;

  // Allocate everything first: an allocation may grow (and so move) the heap's buffer.
  let scratch = heapScratch.get(backend);
  if (scratch === undefined || scratch.bytes < n * 4) {
    if (scratch !== undefined) free(scratch.offset);
    // Emscripten returns the address as a signed i32; above 2 GiB it reads negative.
    scratch = { offset: malloc(n * 4 + 16) >>> 0, bytes: n * 4 };
    if (scratch.offset === 0) {
      heapScratch.delete(backend);
      return undefined;
    }
    heapScratch.set(backend, scratch);
  }
  const outputs = scores.map((tensor) => backend.makeOutput([...tensor.shape], 'float32'));
  const sources = scores.map((tensor) => ({ offset: offsetOf(tensor), size: tensor.size }));
  const values = new Float32Array(memory.buffer);
  const band = scratch.offset;

  const parts = sources.map((source) => values.subarray(source.offset / 4, source.offset / 4 + source.size));
  const selection = bracketSelect(
    n,
    keep,
    parts,
    (lo, hi) => {
      let above = 0;
      let below = 0;
      let count = 0;
      // Two i32 counters right after the bracket's space.
      const counters = scratch.offset + scratch.bytes;
      for (const source of sources) {
        count += scans.bracket(source.offset, source.size, lo, hi, band + count * 4, counters);
        const view = new Int32Array(memory.buffer, counters, 2);
        above += view[0]!;
        below += view[1]!;
      }
      return { above, below, inside: new Float32Array(memory.buffer, band, count) };
    },
    hint,
  );
  if (scratch.bytes > KEPT_SCRATCH_BYTES) {
    // A large band (85M scores: 340 MB) is not kept between selections: the heap it frees holds
    // the training step's activations and gradients instead, within the heap's 4 GiB.
    free(scratch.offset);
    heapScratch.delete(backend);
  }
  if (selection === undefined) {
    for (const output of outputs) backend.disposeData(output.dataId);
    return undefined;
  }
  const { value: threshold, above, ties } = selection;
  const tiesToKeep = keep - above;
  const allTies = tiesToKeep === ties;
  outputs.forEach((output, index) => {
    const source = sources[index]!;
    (allTies ? scans.maskAtLeast : scans.maskAbove)(source.offset, source.size, threshold, offsetOf(output));
  });
  if (!allTies) {
    const view = (offset: number, size: number) => new Float32Array(memory.buffer, offset, size);
    keepFirstTies(
      sources.map((source) => view(source.offset, source.size)),
      outputs.map((output, index) => view(offsetOf(output), sources[index]!.size)),
      threshold,
      tiesToKeep,
    );
  }
  return outputs.map((output) => tfCore.engine().makeTensorFromTensorInfo(output));
}

/**
 * Threshold masks of score tensors on the `wasm` backend: for each tensor a new float32 mask with 1
 * where score > `cut` (the comparison of `tf.greater(scores, cut)`, `cut` rounded to float32; NaN
 * scores give 0), and the number of ones, from one WebAssembly SIMD pass over the tensor where it
 * lies in the wasm heap. Returns `undefined` elsewhere (another backend, no WebAssembly SIMD, a
 * dtype other than float32): use `tf.greater` then.
 *
 * @param scores - float32 score tensors
 * @param cut - the threshold
 * @returns the masks (owned by the caller) and their counts of ones, or `undefined`
 *
 * @example
 * ```ts
 * const result = thresholdMaskTensors([scores], 0.1);
 * if (result) console.log(result.counts[0], 'kept');
 * ```
 */
export function thresholdMaskTensors(
  scores: readonly tf.Tensor[],
  cut: number,
): { masks: tf.Tensor[]; counts: number[] } | undefined {
  if (tfCore.getBackend() !== 'wasm' || Number.isNaN(cut)) return undefined;
  if (scores.some((tensor) => tensor.dtype !== 'float32' || tensor.isDisposed || tensor.size === 0))
    return undefined;
  const heap = wasmHeap();
  if (heap === undefined) return undefined;
  const { backend, scans, offsetOf } = heap;
  const outputs = scores.map((tensor) => backend.makeOutput([...tensor.shape], 'float32'));
  const counts = scores.map((tensor, index) =>
    scans.maskAbove(offsetOf(tensor), tensor.size, cut, offsetOf(outputs[index]!)),
  );
  return { masks: outputs.map((output) => tfCore.engine().makeTensorFromTensorInfo(output)), counts };
}

function radixSelect(arrays: readonly Float32Array[], k: number): Selection {
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
  // The selection may have copied these scores into the SIMD selector: then it writes the masks.
  const { value: threshold, above, ties, staged } = selectInternal(arrays, keep);
  const tiesToKeep = keep - above;
  if (tiesToKeep === ties) {
    // Every tie is kept: one branch-free pass, mask = [score >= threshold].
    if (staged) staged.writeMasks(threshold, false, masks);
    else {
      for (let arrayIndex = 0; arrayIndex < arrays.length; arrayIndex += 1) {
        writeMaskAtLeast(arrays[arrayIndex]!, masks[arrayIndex]!, threshold);
      }
    }
    return masks;
  }
  // Some ties are dropped: mask = [score > threshold], then the first `tiesToKeep` ties in
  // (array index, element index) order.
  if (staged) staged.writeMasks(threshold, true, masks);
  else {
    for (let arrayIndex = 0; arrayIndex < arrays.length; arrayIndex += 1) {
      writeMaskAbove(arrays[arrayIndex]!, masks[arrayIndex]!, threshold);
    }
  }
  keepFirstTies(arrays, masks, threshold, tiesToKeep);
  return masks;
}

/** Sets the mask of the first `count` scores equal to `threshold`, in (array, element) order. */
function keepFirstTies(
  scores: readonly Float32Array[],
  masks: readonly Float32Array[],
  threshold: number,
  count: number,
): void {
  let tiesLeft = count;
  for (let arrayIndex = 0; arrayIndex < scores.length && tiesLeft > 0; arrayIndex += 1) {
    const array = scores[arrayIndex]!;
    const mask = masks[arrayIndex]!;
    const length = array.length;
    for (let index = 0; index < length && tiesLeft > 0; index += 1) {
      if (array[index] === threshold) {
        mask[index] = 1;
        tiesLeft -= 1;
      }
    }
  }
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
