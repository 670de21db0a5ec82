/**
 * The kernel configs of this package, in one list, and their registration with TF.js.
 */

import * as tf from '@tensorflow/tfjs-core';
import { sparseMatMulCpuConfig } from './sparse-mat-mul-cpu';
import { sparseMatMulWasmConfig } from './sparse-mat-mul-wasm';
import { sparseMatMulWebGPUConfig } from './sparse-mat-mul-webgpu';

/**
 * Every kernel config of @fineprune/sparse: `FinepruneSparseMatMul` on `cpu`, `wasm` and `webgpu`.
 *
 * @example
 * ```ts
 * sparseKernelConfigs.map((config) => config.backendName); // ['cpu', 'wasm', 'webgpu']
 * ```
 */
export const sparseKernelConfigs: readonly tf.KernelConfig[] = [
  sparseMatMulCpuConfig,
  sparseMatMulWasmConfig,
  sparseMatMulWebGPUConfig,
];

/**
 * Registers {@link sparseKernelConfigs} with TF.js, skipping those already registered (so it is safe
 * to call many times). The ops of this package call it themselves; importing the package registers
 * nothing.
 *
 * @returns the names of the backends whose kernel was registered by this call
 *
 * @example
 * ```ts
 * registerSparseKernels(); // ['cpu', 'wasm', 'webgpu'] the first time, [] afterwards
 * ```
 */
export function registerSparseKernels(): string[] {
  const registered: string[] = [];
  for (const config of sparseKernelConfigs) {
    if (tf.getKernel(config.kernelName, config.backendName) !== undefined) continue;
    tf.registerKernel(config);
    registered.push(config.backendName);
  }
  return registered;
}
