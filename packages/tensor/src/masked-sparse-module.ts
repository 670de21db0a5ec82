/**
 * The WebAssembly SIMD code of the sparse route of `maskedDense` (masked-sparse.ts), assembled at run
 * time with ./wasm-binary and linked to the wasm backend's heap:
 *
 * - `compress`: one pass over W and M (row-major [K][N]) that lists, row by row, the entries with
 *   M ≠ 0 — their output unit (as a byte offset into a transposed [N][Bpad] matrix) and W·M — in a
 *   compressed-row structure. Four entries at a time and without a branch per entry (at 10% kept
 *   those branches would be mispredicted): the kept lanes of a vector are moved to its front by a
 *   byte shuffle looked up from their bit mask, stored, and the write position moves on by their
 *   count. It returns −1 once the list passes the capacity it was given (its arrays need 4 entries
 *   of slack past it).
 * - `product<V>`: yᵀ[n][chunk] += (W⊙M)[k][n] · xᵀ[k][chunk] over the list, with the chunk of row k
 *   of xᵀ (V vectors, 4V batch entries) held in registers and yᵀ accumulated in memory.
 * - `inputGradient<V>`: dxᵀ[k][chunk] = Σₙ (W⊙M)[k][n] · dyᵀ[n][chunk], accumulated in V registers
 *   per row k of the list (the transposed product needs no second structure).
 * - `untranspose`: y[b][n] = yᵀ[n][b] (+ bias[n]), ReLU'd if asked, a scalar pass.
 * - `straightThrough`: ∂L/∂W = dW′ ⊙ M and ∂L/∂S = dW′ ⊙ W in one pass (Movement Pruning Eq. 2).
 *
 * WebAssembly's fixed-width SIMD has no fused multiply-add: each product is rounded to float32 before
 * it is added, as in TF.js's own kernels; the sums run in a different order from XNNPACK's, so the
 * route agrees with the dense product to float32 rounding, not bit for bit.
 */

import { moduleFunctions } from './fused-module';
import { Locals, load, mul, overRow, shuffleLanes, store } from './simd-math';
import {
  F32,
  f32Const,
  get,
  I32,
  i32Const,
  increment,
  memarg,
  op,
  set,
  simd,
  simdOp,
  whileBelow,
} from './wasm-binary';

/** The widest chunk of the batch a product call holds in registers, in vectors of four. */
export const MAX_CHUNK_VECTORS = 12;

export type Compress = (
  weight: number,
  mask: number,
  rows: number,
  columns: number,
  rowStart: number,
  units: number,
  values: number,
  capacity: number,
  unitBytes: number,
  table: number,
) => number;
export type ChunkProduct = (
  input: number,
  rowStart: number,
  units: number,
  values: number,
  rows: number,
  output: number,
  rowBytes: number,
  chunkBytes: number,
) => void;
export type Untranspose = (
  source: number,
  bias: number,
  target: number,
  batch: number,
  columns: number,
  sourceRowBytes: number,
  hasBias: number,
  floor: number,
) => void;
export type StraightThrough = (
  gradient: number,
  weight: number,
  mask: number,
  dWeight: number,
  dScores: number,
  bytes: number,
) => void;

export interface MaskedSparseFunctions {
  compress: Compress;
  untranspose: Untranspose;
  straightThrough: StraightThrough;
  [name: `product${number}` | `inputGradient${number}`]: ChunkProduct;
}

/** `if (condition on the stack) { body }`. */
function when(condition: number[], body: number[]): number[] {
  return [...condition, op.if, 0x40, ...body, op.end];
}

/** `i32[base + offset]` where `offset` is instructions that leave a byte offset. */
function loadI32(base: number, offset: number[], displacement = 0): number[] {
  return [...get(base), ...offset, op.i32Add, op.i32Load, ...memarg(displacement)];
}

function shiftLeft2(local: number): number[] {
  return [...get(local), ...i32Const(2), op.i32Shl];
}

/**
 * The 16 byte shuffles of `compress`: for each 4-bit set of kept lanes, the bytes of those lanes moved
 * to the front in order (the other lanes read byte 0x80: zero).
 */
