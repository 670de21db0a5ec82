/**
 * Access to the `wasm` backend's heap for fineprune's SIMD routes (the fused Adam step and the
 * selection scans), which work on tensors where they lie instead of reading them out.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';

/** The parts of `BackendWasm` (@tensorflow/tfjs-backend-wasm 4.x) these routes use. */
export interface WasmBackendInternals {
  wasm?: {
    /** The single-threaded builds export their memory here. */
    asm?: { memory?: unknown };
    /** The multi-threaded build imports a shared memory, kept here (its `asm` has no `memory`). */
    wasmMemory?: unknown;
    _malloc?(bytes: number): number;
    _free?(offset: number): void;
  };
  dataIdMap?: { get(dataId: unknown): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: unknown): boolean;
}

/**
 * The most bytes the wasm backend's heap can grow to: 4 GiB less one 64 KiB page, the limit
 * (`getHeapMax`) compiled into @tensorflow/tfjs-backend-wasm 4.22's Emscripten glue (wasm32).
 * Everything a training step holds on wasm — weights, masks, scores, gradients, optimizer slots and
 * activations — must fit in it.
 */
export const WASM_HEAP_LIMIT_BYTES = 4_294_901_760;

/** A wasm backend, its memory, and where a tensor's data starts in that memory (bytes). */
export interface WasmHeap {
  backend: WasmBackendInternals;
  memory: WebAssembly.Memory;
  offsetOf(info: tf.TensorInfo): number;
}

/**
 * The heap of `backend` (the active backend by default); `undefined` when it is not a wasm backend
 * that exposes its memory and tensor offsets. With the multi-threaded build the memory is shared
 * (a SharedArrayBuffer underneath); `instantiate` of `@fineprune/tensor/wasm-binary` links to both.
 */
export function wasmHeapOf(backend: unknown = tf.backend()): WasmHeap | undefined {
  const wasm = backend as WasmBackendInternals;
  const memory = wasm.wasm?.asm?.memory ?? wasm.wasm?.wasmMemory;
  const dataIdMap = wasm.dataIdMap;
  if (!(memory instanceof WebAssembly.Memory) || dataIdMap === undefined) return undefined;
  return { backend: wasm, memory, offsetOf: (info) => dataIdMap.get(info.dataId)!.memoryOffset };
}

/**
 * The typed error for a failure of the wasm backend that comes from its heap running out: a
 * `WebAssembly.RuntimeError` ("memory access out of bounds", "Aborted()") while the active backend
 * is wasm. Returns `undefined` for any other error, which the caller rethrows as it was.
 *
 * @param error - what a TF.js call threw
 * @param what - the work that failed, for the message ("the training step at step 3")
 * @returns a `WASM_HEAP_EXHAUSTED` FinepruneError naming the heap's size and limit, or undefined
 *
 * @example
 * ```ts
 * try { step(); } catch (error) { throw wasmHeapExhausted(error, 'the training step') ?? error; }
 * ```
 */
export function wasmHeapExhausted(error: unknown, what: string): FinepruneError | undefined {
  if (!(error instanceof WebAssembly.RuntimeError) || tf.getBackend() !== 'wasm') return undefined;
  const bytes = wasmHeapOf()?.memory.buffer.byteLength ?? 0;
  return new FinepruneError({
    code: ErrorCodes.WASM_HEAP_EXHAUSTED,
    message: `${what} failed inside the wasm backend (${error.message}) with its heap at ${bytes} bytes of at most ${WASM_HEAP_LIMIT_BYTES} (4 GiB, wasm32): what the step holds does not fit. The backend cannot be used further in this process.`,
    fix: "Use a smaller batch or sequence length, keep Adam's moments outside the heap (adam({ slots: 'host' })), or train on a backend whose memory is not a 32-bit heap (webgpu).",
    cause: error,
    details: { heapBytes: bytes, limitBytes: WASM_HEAP_LIMIT_BYTES },
  });
}
