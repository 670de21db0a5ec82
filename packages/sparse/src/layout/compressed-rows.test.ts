import { describe, expect, it } from 'vitest';
import { codeOf, messageOf } from '../../test/errors';
import {
  type CompressedRows,
  compressedRowsFromDense,
  denseFromCompressedRows,
  validateCompressedRows,
} from './compressed-rows';

// W = [[1, 0], [0, 2], [3, 0]]: 3 inputs × 2 outputs. Output 0 reads inputs 0 and 2, output 1 input 1.
const KERNEL = [1, 0, 0, 2, 3, 0];

describe('compressedRowsFromDense', () => {
  it('groups the nonzero weights by output, inputs ascending', () => {
    const rows = compressedRowsFromDense(KERNEL, [3, 2]);
    expect(rows.inputSize).toBe(3);
    expect(rows.outputSize).toBe(2);
    expect(Array.from(rows.rowPointers)).toEqual([0, 2, 3]);
    expect(Array.from(rows.inputIndices)).toEqual([0, 2, 1]);
    expect(Array.from(rows.values)).toEqual([1, 3, 2]);
  });

  it('follows the mask: keeps masked-in zeros, drops masked-out nonzeros', () => {
    // mask keeps (0,0), (0,1) whose weight is 0, and (1,1); drops (2,0) whose weight is 3.
    const rows = compressedRowsFromDense(KERNEL, [3, 2], { mask: [1, 1, 0, 1, 0, 0] });
    expect(Array.from(rows.rowPointers)).toEqual([0, 1, 3]);
    expect(Array.from(rows.inputIndices)).toEqual([0, 0, 1]);
    expect(Array.from(rows.values)).toEqual([1, 0, 2]);
  });

  it('handles 0% kept: every output empty', () => {
    const rows = compressedRowsFromDense(KERNEL, [3, 2], { mask: new Uint8Array(6) });
    expect(Array.from(rows.rowPointers)).toEqual([0, 0, 0]);
    expect(rows.inputIndices.length).toBe(0);
    expect(rows.values.length).toBe(0);
  });

  it('handles 100% kept: every input of every output, zeros included', () => {
    const rows = compressedRowsFromDense(KERNEL, [3, 2], { mask: [1, 1, 1, 1, 1, 1] });
    expect(Array.from(rows.rowPointers)).toEqual([0, 3, 6]);
    expect(Array.from(rows.inputIndices)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(Array.from(rows.values)).toEqual([1, 0, 3, 0, 2, 0]);
  });

  it('handles an empty input (row of the kernel) and an empty output (column)', () => {
    // 3 inputs × 3 outputs; input 1 has no weight, output 2 has none.
    const rows = compressedRowsFromDense([5, 6, 0, 0, 0, 0, 7, 0, 0], [3, 3]);
    expect(Array.from(rows.rowPointers)).toEqual([0, 2, 3, 3]);
    expect(Array.from(rows.inputIndices)).toEqual([0, 2, 0]);
    expect(Array.from(rows.values)).toEqual([5, 7, 6]);
  });

  it('round-trips through denseFromCompressedRows', () => {
    const dense = [0, 1.5, 0, -2, 0, 0, 0, 0, 4, 0, 0, 0.25];
    expect(Array.from(denseFromCompressedRows(compressedRowsFromDense(dense, [4, 3])))).toEqual(dense);
  });

  it('refuses bad shapes, lengths and masks with INVALID_ARGUMENT', () => {
    expect(codeOf(() => compressedRowsFromDense(KERNEL, [0, 6] as [number, number]))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => compressedRowsFromDense(KERNEL, [1.5, 4] as [number, number]))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => compressedRowsFromDense(KERNEL, [2, 2]))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => compressedRowsFromDense(KERNEL, [3, 2], { mask: [1, 0] }))).toBe('INVALID_ARGUMENT');
    const message = messageOf(() => compressedRowsFromDense(KERNEL, [3, 2], { mask: [1, 0, 0.5, 1, 0, 0] }));
    expect(message).toContain('Mask entry 2 (input 1, output 0) is 0.5');
  });
});

describe('validateCompressedRows (untrusted arrays)', () => {
  const good = (): CompressedRows => compressedRowsFromDense(KERNEL, [3, 2]);

  it('accepts well-formed rows and returns them', () => {
    const rows = good();
    expect(validateCompressedRows(rows)).toBe(rows);
  });

  it.each<[string, (rows: CompressedRows) => CompressedRows, string]>([
    [
      'a missing pointer',
      (rows) => ({ ...rows, rowPointers: Int32Array.from([0, 2]) }),
      'rowPointers has 2 entries',
    ],
    [
      'pointers that decrease',
      (rows) => ({ ...rows, rowPointers: Int32Array.from([0, 4, 3]) }),
      'row pointers decrease at output 1 (4 then 3)',
    ],
    [
      'a duplicate input',
      (rows) => ({ ...rows, inputIndices: Int32Array.from([0, 0, 1]) }),
      'lists input 0 after 0',
    ],
    [
      'inputs out of order',
      (rows) => ({ ...rows, inputIndices: Int32Array.from([2, 0, 1]) }),
      'lists input 0 after 2',
    ],
    [
      'an input out of range',
      (rows) => ({ ...rows, inputIndices: Int32Array.from([0, 3, 1]) }),
      'lists input 3',
    ],
    [
      'a negative input',
      (rows) => ({ ...rows, inputIndices: Int32Array.from([-1, 2, 1]) }),
      'lists input -1',
    ],
    [
      'too few values',
      (rows) => ({ ...rows, values: Float32Array.from([1, 3]) }),
      'do not describe the same',
    ],
    [
      'a last pointer past the end',
      (rows) => ({ ...rows, rowPointers: Int32Array.from([0, 2, 4]) }),
      'do not describe',
    ],
    [
      'values of the wrong type',
      (rows) => ({ ...rows, values: [1, 3, 2] as unknown as Float32Array }),
      'Float32Array',
    ],
    [
      'indices of the wrong type',
      (rows) => ({ ...rows, inputIndices: [0, 2, 1] as unknown as Int32Array }),
      'Int32Array',
    ],
    ['a zero size', (rows) => ({ ...rows, outputSize: 0 }), 'outputSize must be an integer'],
    ['a fractional size', (rows) => ({ ...rows, inputSize: 2.5 }), 'inputSize must be an integer'],
  ])('refuses %s with INVALID_ARGUMENT, naming the source', (_, spoil, expected) => {
    const rows = spoil(good());
    expect(codeOf(() => validateCompressedRows(rows, 'model.bin: dense/kernel'))).toBe('INVALID_ARGUMENT');
    expect(messageOf(() => validateCompressedRows(rows, 'model.bin: dense/kernel'))).toContain(expected);
  });

  it('refuses more nonzeros than the matrix has positions', () => {
    const rows: CompressedRows = {
      inputSize: 1,
      outputSize: 1,
      rowPointers: Int32Array.from([0, 2]),
      inputIndices: Int32Array.from([0, 0]),
      values: Float32Array.from([1, 1]),
    };
    expect(messageOf(() => validateCompressedRows(rows))).toContain('2 nonzeros do not fit a 1×1 matrix');
  });
});
