/**
 * CUDA through @tensorflow/tfjs-node-gpu: a `'tensorflow'` backend provider for @fineprune/tensor that
 * loads tfjs-node-gpu only when it is selected. tfjs-node-gpu is an optional peer dependency: its
 * install script downloads libtensorflow (with CUDA) from Google's storage, which fails offline and on
 * machines without CUDA, so it is never installed on fineprune's behalf.
 */

import * as tf from '@tensorflow/tfjs-core';
import { type BackendProvider, registerBackendProvider } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/** The TF.js backend name tfjs-node-gpu (and tfjs-node) registers. */
export const NODE_GPU_BACKEND_NAME = 'tensorflow';

/** The npm package this backend needs. */
export const NODE_GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';

const INSTALL_INSTRUCTIONS =
  `Install it next to your app: npm install ${NODE_GPU_PACKAGE}@4.22.0 (Linux x64 with an NVIDIA GPU, ` +
  'CUDA 11.8 and cuDNN 8.6; its install script downloads libtensorflow from storage.googleapis.com, so ' +
  "the machine needs that network access). Or use setBackend('wasm'), or 'webgpu' with @fineprune/backend-webgpu.";

/**
 * Options of {@link registerNodeGpuBackend} and {@link loadTfjsNodeGpu}.
 *
 * @example
 * ```ts
 * registerNodeGpuBackend({ priority: 10 });
 * ```
 */
export interface NodeGpuOptions {
  /** The provider's priority in `setBackend('auto')`. Default 4 (above webgpu = 3 and wasm = 2). */
  priority?: number;
  /** Loads the package; default: a dynamic `import('@tensorflow/tfjs-node-gpu')`. For tests. */
  load?: () => Promise<unknown>;
}

function isNode(): boolean {
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof process?.versions?.node === 'string';
}

function isModuleNotFound(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  const text = error instanceof Error ? error.message : String(error);
  return (
    (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') &&
    (text.includes(NODE_GPU_PACKAGE) || text.includes('tfjs-node-gpu'))
  );
}

async function defaultLoad(): Promise<unknown> {
  // A computed specifier keeps bundlers from resolving the optional package.
  const specifier = NODE_GPU_PACKAGE;
  return import(/* @vite-ignore */ specifier);
}

/**
 * Loads @tensorflow/tfjs-node-gpu, which registers the `'tensorflow'` TF.js backend (libtensorflow with
 * CUDA). Throws a `FinepruneError` that says how to install it when it is missing or unusable.
 *
 * @param options - a custom loader (tests)
 * @throws FinepruneError `MISSING_DEPENDENCY` when the package is not installed, or is installed but
 *   its native addon or the CUDA libraries cannot be loaded; `BACKEND_UNAVAILABLE` outside Node
 *
 * @example
 * ```ts
 * try {
 *   await loadTfjsNodeGpu();
 * } catch (error) {
 *   if (FinepruneError.is(error)) console.error(error.message, error.fix);
 * }
 * ```
 */
export async function loadTfjsNodeGpu(options: Pick<NodeGpuOptions, 'load'> = {}): Promise<void> {
  if (!isNode()) {
    throw new FinepruneError({
      code: ErrorCodes.BACKEND_UNAVAILABLE,
      message: `${NODE_GPU_PACKAGE} runs only in Node.js.`,
      fix: 'In a browser use @fineprune/backend-webgpu, or wasm.',
    });
  }
  try {
    await (options.load ?? defaultLoad)();
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    if (isModuleNotFound(error)) {
      throw new FinepruneError({
        code: ErrorCodes.MISSING_DEPENDENCY,
        message: `The CUDA backend needs ${NODE_GPU_PACKAGE}, an optional peer dependency that is not installed.`,
        fix: INSTALL_INSTRUCTIONS,
        cause: error,
      });
    }
    throw new FinepruneError({
      code: ErrorCodes.MISSING_DEPENDENCY,
      message: `${NODE_GPU_PACKAGE} is installed but could not be loaded: ${reason}`,
      fix:
        `Run its install script (npm rebuild ${NODE_GPU_PACKAGE}; with pnpm 10 first allow it: pnpm approve-builds), ` +
        'and check that CUDA 11.8 and cuDNN 8.6 libraries are on the library path (LD_LIBRARY_PATH).',
      cause: error,
    });
  }
  if (tf.findBackendFactory(NODE_GPU_BACKEND_NAME) == null) {
    throw new FinepruneError({
      code: ErrorCodes.BACKEND_UNAVAILABLE,
      message: `${NODE_GPU_PACKAGE} loaded but registered no '${NODE_GPU_BACKEND_NAME}' backend with this copy of @tensorflow/tfjs-core.`,
      fix: 'Make sure the app has exactly one @tensorflow/tfjs-core (4.22), shared by tfjs-node-gpu and fineprune.',
    });
  }
}

/**
 * Registers the `'tensorflow'` provider (CUDA through @tensorflow/tfjs-node-gpu) with
 * @fineprune/tensor. Nothing is loaded until the backend is selected, so registering never fails where
 * tfjs-node-gpu is missing: `setBackend('tensorflow')` then throws `BACKEND_UNAVAILABLE` with install
 * instructions, and `setBackend('auto')` lists the failure and moves on.
 *
 * @param options - the provider's priority, a custom loader (tests)
 * @returns the registered provider
 *
 * @example
 * ```ts
 * import { setBackend } from '@fineprune/tensor';
 * import { registerNodeGpuBackend } from '@fineprune/backend-node-gpu';
 *
 * registerNodeGpuBackend();
 * const { backend, explanation } = await setBackend('auto'); // 'tensorflow' where CUDA works
 * ```
 */
export function registerNodeGpuBackend(options: NodeGpuOptions = {}): BackendProvider {
  const provider: BackendProvider = {
    name: NODE_GPU_BACKEND_NAME,
    priority: options.priority ?? 4,
    async setup() {
      try {
        await loadTfjsNodeGpu(options);
      } catch (error) {
        // setBackend reports a provider's failure by its message: keep the install instructions in it.
        if (FinepruneError.is(error)) throw new Error(`${error.message.replace(/^\[[A-Z_]+\] /, '')}`);
        throw error;
      }
    },
  };
  registerBackendProvider(provider);
  return provider;
}
