/**
 * The WebAssembly SIMD code of the sparse kernels, written out instruction by instruction with the
 * assembler of `@fineprune/tensor/wasm-binary` and compiled at run time against the memory of the
 * tfjs wasm backend (so they read and write tensors where they lie). All of them read the
 * sliced-rows layout (../layout/sliced-rows.ts).
 *
 * - `gemv` (batch 1): four sorted rows at once, one per lane. Per slot: four i32 loads of byte offsets,
 *   four lane loads from the staged input (one `v128.load32_zero`, three `v128.load32_lane`), one
 *   v128 load of the four weights, a multiply and an add: 12 memory ops and 2 arithmetic ops per four
 *   nonzeros, four slots per loop turn, with two accumulators alternating so that adds do not wait on
 *   each other.
 * - `rows<B>` (batch B in 2…32, one function per B): one row at a time down its lane; per nonzero one
 *   weight splat (`v128.load32_splat`), one offset load, and for each of ⌈B/4⌉ vectors of the
 *   transposed input [K + 1][4⌈B/4⌉] a v128 load, a multiply and an add (the scheme of XNNPACK's
 *   f32-spmm kernels, here over batch elements instead of pixels).
 * - `transpose<B>`: writes x [B][K] into that transposed, zero-padded scratch.
 *
 * WebAssembly has no fused multiply-add in fixed-width SIMD, so each product is rounded to float32
 * before it is added, as in TF.js's own wasm kernels.
 */

import {
  buildModule,
  increment,
  F32,
  type FunctionSpec,
  f32Const,
  get,
  I32,
  i32Const,
  memarg,
  memoryCopy,
  memoryFill,
  op,
  set,
  simd,
  simdOp,
  V128,
  whileBelow,
} from '@fineprune/tensor/wasm-binary';

/** Largest batch handled in one call of a `rows<B>` function; larger batches are cut into chunks. */
export const MAX_CHUNK_BATCH = 32;

/** `if (condition on the stack) body`. */
function when(condition: number[], body: number[]): number[] {
  return [...condition, op.if, 0x40, ...body, op.end];
}

/** `value << bits` for the i32 on the stack. */
function shiftLeft(bits: number): number[] {
  return [...i32Const(bits), op.i32Shl];
}

/** `i32[base + 4·index + displacement]`, where `index` is instructions that leave an i32. */
function element(base: number, index: number[], displacement = 0): number[] {
  return [...get(base), ...index, ...shiftLeft(2), op.i32Add, op.i32Load, ...memarg(displacement)];
}

/** The byte offset 4·rowOrder[sorted] of a sorted row's output unit. */
function outputOffset(rowOrder: number, sorted: number): number[] {
  return [...element(rowOrder, get(sorted)), ...shiftLeft(2)];
}

/** `local = a + b` for i32 locals. */
function sum(a: number, b: number): number[] {
  return [...get(a), ...get(b), op.i32Add];
}

function zeroVector(local: number): number[] {
  return [...f32Const(0), ...simd(simdOp.f32x4Splat), ...set(local)];
}

/** `accumulator += product` where the product (a v128) is on the stack. */
function accumulate(accumulator: number): number[] {
  return [...get(accumulator), ...simd(simdOp.f32x4Add), ...set(accumulator)];
}

/** `result += f32[bias + target]` when `hasBias` is set (`target` is the output's byte offset). */
function addBias(result: number, bias: number, target: number, hasBias: number): number[] {
  return when(get(hasBias), [
    ...get(result),
    ...get(bias),
    ...get(target),
    op.i32Add,
    op.f32Load,
    ...memarg(),
    op.f32Add,
    ...set(result),
  ]);
}

/** `f32[address] = result` with the address on the stack first. */
function storeTo(address: number[], result: number): number[] {
  return [...address, ...get(result), op.f32Store, ...memarg()];
}

/**
 * The batch-1 kernel. Params: x, inputBytes (4K), values, offsets, slotOffsets, rowOrder (byte
 * addresses of the structure's sections), groups, outputSize, bias, hasBias, out, scratch
 * (4K + 4 bytes, where x is staged with a zero after it for the padding lanes).
 */
