/**
 * The in-memory layout every sparse kernel here reads: sliced rows of four, sorted by length
 * ("SELL-4-σ" in the sparse-matrix literature; Sputnik's row swizzle is the same sort).
 *
 * Output units (rows) are sorted by their number of nonzeros, longest first, and cut into groups of
 * four consecutive sorted rows. A group is stored as `length` slots of four lanes, where `length` is
 * the group's longest row: slot j, lane l holds the j-th nonzero of the group's l-th row, or padding
 * (value 0, offset 4K) once that row has ended. Sorting keeps the padding small: neighbours in the
 * sorted order have nearly equal lengths.
 *
 * What each kernel reads:
 * - batch 1, WebAssembly SIMD: one slot at a time, the four lanes in one v128 (four values, four
 *   input gathers), so four rows advance together; padding multiplies a zero weight by a zero input.
 * - batch ≥ 2, WebAssembly SIMD: one row at a time down its lane (stride 16 bytes) for its own length,
 *   each nonzero's weight splat across a v128 of four batch elements of the transposed input.
 * - WGSL: one workgroup per group, lanes of adjacent invocations read adjacent values.
 * - cpu (JavaScript): one row at a time, like the batch ≥ 2 kernel.
 *
 * Input positions are stored as byte offsets 4k (what a WebAssembly load wants; the other kernels
 * shift right by 2), and padding points at offset 4K, one past the last input, where the wasm kernels
 * put a zero. Everything a kernel needs besides values and offsets lives in one int32 array,
 * `structure`, so a kernel binds three buffers for the weights.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type CompressedRows, validateCompressedRows } from './compressed-rows';

/**
 * Rows per group: the four lanes of a 128-bit SIMD vector of float32.
 *
 * @example
 * ```ts
 * const groups = Math.ceil(outputs / LANES);
 * ```
 */
export const LANES = 4;

/**
 * A matrix in the sliced-rows layout. See the module comment for the meaning of slots and lanes.
 *
 * @example
 * ```ts
 * const layout = slicedRows(compressedRowsFromDense(kernel, [784, 300], { mask }));
 * console.log(layout.groups, layout.slots, layout.nonzeros); // 75 groups, slots ≥ nonzeros / 4
 * ```
 */
export interface SlicedRows {
  /** K, the number of inputs. */
  inputSize: number;
  /** N, the number of outputs. */
  outputSize: number;
  /** The number of kept weights. */
  nonzeros: number;
  /** ⌈N / 4⌉. */
  groups: number;
  /** Slots in use (the sum of the groups' lengths); `values` holds at least 4·slots entries. */
  slots: number;
  /**
   * Three int32 sections, one after the other: `groups + 1` slot offsets (group g is slots
   * [s[g], s[g+1])), then `4·groups` output units in sorted order (−1 for the lanes past N), then
   * `4·groups` row lengths in the same order. {@link structureSections} gives where each starts.
   */
  structure: Int32Array;
  /** 4·slots (at least 4) byte offsets 4k of each nonzero's input; 4K for padding. */
  offsets: Int32Array;
  /** 4·slots (at least 4) weights; 0 for padding. */
  values: Float32Array;
}

/**
 * Where the sections of a {@link SlicedRows.structure} start, in int32 elements.
 *
 * @param groups - the layout's group count
 * @returns the starts of the slot offsets (always 0), the row order and the row lengths
 *
 * @example
 * ```ts
 * const { rowOrder } = structureSections(layout.groups);
 * const firstSortedOutput = layout.structure[rowOrder];
 * ```
 */
export function structureSections(groups: number): {
  slotOffsets: number;
  rowOrder: number;
  rowLengths: number;
} {
  return { slotOffsets: 0, rowOrder: groups + 1, rowLengths: groups + 1 + LANES * groups };
}

/**
 * Output units sorted by nonzero count, longest first; ties keep the original order, so the layout
 * of a given matrix is always the same.
 */
function sortedOutputs(rows: CompressedRows): Int32Array {
  const order = Int32Array.from({ length: rows.outputSize }, (_, output) => output);
  const length = (output: number) => rows.rowPointers[output + 1]! - rows.rowPointers[output]!;
  return order.sort((a, b) => length(b) - length(a) || a - b);
}

/**
 * Builds the sliced-rows layout from compressed rows (validated first: this is where untrusted
 * arrays from a file become kernel input).
 *
 * @param rows - the kept weights by output unit
 * @returns the layout
 * @throws FinepruneError `INVALID_ARGUMENT` when `rows` is malformed (see `validateCompressedRows`)
 *
 * @example
 * ```ts
 * const layout = slicedRows(compressedRowsFromDense(weights, [768, 768], { mask }));
 * ```
 */
export function slicedRows(rows: CompressedRows): SlicedRows {
  validateCompressedRows(rows);
  const { inputSize, outputSize, rowPointers, inputIndices } = rows;
  const groups = Math.ceil(outputSize / LANES);
  const sections = structureSections(groups);
  const structure = new Int32Array(sections.rowLengths + LANES * groups);
  const order = sortedOutputs(rows);
  let slots = 0;
  for (let group = 0; group < groups; group += 1) {
    structure[sections.slotOffsets + group] = slots;
    let longest = 0;
    for (let lane = 0; lane < LANES; lane += 1) {
      const sorted = group * LANES + lane;
      const output = sorted < outputSize ? order[sorted]! : -1;
      const length = output < 0 ? 0 : rowPointers[output + 1]! - rowPointers[output]!;
      structure[sections.rowOrder + sorted] = output;
      structure[sections.rowLengths + sorted] = length;
      longest = Math.max(longest, length);
    }
    slots += longest;
  }
  structure[sections.slotOffsets + groups] = slots;
  if (slots * LANES > 2 ** 31 - 1) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The sliced layout would need ${slots * LANES} entries, more than an int32 can address.`,
      fix: 'Split the matrix into smaller ones.',
    });
  }
  const entries = Math.max(slots, 1) * LANES;
  const offsets = new Int32Array(entries).fill(inputSize * 4);
  const values = new Float32Array(entries);
  for (let sorted = 0; sorted < outputSize; sorted += 1) {
    const output = order[sorted]!;
    const group = Math.floor(sorted / LANES);
    const lane = sorted % LANES;
    let at = structure[sections.slotOffsets + group]! * LANES + lane;
    for (let entry = rowPointers[output]!; entry < rowPointers[output + 1]!; entry += 1) {
      offsets[at] = inputIndices[entry]! * 4;
      values[at] = rows.values[entry]!;
      at += LANES;
    }
  }
  return { inputSize, outputSize, nonzeros: inputIndices.length, groups, slots, structure, offsets, values };
}
