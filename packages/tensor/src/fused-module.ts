/**
 * What fineprune's fused wasm kernels share: a module built once and instantiated once per wasm
 * memory, the check that the fused route can run here, and registration of a kernel under its name.
 */

import * as tf from '@tensorflow/tfjs-core';
import { fusedKernelsEnabled } from './fused-switch';
import { buildModule, type FunctionSpec, instantiate } from './wasm-binary';
import { type WasmHeap, wasmHeapOf } from './wasm-heap';

/**
 * The functions of a module built from `functions()` and bound to a wasm memory, cached per memory;
 * `null` where WebAssembly SIMD is missing.
 *
 * @param functions - the module's function specs (built lazily, once)
 * @returns a lookup from a memory to the module's exports
 *
 * @example
 * ```ts
 * const functionsFor = moduleFunctions<{ gelu: Map }>(() => [elementwiseFunction('gelu', 1, geluExpression)]);
 * ```
 */
export function moduleFunctions<T>(
  functions: () => readonly FunctionSpec[],
): (memory: WebAssembly.Memory) => T | null {
  let bytes: Uint8Array<ArrayBuffer> | undefined;
  const instances = new WeakMap<WebAssembly.Memory, T | null>();
  return (memory) => {
    if (!instances.has(memory)) {
      bytes ??= buildModule(functions());
      instances.set(memory, instantiate<T>(bytes, memory) ?? null);
    }
    return instances.get(memory)!;
  };
}

/**
 * The heap and the module's functions when a fused kernel can run now: the `wasm` backend is active,
 * its heap is reachable, `FINEPRUNE_FUSED` is not `0`, WebAssembly SIMD works, and every tensor is
 * float32; `undefined` otherwise (the caller runs the op chain).
 *
 * @param functionsFor - the module lookup from {@link moduleFunctions}
 * @param tensors - the operands, all of which must be float32
 * @returns the heap and the functions, or `undefined`
 *
 * @example
 * ```ts
 * if (fusedRoute(functionsFor, [x]) !== undefined) return runFused(x);
 * ```
 */
export function fusedRoute<T>(
  functionsFor: (memory: WebAssembly.Memory) => T | null,
  tensors: readonly tf.Tensor[],
): { heap: WasmHeap; functions: T } | undefined {
  if (!fusedKernelsEnabled() || tf.getBackend() !== 'wasm') return undefined;
  if (tensors.some((tensor) => tensor.dtype !== 'float32')) return undefined;
  const heap = wasmHeapOf();
  const functions = heap === undefined ? null : functionsFor(heap.memory);
  return functions === null ? undefined : { heap: heap!, functions };
}

/**
 * Runs kernel `name` (registered for `wasm` with `kernelFunc` on first use) on `inputs` with `attrs`.
 *
 * @param name - the kernel's name
 * @param kernelFunc - its implementation
 * @param inputs - the named input tensors
 * @param attrs - the attributes
 * @returns the kernel's outputs
 *
 * @example
 * ```ts
 * const [y] = runWasmKernel('FinepruneGelu', geluKernel, { x }, { approximate: false });
 * ```
 */
export function runWasmKernel(
  name: string,
  kernelFunc: (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => unknown,
  inputs: tf.NamedTensorMap,
  attrs: Record<string, unknown> = {},
): tf.Tensor[] {
  if (tf.getKernel(name, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: kernelFunc as tf.KernelFunc });
  }
  const outputs = tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap);
  return Array.isArray(outputs) ? (outputs as tf.Tensor[]) : [outputs as tf.Tensor];
}
