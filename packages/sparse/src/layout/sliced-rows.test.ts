import { describe, expect, it } from 'vitest';
import { compressedRowsFromDense } from './compressed-rows';
import { slicedRows, structureSections } from './sliced-rows';

describe('slicedRows (SELL-4, rows sorted by length)', () => {
  it('lays out a hand-built matrix exactly', () => {
    // W (3 inputs × 5 outputs) = [[1, 0, -2, 0, 0], [0, 3, 0, 0, 0], [4, 0, 5, 0, 0]].
    // Output lengths: o0 = 2 (inputs 0, 2), o1 = 1 (input 1), o2 = 2 (inputs 0, 2), o3 = o4 = 0.
    // Sorted, longest first, ties in output order: o0, o2, o1, o3 | o4, pad, pad, pad.
    // Group 0 is 2 slots long, group 1 is empty. Padding points at byte offset 4K = 12.
    const layout = slicedRows(
      compressedRowsFromDense([1, 0, -2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 5, 0, 0], [3, 5]),
    );
    expect(layout).toMatchObject({ inputSize: 3, outputSize: 5, nonzeros: 5, groups: 2, slots: 2 });
    expect(Array.from(layout.structure)).toEqual([
      ...[0, 2, 2], // slot offsets
      ...[0, 2, 1, 3, 4, -1, -1, -1], // row order
      ...[2, 2, 1, 0, 0, 0, 0, 0], // row lengths
    ]);
    // slot 0: o0's input 0, o2's input 0, o1's input 1, o3 padding; slot 1: o0's input 2, o2's input 2, padding ×2
    expect(Array.from(layout.offsets)).toEqual([0, 0, 4, 12, 8, 8, 12, 12]);
    expect(Array.from(layout.values)).toEqual([1, -2, 3, 0, 4, 5, 0, 0]);
    expect(structureSections(2)).toEqual({ slotOffsets: 0, rowOrder: 3, rowLengths: 11 });
  });

  it('stores an all-empty matrix (0% kept) as one padding slot and zero-length groups', () => {
    const layout = slicedRows(compressedRowsFromDense([0, 0, 0, 0, 0, 0], [2, 3]));
    expect(layout).toMatchObject({ nonzeros: 0, groups: 1, slots: 0 });
    expect(Array.from(layout.structure)).toEqual([0, 0, 0, 1, 2, -1, 0, 0, 0, 0]);
    expect(Array.from(layout.offsets)).toEqual([8, 8, 8, 8]);
    expect(Array.from(layout.values)).toEqual([0, 0, 0, 0]);
  });

  it('stores a full matrix (100% kept) without padding', () => {
    const dense = Float32Array.from({ length: 3 * 8 }, (_, index) => index + 1);
    const layout = slicedRows(compressedRowsFromDense(dense, [3, 8]));
    expect(layout).toMatchObject({ nonzeros: 24, groups: 2, slots: 6 });
    // Group 0 holds outputs 0–3: slot j lane l = W[j, l] = 8j + l + 1.
    expect(Array.from(layout.values.subarray(0, 12))).toEqual([1, 2, 3, 4, 9, 10, 11, 12, 17, 18, 19, 20]);
    expect(Array.from(layout.offsets.subarray(0, 12))).toEqual([0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8]);
  });

  it('validates its input rows', () => {
    const rows = compressedRowsFromDense([1, 2], [1, 2]);
    rows.rowPointers[1] = 5;
    expect(() => slicedRows(rows)).toThrow(/row pointers decrease at output 1/);
  });
});
