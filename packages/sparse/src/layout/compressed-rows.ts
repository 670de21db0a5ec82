/**
 * Compressed rows (CSR) over the output units of a Dense kernel: the neutral form every in-memory
 * layout is built from, and the form a loader of the wire format hands over.
 *
 * A TF.js Dense kernel W has shape [inputs, outputs] and computes y = x·W. Here "row o" is output
 * unit o, i.e. column o of W: its nonzeros are the inputs k with W[k, o] kept, listed in ascending k.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * The kept weights of a [inputs, outputs] matrix, grouped by output unit (compressed sparse rows,
 * where a row is an output unit).
 *
 * @example
 * ```ts
 * // W = [[1, 0], [0, 2], [3, 0]] (3 inputs, 2 outputs): output 0 reads inputs 0 and 2, output 1 input 1.
 * const rows: CompressedRows = {
 *   inputSize: 3,
 *   outputSize: 2,
 *   rowPointers: Int32Array.from([0, 2, 3]),
 *   inputIndices: Int32Array.from([0, 2, 1]),
 *   values: Float32Array.from([1, 3, 2]),
 * };
 * ```
 */
export interface CompressedRows {
  /** K, the number of inputs (rows of the TF.js kernel). */
  inputSize: number;
  /** N, the number of outputs (columns of the TF.js kernel). */
  outputSize: number;
  /** N + 1 offsets into `inputIndices`/`values`; output o's nonzeros are [rowPointers[o], rowPointers[o+1]). */
  rowPointers: Int32Array;
  /** The input index k of each nonzero, strictly ascending within an output. */
  inputIndices: Int32Array;
  /** The weight W[k, o] of each nonzero. */
  values: Float32Array;
}

/**
 * Sizes above this are refused: byte offsets 4k (and the padding offset 4K) must fit an int32.
 *
 * @example
 * ```ts
 * if (inputs > MAX_LAYOUT_ELEMENTS) throw new Error('split the matrix');
 * ```
 */
export const MAX_LAYOUT_ELEMENTS = 2 ** 28;

function invalid(message: string, fix: string, details?: Record<string, unknown>): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix, details });
}

function checkSize(name: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_LAYOUT_ELEMENTS) {
    throw invalid(
      `${name} must be an integer from 1 to ${MAX_LAYOUT_ELEMENTS}, got ${String(value)}.`,
      `Pass the matrix's ${name} as a positive integer.`,
      { [name]: value },
    );
  }
  return value as number;
}

/**
 * Checks that `rows` is a well-formed {@link CompressedRows}: sizes in range, N + 1 non-decreasing row
 * pointers from 0 to the nonzero count, input indices inside [0, K) and strictly ascending within
 * each output, and as many values as indices. Untrusted arrays (a loaded file) go through here.
 *
 * @param rows - the candidate
 * @param source - where it came from, named in errors (a file and tensor name)
 * @returns `rows`, typed
 * @throws FinepruneError `INVALID_ARGUMENT` naming the first violation
 *
 * @example
 * ```ts
 * const rows = validateCompressedRows(decoded, 'model.sparse.bin: dense_1/kernel');
 * ```
 */
export function validateCompressedRows(rows: CompressedRows, source = 'the compressed rows'): CompressedRows {
  const inputSize = checkSize('inputSize', rows?.inputSize);
  const outputSize = checkSize('outputSize', rows.outputSize);
  const { rowPointers, inputIndices, values } = rows;
  if (!(rowPointers instanceof Int32Array) || !(inputIndices instanceof Int32Array)) {
    throw invalid(
      `${source}: rowPointers and inputIndices must be Int32Arrays.`,
      'Convert them with Int32Array.from(...).',
    );
  }
  if (!(values instanceof Float32Array)) {
    throw invalid(`${source}: values must be a Float32Array.`, 'Convert them with Float32Array.from(...).');
  }
  if (rowPointers.length !== outputSize + 1) {
    throw invalid(
      `${source}: rowPointers has ${rowPointers.length} entries; ${outputSize} outputs need ${outputSize + 1}.`,
      'Give one pointer per output plus the final end pointer.',
      { rowPointers: rowPointers.length, outputSize },
    );
  }
  const nonzeros = inputIndices.length;
  if (values.length !== nonzeros || rowPointers[0] !== 0 || rowPointers[outputSize] !== nonzeros) {
    throw invalid(
      `${source}: ${nonzeros} input indices, ${values.length} values, and row pointers from ${rowPointers[0]} to ${rowPointers[outputSize]} do not describe the same nonzeros.`,
      'rowPointers must start at 0 and end at the number of nonzeros, which values and inputIndices both hold.',
      { nonzeros, values: values.length, first: rowPointers[0], last: rowPointers[outputSize] },
    );
  }
  if (nonzeros > inputSize * outputSize) {
    throw invalid(
      `${source}: ${nonzeros} nonzeros do not fit a ${inputSize}×${outputSize} matrix.`,
      'Check the shape and the index arrays.',
    );
  }
  // Non-decreasing from 0 to the nonzero count: then every row's range lies inside the arrays.
  for (let output = 0; output < outputSize; output += 1) {
    if (rowPointers[output + 1]! < rowPointers[output]!) {
      throw invalid(
        `${source}: row pointers decrease at output ${output} (${rowPointers[output]} then ${rowPointers[output + 1]}).`,
        'Row pointers must be non-decreasing.',
        { output },
      );
    }
  }
  for (let output = 0; output < outputSize; output += 1) {
    let previous = -1;
    for (let entry = rowPointers[output]!; entry < rowPointers[output + 1]!; entry += 1) {
      const input = inputIndices[entry]!;
      if (input <= previous || input >= inputSize) {
        throw invalid(
          `${source}: output ${output} lists input ${input} after ${previous}; indices must ascend strictly inside [0, ${inputSize}).`,
          'Sort each output’s input indices and drop duplicates and out-of-range ones.',
          { output, entry, input },
        );
      }
      previous = input;
    }
  }
  return rows;
}

