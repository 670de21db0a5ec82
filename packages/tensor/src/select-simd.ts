/**
 * The two linear scans of large selections, as WebAssembly SIMD in a private memory: the bracket
 * scan (count the scores above hi and below lo, copy those in [lo, hi] aside) and the mask writes
 * (1 where score ≥ t, or > t). In V8 the same loops in JavaScript cost ~2 ns per score; here the
 * comparisons run four lanes at a time and only groups that hold a score inside the bracket (a few
 * percent) take the scalar copy path.
 *
 * The scores are first copied into this module's memory (one `TypedArray.set`, ~0.05 ms per MiB),
 * so it works alike for scores from any backend. Its memory holds 8 bytes per score of the largest
 * input seen (scores, then the bracket copy, whose space the masks reuse) and is capped at
 * {@link SIMD_SELECT_MAX_LENGTH} scores; larger inputs use the JavaScript path.
 */

import {
  address,
  byteBounds,
  F32,
  f32Const,
  get,
  I32,
  i32Const,
  loopWhileBelow,
  memarg,
  op,
  set,
  simd,
  simdOp,
  V128,
} from './wasm-binary';
import { moduleFunctions } from './fused-module';

/** Inputs longer than this (4M scores, 32 MiB of staging memory) are selected in JavaScript. */
export const SIMD_SELECT_MAX_LENGTH = 1 << 22;

/** Where things lie in the module's memory (byte offsets). */
const COUNTERS = 0; // i32 above, i32 below
const SCORES = 64;

/** The scans, bound to one memory. */
export interface SelectScans {
  bracket(src: number, n: number, lo: number, hi: number, band: number, counters: number): number;
  /** Writes the mask and returns its number of ones. */
  maskAtLeast(src: number, n: number, threshold: number, out: number): number;
  maskAbove(src: number, n: number, threshold: number, out: number): number;
}

/** The bracket scan. Params: src, n, lo, hi, band, counters. */
function bracketFunction() {
  const [src, n, lo, hi, band, counters] = [0, 1, 2, 3, 4, 5];
  // Locals (after the params): i32 cursor, simdEnd, end, count, aboveScalar, belowScalar;
  // v128 LO, HI, value, aboveAcc, belowAcc; f32 scalar.
  const [cursor, simdEnd, end, count, aboveScalar, belowScalar] = [6, 7, 8, 9, 10, 11];
  const [vLo, vHi, vValue, aboveAcc, belowAcc] = [12, 13, 14, 15, 16];
  const scalar = 17;

  // band[count] = scalar; count += (scalar >= lo) & (scalar <= hi)   (branch-free)
  const keepIfInside = [
    ...get(band),
    ...get(count),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    ...get(scalar),
    op.f32Store,
    ...memarg(),
    ...get(count),
    ...get(scalar),
    ...get(lo),
    op.f32Ge,
    ...get(scalar),
    ...get(hi),
    op.f32Le,
    op.i32And,
    op.i32Add,
    ...set(count),
  ];
  const lane = (index: number) => [
    ...address(src, cursor),
    op.f32Load,
    ...memarg(index * 4),
    ...set(scalar),
    ...keepIfInside,
  ];
  const simdStep = [
    ...address(src, cursor),
    ...simd(simdOp.v128Load),
    ...memarg(),
    ...set(vValue),
    // aboveAcc −= (value > HI), belowAcc −= (value < LO) (a true lane is all ones, i.e. −1)
    ...countWhere(aboveAcc, vValue, vHi, simd(simdOp.f32x4Gt), simd(simdOp.i32x4Sub)),
    ...countWhere(belowAcc, vValue, vLo, simd(simdOp.f32x4Lt), simd(simdOp.i32x4Sub)),
    // if any lane is inside [lo, hi] (NaN lanes are not), copy the group's insiders one by one
    ...get(vValue),
    ...get(vLo),
    ...simd(simdOp.f32x4Ge),
    ...get(vValue),
    ...get(vHi),
    ...simd(simdOp.f32x4Le),
    ...simd(simdOp.v128And),
    ...simd(simdOp.v128AnyTrue),
    op.if,
    0x40,
    ...lane(0),
    ...lane(1),
    ...lane(2),
    ...lane(3),
    op.end,
  ];
  const scalarStep = [
    ...address(src, cursor),
    op.f32Load,
    ...memarg(),
    ...set(scalar),
    ...countWhere(aboveScalar, scalar, hi, [op.f32Gt], [op.i32Add]),
    ...countWhere(belowScalar, scalar, lo, [op.f32Lt], [op.i32Add]),
    ...keepIfInside,
  ];
  const body = [
    ...byteBounds(n, end, simdEnd),
    ...get(lo),
    ...simd(simdOp.f32x4Splat),
    ...set(vLo),
    ...get(hi),
    ...simd(simdOp.f32x4Splat),
    ...set(vHi),
    ...loopWhileBelow(cursor, simdEnd, 16, simdStep),
    ...loopWhileBelow(cursor, end, 4, scalarStep),
    ...get(counters),
    ...laneSum(aboveAcc, aboveScalar),
    op.i32Store,
    ...memarg(0),
    ...get(counters),
    ...laneSum(belowAcc, belowScalar),
    op.i32Store,
    ...memarg(4),
    ...get(count),
  ];
  return {
    name: 'bracket',
    params: [I32, I32, F32, F32, I32, I32],
    results: [I32],
    locals: [I32, I32, I32, I32, I32, I32, V128, V128, V128, V128, V128, F32],
    body,
  };
}

/**
 * out[i] = 1 if src[i] ≥ t (or > t when `strict`), else 0; returns the number of ones.
 * Params: src, n, t, out.
 */