export function compactionTable(): Uint8Array {
  const table = new Uint8Array(16 * 16).fill(0x80);
  for (let bits = 0; bits < 16; bits += 1) {
    let next = 0;
    for (let lane = 0; lane < 4; lane += 1) {
      if ((bits & (1 << lane)) === 0) continue;
      for (let byte = 0; byte < 4; byte += 1) table[bits * 16 + next * 4 + byte] = lane * 4 + byte;
      next += 1;
    }
  }
  return table;
}

function compressFunction() {
  const [weight, mask, rows, columns, rowStart, units, values, capacity, unitBytes, table] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
  ];
  const locals = new Locals(10);
  const [row, column, cursor, unitAt, valueAt] = locals.i32s(5);
  const [groupEnd, limit, bits, step] = locals.i32s(4);
  const [maskVector, shuffle, unitVector, firstUnits, unitStep] = locals.v128s(5);
  const maskValue = locals.add(F32);
  const countNow = [...get(unitAt), ...get(units), op.i32Sub, ...i32Const(2), op.i32ShrU];
  const v128At = (base: number) => [
    ...get(base),
    ...get(cursor),
    op.i32Add,
    ...simd(simdOp.v128Load),
    ...memarg(),
  ];
  const swizzled = (vector: number[]) => [...vector, ...get(shuffle), ...simd(0x0e)]; // i8x16.swizzle
  // More kept than the capacity: return −1
  const overCapacity = [...get(unitAt), ...get(limit), op.i32GtU, ...when([], [...i32Const(-1), 0x0f])];
  // The write position moves on by `step` bytes (4 per kept entry); then the capacity check.
  const advance = [
    ...get(unitAt),
    ...get(step),
    op.i32Add,
    ...set(unitAt),
    ...get(valueAt),
    ...get(step),
    op.i32Add,
    ...set(valueAt),
    ...overCapacity,
  ];
  // Four entries at once, without a branch: the kept lanes' units and W·M are moved to the front of
  // a vector by a byte shuffle from the table, stored at the next free slot, which moves on by their
  // count (the arrays have 4 slots of slack).
  const group = [
    ...v128At(mask),
    ...set(maskVector),
    ...get(maskVector),
    ...f32Const(0),
    ...simd(simdOp.f32x4Splat),
    ...simd(0x42), // f32x4.ne
    ...simd(0xa4), // i32x4.bitmask
    ...set(bits),
    ...get(table),
    ...get(bits),
    ...i32Const(4),
    op.i32Shl,
    op.i32Add,
    ...simd(simdOp.v128Load),
    ...memarg(),
    ...set(shuffle),
    ...get(unitAt),
    ...swizzled(get(unitVector)),
    ...simd(simdOp.v128Store),
    ...memarg(),
    ...get(valueAt),
    ...swizzled([...v128At(weight), ...get(maskVector), ...simd(simdOp.f32x4Mul)]),
    ...simd(simdOp.v128Store),
    ...memarg(),
    ...get(bits),
    0x69, // i32.popcnt
    ...i32Const(2),
    op.i32Shl,
    ...set(step),
    ...get(unitVector),
    ...get(unitStep),
    ...simd(simdOp.i32x4Add),
    ...set(unitVector),
    ...advance,
  ];
  // One entry (the row's last columns % 4): written, then kept when M ≠ 0.
  const single = [
    ...get(mask),
    ...get(cursor),
    op.i32Add,
    op.f32Load,
    ...memarg(),
    ...set(maskValue),
    ...get(unitAt),
    ...get(column),
    ...get(unitBytes),
    op.i32Mul,
    op.i32Store,
    ...memarg(),
    ...get(valueAt),
    ...get(weight),
    ...get(cursor),
    op.i32Add,
    op.f32Load,
    ...memarg(),
    ...get(maskValue),
    op.f32Mul,
    op.f32Store,
    ...memarg(),
    ...get(maskValue),
    ...f32Const(0),
    0x5c, // f32.ne
    ...i32Const(2),
    op.i32Shl,
    ...set(step),
    ...advance,
  ];
  const rowBody = [
    // rowStart[row] = count
    ...get(rowStart),
    ...shiftLeft2(row),
    op.i32Add,
    ...countNow,
    op.i32Store,
    ...memarg(),
    ...i32Const(0),
    ...set(column),
    ...get(firstUnits),
    ...set(unitVector),
    ...whileBelow(column, groupEnd, [...group, ...increment(column, 4), ...increment(cursor, 16)]),
    ...whileBelow(column, columns, [...single, ...increment(column, 1), ...increment(cursor, 4)]),
    ...increment(row, 1),
  ];
  return {
    name: 'compress',
    params: Array(10).fill(I32),
    results: [I32],
    locals: locals.types,
    body: [
      ...get(columns),
      ...get(columns),
      ...i32Const(3),
      op.i32And,
      op.i32Sub,
      ...set(groupEnd),
      ...get(units),
      ...set(unitAt),
      ...get(values),
      ...set(valueAt),
      // limit = units + 4·capacity
      ...get(units),
      ...shiftLeft2(capacity),
      op.i32Add,
      ...set(limit),
      // firstUnits = [0, 1, 2, 3]·unitBytes; unitStep = 4·unitBytes in every lane
      ...get(unitBytes),
      ...simd(simdOp.i32x4Splat),
      ...simd(0x0c), // v128.const
      ...[0, 1, 2, 3].flatMap((lane) => [lane, 0, 0, 0]),
      ...simd(0xb5), // i32x4.mul
      ...set(firstUnits),
      ...get(unitBytes),
      ...i32Const(2),
      op.i32Shl,
      ...simd(simdOp.i32x4Splat),
      ...set(unitStep),
      ...whileBelow(row, rows, rowBody),
      ...get(rowStart),
      ...shiftLeft2(rows),
      op.i32Add,
      ...countNow,
      op.i32Store,
      ...memarg(),
      ...countNow,
    ],
  };
}

