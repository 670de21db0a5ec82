/**
 * Access to the `wasm` backend's heap for fineprune's SIMD routes (the fused Adam step and the
 * selection scans), which work on tensors where they lie instead of reading them out.
 */

import * as tf from '@tensorflow/tfjs-core';

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