function maskFunction(strict: boolean) {
  const [src, n, threshold, out] = [0, 1, 2, 3];
  const [cursor, simdEnd, end, count, compared] = [4, 5, 6, 7, 8];
  const [vThreshold, vOne, vCompared, vCount] = [9, 10, 11, 12];
  const tee = (local: number) => [op.localTee, local];
  const simdStep = [
    ...address(out, cursor),
    ...address(src, cursor),
    ...simd(simdOp.v128Load),
    ...memarg(),
    ...get(vThreshold),
    ...simd(strict ? simdOp.f32x4Gt : simdOp.f32x4Ge),
    ...tee(vCompared),
    ...get(vOne),
    ...simd(simdOp.v128And),
    ...simd(simdOp.v128Store),
    ...memarg(),
    // vCount −= compared (a true lane is −1)
    ...get(vCount),
    ...get(vCompared),
    ...simd(simdOp.i32x4Sub),
    ...set(vCount),
  ];
  const scalarStep = [
    ...address(out, cursor),
    ...address(src, cursor),
    op.f32Load,
    ...memarg(),
    ...get(threshold),
    strict ? op.f32Gt : op.f32Ge,
    ...tee(compared),
    op.f32ConvertI32S,
    op.f32Store,
    ...memarg(),
    ...get(count),
    ...get(compared),
    op.i32Add,
    ...set(count),
  ];
  return {
    name: strict ? 'maskAbove' : 'maskAtLeast',
    params: [I32, I32, F32, I32],
    results: [I32],
    locals: [I32, I32, I32, I32, I32, V128, V128, V128, V128],
    body: [
      ...byteBounds(n, end, simdEnd),
      ...get(threshold),
      ...simd(simdOp.f32x4Splat),
      ...set(vThreshold),
      ...f32Const(1),
      ...simd(simdOp.f32x4Splat),
      ...set(vOne),
      ...loopWhileBelow(cursor, simdEnd, 16, simdStep),
      ...loopWhileBelow(cursor, end, 4, scalarStep),
      ...laneSum(vCount, count),
    ],
  };
}

/**
 * `counter = counter ⊕ compare(value, bound)`: with `accumulate` = i32.add on a scalar 0/1
 * comparison, or i32x4.sub on a SIMD one (whose true lanes are −1).
 */
function countWhere(counter: number, value: number, bound: number, compare: number[], accumulate: number[]) {
  return [...get(counter), ...get(value), ...get(bound), ...compare, ...accumulate, ...set(counter)];
}

/** `plus` + the sum of the four i32 lanes of local `vector`. */
function laneSum(vector: number, plus: number): number[] {
  return [
    ...get(plus),
    ...[0, 1, 2, 3].flatMap((index) => [...get(vector), ...simd(simdOp.i32x4ExtractLane), index, op.i32Add]),
  ];
}

const scanModule = moduleFunctions<SelectScans>(() => [
  bracketFunction(),
  maskFunction(false),
  maskFunction(true),
]);

/**
 * The bracket and mask scans compiled against `memory` (cached per memory); `undefined` where
 * WebAssembly SIMD is not available.
 */
export function scansFor(memory: WebAssembly.Memory): SelectScans | undefined {
  return scanModule(memory) ?? undefined;
}

/** The staged scores of the last {@link SimdSelector.stage} call and the scans over them. */
export class SimdSelector {
  /** How many scores are staged (0: none). */
  private staged = 0;

  private constructor(
    private readonly memory: WebAssembly.Memory,
    private readonly exports: SelectScans,
  ) {}

  /** A selector, or `undefined` where WebAssembly SIMD is not available. */
  static create(): SimdSelector | undefined {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const exports = scansFor(memory);
    if (exports === undefined) return undefined;
    return new SimdSelector(memory, exports);
  }

  private get band(): number {
    return SCORES + Math.ceil((this.staged * 4) / 16) * 16;
  }

  /** Copies `arrays` (n scores in all) into the module's memory, one after the other. */
  stage(arrays: readonly Float32Array[], n: number): boolean {
    if (n > SIMD_SELECT_MAX_LENGTH) return false;
    const needed = SCORES + 2 * (Math.ceil((n * 4) / 16) * 16);
    const have = this.memory.buffer.byteLength;
    if (needed > have) this.memory.grow(Math.ceil((needed - have) / 65536));
    const heap = new Float32Array(this.memory.buffer);
    let offset = SCORES / 4;
    for (const array of arrays) {
      heap.set(array, offset);
      offset += array.length;
    }
    this.staged = n;
    return true;
  }

  /**
   * Counts the staged scores above `hi` and below `lo`, and returns those in [lo, hi] (a view valid
   * until the next call).
   */
  bracket(lo: number, hi: number): { above: number; below: number; inside: Float32Array } {
    const count = this.exports.bracket(SCORES, this.staged, lo, hi, this.band, COUNTERS);
    const counters = new Int32Array(this.memory.buffer, COUNTERS, 2);
    return {
      above: counters[0]!,
      below: counters[1]!,
      inside: new Float32Array(this.memory.buffer, this.band, count),
    };
  }

  /**
   * Writes 0/1 masks of the staged scores (1 where score ≥ threshold, or > threshold when `strict`)
   * into `masks`, which match the staged arrays' lengths.
   */
  writeMasks(threshold: number, strict: boolean, masks: readonly Float32Array[]): void {
    const write = strict ? this.exports.maskAbove : this.exports.maskAtLeast;
    write(SCORES, this.staged, threshold, this.band);
    const heap = new Float32Array(this.memory.buffer);
    let offset = this.band / 4;
    for (const mask of masks) {
      mask.set(heap.subarray(offset, offset + mask.length));
      offset += mask.length;
    }
  }
}