/**
 * `product<V>` (`transposed` false) or `inputGradient<V>` (true) for chunks of V vectors.
 * Parameters: (input, rowStart, units, values, rows, output, rowBytes, chunkBytes).
 */
function chunkFunction(vectors: number, transposed: boolean) {
  const [input, rowStart, units, values, rows, output, rowBytes, chunkBytes] = [0, 1, 2, 3, 4, 5, 6, 7];
  const locals = new Locals(8);
  const [row, slot, slotEnd, rowAddress, target] = locals.i32s(5);
  const held = Array.from({ length: vectors }, () => locals.v128());
  const weight = locals.v128();
  const vectorAt = (base: number, index: number) => [
    ...get(base),
    ...simd(simdOp.v128Load),
    ...memarg(16 * index),
  ];
  // rowAddress = base + row·rowBytes + chunkBytes
  const rowOf = (base: number) => [
    ...get(base),
    ...get(row),
    ...get(rowBytes),
    op.i32Mul,
    op.i32Add,
    ...get(chunkBytes),
    op.i32Add,
    ...set(rowAddress),
  ];
  const slotPrologue = [
    ...get(values),
    ...get(slot),
    op.i32Add,
    ...simd(simdOp.v128Load32Splat),
    ...memarg(),
    ...set(weight),
    // target = (input or output) + units[slot] + chunkBytes
    ...get(transposed ? input : output),
    ...loadI32(units, get(slot)),
    op.i32Add,
    ...get(chunkBytes),
    op.i32Add,
    ...set(target),
  ];
  const forwardSlot = held.flatMap((vector, index) => [
    ...get(target),
    ...vectorAt(target, index),
    ...get(weight),
    ...get(vector),
    ...simd(simdOp.f32x4Mul),
    ...simd(simdOp.f32x4Add),
    ...simd(simdOp.v128Store),
    ...memarg(16 * index),
  ]);
  const gradientSlot = held.flatMap((vector, index) => [
    ...get(vector),
    ...get(weight),
    ...vectorAt(target, index),
    ...simd(simdOp.f32x4Mul),
    ...simd(simdOp.f32x4Add),
    ...set(vector),
  ]);
  const before = transposed
    ? held.flatMap((vector) => [...f32Const(0), ...simd(simdOp.f32x4Splat), ...set(vector)])
    : [...rowOf(input), ...held.flatMap((vector, index) => [...vectorAt(rowAddress, index), ...set(vector)])];
  const after = transposed
    ? [
        ...rowOf(output),
        ...held.flatMap((vector, index) => [
          ...get(rowAddress),
          ...get(vector),
          ...simd(simdOp.v128Store),
          ...memarg(16 * index),
        ]),
      ]
    : [];
  const rowBody = [
    ...before,
    // slot, slotEnd = 4·rowStart[row], 4·rowStart[row + 1] (byte offsets into units and values)
    ...loadI32(rowStart, shiftLeft2(row)),
    ...i32Const(2),
    op.i32Shl,
    ...set(slot),
    ...loadI32(rowStart, shiftLeft2(row), 4),
    ...i32Const(2),
    op.i32Shl,
    ...set(slotEnd),
    ...whileBelow(slot, slotEnd, [
      ...slotPrologue,
      ...(transposed ? gradientSlot : forwardSlot),
      ...increment(slot, 4),
    ]),
    ...after,
    ...increment(row, 1),
  ];
  return {
    name: `${transposed ? 'inputGradient' : 'product'}${vectors}`,
    params: Array(8).fill(I32),
    results: [],
    locals: locals.types,
    body: whileBelow(row, rows, rowBody),
  };
}