function gemvFunction(): FunctionSpec {
  const [x, inputBytes, values, offsets, slotOffsets, rowOrder, groups, outputSize] = [
    0, 1, 2, 3, 4, 5, 6, 7,
  ];
  const [bias, hasBias, out, scratch] = [8, 9, 10, 11];
  const [group, cursor, weights, end, unrolledEnd, sorted, target] = [12, 13, 14, 15, 16, 17, 18];
  const [first, second, gathered] = [19, 20, 21];
  const result = 22;

  // scratch + offsets[slot lane]: where the lane's input lies.
  const inputAddress = (displacement: number) => [
    ...get(cursor),
    op.i32Load,
    ...memarg(displacement),
    ...get(scratch),
    op.i32Add,
  ];
  // The four inputs the slot at `cursor + displacement` points to, as one v128 in `gathered`.
  const gather = (displacement: number) => [
    ...inputAddress(displacement),
    ...simd(simdOp.v128Load32Zero),
    ...memarg(),
    ...set(gathered),
    ...[1, 2, 3].flatMap((lane) => [
      ...inputAddress(displacement + lane * 4),
      ...get(gathered),
      ...simd(simdOp.v128Load32Lane),
      ...memarg(),
      lane,
      ...set(gathered),
    ]),
  ];
  // accumulator += gathered · weights[slot]
  const multiplyAdd = (displacement: number, accumulator: number) => [
    ...gather(displacement),
    ...get(gathered),
    ...get(weights),
    ...simd(simdOp.v128Load),
    ...memarg(displacement),
    ...simd(simdOp.f32x4Mul),
    ...accumulate(accumulator),
  ];
  // out[rowOrder[4·group + lane]] = first[lane] (+ bias[...]) for the lanes below N.
  const storeLane = (lane: number) => [
    ...get(group),
    ...shiftLeft(2),
    ...i32Const(lane),
    op.i32Add,
    op.localTee,
    sorted,
    ...get(outputSize),
    op.i32LtU,
    op.if,
    0x40,
    ...outputOffset(rowOrder, sorted),
    ...set(target),
    ...get(first),
    ...simd(simdOp.f32x4ExtractLane),
    lane,
    ...set(result),
    ...addBias(result, bias, target, hasBias),
    ...storeTo(sum(out, target), result),
    op.end,
  ];
  const groupBody = [
    // end = offsets + 16 · slotOffsets[group + 1]
    ...element(slotOffsets, get(group), 4),
    ...shiftLeft(4),
    ...get(offsets),
    op.i32Add,
    op.localTee,
    end,
    // unrolledEnd = max(end − 48, 0): below it, four whole slots remain (cursor + 64 ≤ end)
    ...i32Const(48),
    op.i32Sub,
    ...i32Const(0),
    ...get(end),
    ...i32Const(48),
    op.i32GeU,
    op.select,
    ...set(unrolledEnd),
    ...zeroVector(first),
    ...zeroVector(second),
    ...whileBelow(cursor, unrolledEnd, [
      ...multiplyAdd(0, first),
      ...multiplyAdd(16, second),
      ...multiplyAdd(32, first),
      ...multiplyAdd(48, second),
      ...increment(cursor, 64),
      ...increment(weights, 64),
    ]),
    ...whileBelow(cursor, end, [
      ...multiplyAdd(0, first),
      ...increment(cursor, 16),
      ...increment(weights, 16),
    ]),
    ...get(first),
    ...get(second),
    ...simd(simdOp.f32x4Add),
    ...set(first),
    ...[0, 1, 2, 3].flatMap(storeLane),
    ...increment(group, 1),
  ];
  return {
    name: 'gemv',
    params: Array(12).fill(I32),
    results: [],
    locals: [I32, I32, I32, I32, I32, I32, I32, V128, V128, V128, F32],
    body: [
      // Stage x and a zero after it (where padding lanes point).
      ...get(scratch),
      ...get(x),
      ...get(inputBytes),
      ...memoryCopy(),
      ...sum(scratch, inputBytes),
      ...f32Const(0),
      op.f32Store,
      ...memarg(),
      ...get(offsets),
      ...set(cursor),
      ...get(values),
      ...set(weights),
      ...whileBelow(group, groups, groupBody),
    ],
  };
}

/**
 * The batch-B kernel (2 ≤ B ≤ 32) over the transposed input. Params: xT (byte address of
 * [K + 1][4V] floats, V = ⌈B/4⌉, row K zero), values, offsets, slotOffsets, rowOrder, rowLengths,
 * outputSize, bias, hasBias, out, outRowBytes (4N).
 */