/**
 * A weight or mask given as a flat array of K·N numbers in [inputs, outputs] (row-major) order.
 *
 * @example
 * ```ts
 * const mask: DenseValues = new Uint8Array([1, 0, 0, 1]); // a 2×2 kernel keeping its diagonal
 * ```
 */
export type DenseValues = Float32Array | Float64Array | Int32Array | Uint8Array | readonly number[];

/**
 * Options of {@link compressedRowsFromDense}.
 *
 * @example
 * ```ts
 * const options: DenseToRowsOptions = { mask: maskValues };
 * ```
 */
export interface DenseToRowsOptions {
  /**
   * A 0/1 mask of the same shape: 1 keeps the weight (even when it is 0), 0 drops it. Without a
   * mask every nonzero weight is kept.
   */
  mask?: DenseValues;
}

/**
 * Builds {@link CompressedRows} from a dense TF.js Dense kernel (flat, [inputs, outputs] row-major,
 * as `kernel.dataSync()` returns it) and optionally its 0/1 mask.
 *
 * @param weights - K·N weights
 * @param shape - [inputs K, outputs N]
 * @param options - the mask
 * @returns the kept weights by output unit
 * @throws FinepruneError `INVALID_ARGUMENT` for a bad shape, a length mismatch or a mask entry other than 0 or 1
 *
 * @example
 * ```ts
 * const rows = compressedRowsFromDense(kernel.dataSync(), [784, 300], { mask: mask.dataSync() });
 * ```
 */
export function compressedRowsFromDense(
  weights: DenseValues,
  shape: readonly [number, number],
  options: DenseToRowsOptions = {},
): CompressedRows {
  const [inputSize, outputSize] = [checkSize('inputSize', shape?.[0]), checkSize('outputSize', shape[1])];
  const size = inputSize * outputSize;
  if (weights?.length !== size) {
    throw invalid(
      `The weights hold ${weights?.length} numbers; a [${inputSize}, ${outputSize}] kernel has ${size}.`,
      'Pass the kernel in TF.js Dense layout, [inputs, outputs], flattened row-major.',
      { length: weights?.length, shape },
    );
  }
  const mask = options.mask;
  if (mask !== undefined && mask.length !== size) {
    throw invalid(
      `The mask holds ${mask.length} numbers; the kernel has ${size}.`,
      'Pass a mask of the kernel’s shape.',
      { length: mask.length, shape },
    );
  }
  const kept = (index: number): boolean => {
    if (mask === undefined) return weights[index] !== 0;
    const bit = mask[index];
    if (bit !== 0 && bit !== 1) {
      throw invalid(
        `Mask entry ${index} (input ${Math.floor(index / outputSize)}, output ${index % outputSize}) is ${bit}; masks hold 0 or 1.`,
        'Binarise the mask first (for example tf.greater(mask, 0.5)).',
        { index, value: bit },
      );
    }
    return bit === 1;
  };
  const counts = new Int32Array(outputSize + 1);
  for (let index = 0; index < size; index += 1) if (kept(index)) counts[(index % outputSize) + 1]! += 1;
  for (let output = 0; output < outputSize; output += 1)
    counts[output + 1] = counts[output + 1]! + counts[output]!;
  const rowPointers = counts.slice();
  const nonzeros = rowPointers[outputSize]!;
  const inputIndices = new Int32Array(nonzeros);
  const values = new Float32Array(nonzeros);
  const cursor = counts; // reused as the write position of each output
  for (let input = 0; input < inputSize; input += 1) {
    for (let output = 0; output < outputSize; output += 1) {
      const index = input * outputSize + output;
      if (!kept(index)) continue;
      const at = cursor[output]!;
      inputIndices[at] = input;
      values[at] = weights[index]!;
      cursor[output] = at + 1;
    }
  }
  return { inputSize, outputSize, rowPointers, inputIndices, values };
}

/**
 * The dense [inputs, outputs] kernel (row-major) that {@link CompressedRows} describe, with zeros
 * where nothing is kept.
 *
 * @param rows - the kept weights
 * @returns K·N float32 values
 *
 * @example
 * ```ts
 * const kernel = tf.tensor2d(denseFromCompressedRows(rows), [rows.inputSize, rows.outputSize]);
 * ```
 */
export function denseFromCompressedRows(rows: CompressedRows): Float32Array {
  const dense = new Float32Array(rows.inputSize * rows.outputSize);
  for (let output = 0; output < rows.outputSize; output += 1) {
    for (let entry = rows.rowPointers[output]!; entry < rows.rowPointers[output + 1]!; entry += 1) {
      dense[rows.inputIndices[entry]! * rows.outputSize + output] = rows.values[entry]!;
    }
  }
  return dense;
}