/**
 * `untranspose(source, bias, target, batch, columns, sourceRowBytes, hasBias, floor)`:
 * target[b][n] = max(source[n][b] + (hasBias ? bias[n] : 0), floor) — floor −∞ keeps the value, 0 is
 * ReLU. 4 × 4 blocks are transposed in registers (four loads, eight shuffles, four stores); the
 * last columns % 4 and batch % 4 entries go one by one.
 */
function untransposeFunction() {
  const [source, bias, target, batch, columns, sourceRowBytes, hasBias, floor] = [0, 1, 2, 3, 4, 5, 6, 7];
  const locals = new Locals(8);
  const [b, column, batchEnd, columnEnd, biasMask] = [...locals.i32s(4), locals.v128()];
  const [floorVector, biasVector] = locals.v128s(2);
  const rows = locals.v128s(4);
  const pairs = locals.v128s(4);
  // source + column·sourceRowBytes + 4b, plus `offset` rows of the source
  const sourceAt = (row: number) => [
    ...get(source),
    ...get(column),
    ...i32Const(row),
    op.i32Add,
    ...get(sourceRowBytes),
    op.i32Mul,
    op.i32Add,
    ...get(b),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
  ];
  // target + ((b + row)·columns + column)·4
  const targetAt = (row: number) => [
    ...get(target),
    ...get(b),
    ...i32Const(row),
    op.i32Add,
    ...get(columns),
    op.i32Mul,
    ...get(column),
    op.i32Add,
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
  ];
  const finish = (vector: number[]) => [
    ...vector,
    ...get(biasVector),
    ...simd(simdOp.f32x4Add),
    ...get(floorVector),
    ...simd(simdOp.f32x4Max),
  ];
  const both = (first: number, second: number, lanes: [number, number, number, number]) => [
    ...get(first),
    ...get(second),
    ...shuffleLanes(lanes),
  ];
  const block = [
    // bias[column..column + 3], zeroed without a bias (the lanes are and-ed with 0)
    ...get(bias),
    ...get(column),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    ...simd(simdOp.v128Load),
    ...memarg(),
    ...get(biasMask),
    ...simd(simdOp.v128And),
    ...set(biasVector),
    ...[0, 1, 2, 3].flatMap((row) => [
      ...sourceAt(row),
      ...simd(simdOp.v128Load),
      ...memarg(),
      ...set(rows[row]!),
    ]),
    ...both(rows[0]!, rows[1]!, [0, 4, 1, 5]),
    ...set(pairs[0]!),
    ...both(rows[0]!, rows[1]!, [2, 6, 3, 7]),
    ...set(pairs[1]!),
    ...both(rows[2]!, rows[3]!, [0, 4, 1, 5]),
    ...set(pairs[2]!),
    ...both(rows[2]!, rows[3]!, [2, 6, 3, 7]),
    ...set(pairs[3]!),
    ...[
      [0, [0, 1, 4, 5]],
      [0, [2, 3, 6, 7]],
      [1, [0, 1, 4, 5]],
      [1, [2, 3, 6, 7]],
    ].flatMap(([pair, lanes], row) => [
      ...targetAt(row),
      ...finish(
        both(pairs[pair as number]!, pairs[(pair as number) + 2]!, lanes as [number, number, number, number]),
      ),
      ...simd(simdOp.v128Store),
      ...memarg(),
    ]),
  ];
  // one entry: target[b][column] = max(source[column][b] + bias?, floor)
  const single = [
    ...targetAt(0),
    ...sourceAt(0),
    op.f32Load,
    ...memarg(),
    ...get(bias),
    ...get(column),
    ...i32Const(2),
    op.i32Shl,
    op.i32Add,
    op.f32Load,
    ...memarg(),
    ...f32Const(0),
    ...get(hasBias),
    op.select,
    op.f32Add,
    ...get(floor),
    op.f32Max,
    op.f32Store,
    ...memarg(),
  ];
  const overColumns = (from: number[], to: number, step: number, body: number[]) => [
    ...from,
    ...set(column),
    ...whileBelow(column, to, [...body, ...increment(column, step)]),
  ];
  return {
    name: 'untranspose',
    params: [...Array(7).fill(I32), F32],
    results: [],
    locals: locals.types,
    body: [
      // batchEnd, columnEnd: where the 4 × 4 blocks stop
      ...get(batch),
      ...get(batch),
      ...i32Const(3),
      op.i32And,
      op.i32Sub,
      ...set(batchEnd),
      ...get(columns),
      ...get(columns),
      ...i32Const(3),
      op.i32And,
      op.i32Sub,
      ...set(columnEnd),
      ...i32Const(0),
      ...get(hasBias),
      op.i32Sub,
      ...simd(simdOp.i32x4Splat),
      ...set(biasMask),
      ...get(floor),
      ...simd(simdOp.f32x4Splat),
      ...set(floorVector),
      ...whileBelow(b, batchEnd, [
        ...overColumns(i32Const(0), columnEnd, 4, block),
        // the row block's last columns % 4 entries, one by one, for each of its 4 rows
        ...Array.from({ length: 4 }, () => [
          ...overColumns(get(columnEnd), columns, 1, single),
          ...increment(b, 1),
        ]).flat(),
      ]),
      // the last batch % 4 rows, one entry at a time
      ...whileBelow(b, batch, [...overColumns(i32Const(0), columns, 1, single), ...increment(b, 1)]),
    ],
  };
}

function straightThroughFunction() {
  const [gradient, weight, mask, dWeight, dScores, bytes] = [0, 1, 2, 3, 4, 5];
  const locals = new Locals(6);
  const cursor = locals.i32();
  return {
    name: 'straightThrough',
    params: Array(6).fill(I32),
    results: [],
    locals: locals.types,
    body: overRow(cursor, bytes, [
      // ∂L/∂W = dW′ ⊙ M, ∂L/∂S = dW′ ⊙ W (Movement Pruning Eq. 2)
      ...store(dWeight, cursor, mul(load(gradient, cursor), load(mask, cursor))),
      ...store(dScores, cursor, mul(load(gradient, cursor), load(weight, cursor))),
    ]),
  };
}

/** The module's functions for a wasm memory (`null` without WebAssembly SIMD). */
export const maskedSparseFunctions = moduleFunctions<MaskedSparseFunctions>(() => [
  compressFunction(),
  untransposeFunction(),
  straightThroughFunction(),
  ...Array.from({ length: MAX_CHUNK_VECTORS }, (_, index) => chunkFunction(index + 1, false)),
  ...Array.from({ length: MAX_CHUNK_VECTORS }, (_, index) => chunkFunction(index + 1, true)),
]);