function rowsFunction(batch: number): FunctionSpec {
  const vectors = Math.ceil(batch / 4);
  const [xT, values, offsets, slotOffsets, rowOrder, rowLengths, outputSize] = [0, 1, 2, 3, 4, 5, 6];
  const [bias, hasBias, out, outRowBytes] = [7, 8, 9, 10];
  const [sorted, cursor, weights, end, target, address] = [11, 12, 13, 14, 15, 16];
  const [weight, result] = [17, 18];
  const accumulators = Array.from({ length: vectors }, (_, index) => 19 + index);

  const nonzero = [
    ...get(weights),
    ...simd(simdOp.v128Load32Splat),
    ...memarg(),
    ...set(weight),
    // address = xT + offset · 4V (the offset is 4k bytes; a transposed row is 16V bytes)
    ...get(cursor),
    op.i32Load,
    ...memarg(),
    ...i32Const(4 * vectors),
    op.i32Mul,
    ...get(xT),
    op.i32Add,
    ...set(address),
    ...accumulators.flatMap((accumulator, index) => [
      ...get(address),
      ...simd(simdOp.v128Load),
      ...memarg(index * 16),
      ...get(weight),
      ...simd(simdOp.f32x4Mul),
      ...accumulate(accumulator),
    ]),
    ...increment(cursor, 16),
    ...increment(weights, 16),
  ];
  // out[b][output] for each batch element b below B: address advances by one output row (4N bytes).
  const stores = Array.from({ length: batch }, (_, element) => [
    ...get(accumulators[Math.floor(element / 4)]!),
    ...simd(simdOp.f32x4ExtractLane),
    element % 4,
    ...set(result),
    ...addBias(result, bias, target, hasBias),
    ...storeTo(get(address), result),
    ...get(address),
    ...get(outRowBytes),
    op.i32Add,
    ...set(address),
  ]).flat();
  const rowBody = [
    // cursor = offsets + 16 · slotOffsets[sorted >> 2] + 4 · (sorted & 3); weights likewise
    ...element(slotOffsets, [...get(sorted), ...i32Const(2), op.i32ShrU]),
    ...shiftLeft(4),
    ...get(sorted),
    ...i32Const(3),
    op.i32And,
    ...shiftLeft(2),
    op.i32Add,
    op.localTee,
    cursor,
    ...get(values),
    op.i32Add,
    ...set(weights),
    ...get(cursor),
    ...get(offsets),
    op.i32Add,
    op.localTee,
    cursor,
    // end = cursor + 16 · rowLengths[sorted]
    ...element(rowLengths, get(sorted)),
    ...shiftLeft(4),
    op.i32Add,
    ...set(end),
    ...accumulators.flatMap(zeroVector),
    ...whileBelow(cursor, end, nonzero),
    // target = 4 · rowOrder[sorted]; address = out + target
    ...outputOffset(rowOrder, sorted),
    op.localTee,
    target,
    ...get(out),
    op.i32Add,
    ...set(address),
    ...stores,
    ...increment(sorted, 1),
  ];
  return {
    name: `rows${batch}`,
    params: Array(11).fill(I32),
    results: [],
    locals: [I32, I32, I32, I32, I32, I32, V128, F32, ...accumulators.map(() => V128)],
    body: whileBelow(sorted, outputSize, rowBody),
  };
}

/**
 * x [B][K] (byte address `x`) into xT [K + 1][4V] (byte address `xT`), zero-filled first so that the
 * padding columns b ≥ B and the padding row K hold zeros. Params: x, inputSize K, xT.
 */
function transposeFunction(batch: number): FunctionSpec {
  const vectors = Math.ceil(batch / 4);
  const rowBytes = 16 * vectors;
  const [x, inputSize, xT] = [0, 1, 2];
  const [input, source, target] = [3, 4, 5];
  return {
    name: `transpose${batch}`,
    params: [I32, I32, I32],
    results: [],
    locals: [I32, I32, I32],
    body: [
      ...get(xT),
      ...i32Const(0),
      ...get(inputSize),
      ...i32Const(1),
      op.i32Add,
      ...i32Const(rowBytes),
      op.i32Mul,
      ...memoryFill(),
      ...get(x),
      ...set(source),
      // for each batch element b: for each input k: xT[k][b] = x[b][k]
      ...Array.from({ length: batch }, (_, b) => [
        ...i32Const(0),
        ...set(input),
        ...get(xT),
        ...i32Const(b * 4),
        op.i32Add,
        ...set(target),
        ...whileBelow(input, inputSize, [
          ...get(target),
          ...get(source),
          op.f32Load,
          ...memarg(),
          op.f32Store,
          ...memarg(),
          ...increment(source, 4),
          ...increment(target, rowBytes),
          ...increment(input, 1),
        ]),
      ]).flat(),
    ],
  };
}

/** The functions of a module for batch sizes 1 (`gemv`) and `batch` (`rows<B>`, `transpose<B>`). */
export function spmmModuleBytes(batches: readonly number[]): Uint8Array<ArrayBuffer> {
  const functions: FunctionSpec[] = [gemvFunction()];
  for (const batch of batches) functions.push(rowsFunction(batch), transposeFunction(batch));
  return buildModule(functions);
}
