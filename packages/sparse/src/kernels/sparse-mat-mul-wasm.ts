/**
 * The `wasm` kernel config of {@link SPARSE_MAT_MUL}: WebAssembly SIMD functions
 * (./wasm-spmm-module.ts) compiled against the tfjs wasm backend's own memory, reading x, the layout
 * and the bias where they lie in its heap and writing the output tensor in place. A scratch buffer
 * (x staged with a zero after it, or x transposed) is taken from the backend's allocator for the
 * duration of the call.
 */

import type * as tf from '@tensorflow/tfjs-core';
import { instantiate } from '@fineprune/tensor/wasm-binary';
import { type WasmHeap, wasmHeapOf } from '@fineprune/tensor/wasm-heap';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { SPARSE_MAT_MUL, type SparseMatMulArguments, unpackArguments } from './sparse-mat-mul';
import { MAX_CHUNK_BATCH, spmmModuleBytes } from './wasm-spmm-module';

type Gemv = (
  x: number,
  inputBytes: number,
  values: number,
  offsets: number,
  slotOffsets: number,
  rowOrder: number,
  groups: number,
  outputSize: number,
  bias: number,
  hasBias: number,
  out: number,
  scratch: number,
) => void;
type Rows = (
  xT: number,
  values: number,
  offsets: number,
  slotOffsets: number,
  rowOrder: number,
  rowLengths: number,
  outputSize: number,
  bias: number,
  hasBias: number,
  out: number,
  outRowBytes: number,
) => void;
type Transpose = (x: number, inputSize: number, xT: number) => void;

/** The exports of the compiled module: `gemv`, and `rows<B>` / `transpose<B>` for B = 2…32. */
export type SpmmExports = { gemv: Gemv } & Record<string, Gemv | Rows | Transpose>;

/** Every batch size with its own `rows<B>` function. */
const BATCHES = Array.from({ length: MAX_CHUNK_BATCH - 1 }, (_, index) => index + 2);

const modules = new WeakMap<WebAssembly.Memory, SpmmExports | null>();

/**
 * The kernels compiled against `memory` (once per memory); `undefined` where this runtime has no
 * WebAssembly SIMD.
 *
 * @param memory - the memory the module imports
 * @returns the exported functions
 */
export function spmmFunctionsFor(memory: WebAssembly.Memory): SpmmExports | undefined {
  if (!modules.has(memory))
    modules.set(memory, instantiate<SpmmExports>(spmmModuleBytes(BATCHES), memory) ?? null);
  return modules.get(memory) ?? undefined;
}

function heapOrThrow(backend: unknown): { heap: WasmHeap; functions: SpmmExports } {
  const heap = wasmHeapOf(backend);
  const functions = heap === undefined ? undefined : spmmFunctionsFor(heap.memory);
  if (heap === undefined || functions === undefined) {
    throw new FinepruneError({
      code: ErrorCodes.BACKEND_UNAVAILABLE,
      message:
        'The sparse wasm kernel needs the tfjs wasm backend’s memory and WebAssembly SIMD, and this runtime offers neither.',
      fix: "Run on a runtime with WebAssembly SIMD (Node ≥ 16, current browsers), or use setBackend('cpu').",
    });
  }
  return { heap, functions };
}

/** Allocates `bytes` in the backend's heap for the duration of `use`. */
function withScratch<T>(heap: WasmHeap, bytes: number, use: (address: number) => T): T {
  const wasm = heap.backend.wasm!;
  const address = wasm._malloc!(bytes) >>> 0;
  try {
    return use(address);
  } finally {
    wasm._free!(address);
  }
}

function sparseMatMulWasm(args: SparseMatMulArguments): tf.TensorInfo {
  const { inputs, attributes, batch, sections } = unpackArguments(args);
  const { heap, functions } = heapOrThrow(args.backend);
  const { inputSize, outputSize, groups } = attributes;
  const out = heap.backend.makeOutput([batch, outputSize], 'float32');
  if (batch === 0) return out;
  const structure = heap.offsetOf(inputs.structure);
  const [values, offsets] = [heap.offsetOf(inputs.values), heap.offsetOf(inputs.offsets)];
  const [slotOffsets, rowOrder] = [structure + 4 * sections.slotOffsets, structure + 4 * sections.rowOrder];
  const rowLengths = structure + 4 * sections.rowLengths;
  const hasBias = inputs.bias === undefined ? 0 : 1;
  const bias = inputs.bias === undefined ? 0 : heap.offsetOf(inputs.bias);
  const [x, y] = [heap.offsetOf(inputs.x), heap.offsetOf(out)];
  // Batch 1 stages x (K + 1 floats); larger batches transpose a chunk into [K + 1][4⌈B/4⌉] floats.
  const scratchBytes = 4 * (inputSize + 1) * (batch === 1 ? 1 : MAX_CHUNK_BATCH) + 16;
  withScratch(heap, scratchBytes, (scratch) => {
    for (let start = 0; start < batch; start += MAX_CHUNK_BATCH) {
      const chunk = Math.min(MAX_CHUNK_BATCH, batch - start);
      const [xChunk, yChunk] = [x + 4 * start * inputSize, y + 4 * start * outputSize];
      if (chunk === 1) {
        functions.gemv(
          xChunk,
          4 * inputSize,
          values,
          offsets,
          slotOffsets,
          rowOrder,
          groups,
          outputSize,
          bias,
          hasBias,
          yChunk,
          scratch,
        );
      } else {
        (functions[`transpose${chunk}`] as Transpose)(xChunk, inputSize, scratch);
        (functions[`rows${chunk}`] as Rows)(
          scratch,
          values,
          offsets,
          slotOffsets,
          rowOrder,
          rowLengths,
          outputSize,
          bias,
          hasBias,
          yChunk,
          4 * outputSize,
        );
      }
    }
  });
  return out;
}

/** {@link SPARSE_MAT_MUL} on the `wasm` backend. */
export const sparseMatMulWasmConfig: tf.KernelConfig = {
  kernelName: SPARSE_MAT_MUL,
  backendName: 'wasm',
  kernelFunc: sparseMatMulWasm as unknown as tf.KernelFunc,
};
