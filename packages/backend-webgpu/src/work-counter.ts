/**
 * Counts what the `'webgpu'` backend does: compute-program dispatches (every kernel launch of
 * tfjs-backend-webgpu goes through `runWebGPUProgram`; this package's several-output programs report
 * themselves through {@link noteDispatch}) and copies of tensor data from the GPU back
 * to the host (`getBufferData`). Counts are machine-independent: a step that launches 900 programs
 * launches 900 on any GPU.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * The counts since {@link countWebGPUWork} started.
 *
 * @example
 * ```ts
 * const { dispatches, readBacks } = counter.counts();
 * ```
 */
export interface WebGPUWorkCounts {
  /** TF.js kernels run (`engine.runKernel`), those that launch no program (reshapes) included. */
  kernels: number;
  /** Compute programs launched. */
  dispatches: number;
  /** GPU buffers copied back to the host. */
  readBacks: number;
  /** Dispatches by program (its shader key's first part), most frequent first. */
  byProgram: Array<[string, number]>;
}

/**
 * A running count; `stop()` restores the backend.
 *
 * @example
 * ```ts
 * const counter = countWebGPUWork();
 * await step();
 * console.log(counter.counts());
 * counter.stop();
 * ```
 */
export interface WebGPUWorkCounter {
  counts(): WebGPUWorkCounts;
  /** Sets the counts back to zero. */
  reset(): void;
  stop(): void;
}

interface Instrumentable {
  runWebGPUProgram: (
    program: { constructor: { name: string }; shaderKey?: string },
    ...rest: unknown[]
  ) => unknown;
  getBufferData: (...rest: unknown[]) => Promise<unknown>;
}

/**
 * Where a backend keeps its running counters' listeners for programs dispatched outside
 * `runWebGPUProgram`: on the backend object under a registry symbol, so that a second copy of this
 * module (two bundles, or a test runner that re-evaluates modules but shares TF.js) still counts them.
 */
const LISTENERS = Symbol.for('fineprune.webgpu.dispatchListeners');
type Listeners = Set<(name: string) => void>;

function listenersOf(backend: unknown): Listeners {
  const holder = backend as { [LISTENERS]?: Listeners };
  holder[LISTENERS] ??= new Set();
  return holder[LISTENERS];
}

/**
 * Tells the backend's running counters that a program was dispatched without `runWebGPUProgram` (the
 * several-output programs of `program-dispatch.ts`).
 */
export function noteDispatch(backend: unknown, name: string): void {
  for (const listener of listenersOf(backend)) listener(name);
}

/** A program's kind from its shader key: `binary_MUL`, `unary_EXP`, `matMulPacked`, … */
function programName(program: { constructor: { name: string }; shaderKey?: string }): string {
  const parts = (program.shaderKey ?? '').split('_');
  const kind = parts[0] === 'binary' || parts[0] === 'unary' ? parts.slice(0, 2).join('_') : parts[0];
  return kind || program.constructor.name;
}

/**
 * Starts counting the active `'webgpu'` backend's dispatches and read-backs.
 *
 * @returns the counter (call `stop()` when done)
 * @throws FinepruneError `INVALID_ARGUMENT` when the active backend is not `'webgpu'`
 *
 * @example
 * ```ts
 * await setBackend('webgpu');
 * const counter = countWebGPUWork();
 * await pruner.trainStep(batch);
 * console.log(counter.counts().dispatches, 'kernels per step');
 * counter.stop();
 * ```
 */
export function countWebGPUWork(): WebGPUWorkCounter {
  if (tf.getBackend() !== 'webgpu') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `countWebGPUWork() counts the 'webgpu' backend, but the active backend is '${tf.getBackend()}'.`,
      fix: "Call setBackend('webgpu') first.",
    });
  }
  const backend = tf.backend() as unknown as Instrumentable;
  const engine = tf.engine() as unknown as { runKernel: (...rest: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  const read = backend.getBufferData;
  const runKernel = engine.runKernel;
  let kernels = 0;
  let dispatches = 0;
  let readBacks = 0;
  const byProgram = new Map<string, number>();
  const count = (name: string) => {
    dispatches += 1;
    byProgram.set(name, (byProgram.get(name) ?? 0) + 1);
  };
  listenersOf(backend).add(count);
  backend.runWebGPUProgram = function (this: unknown, program, ...rest) {
    count(programName(program));
    return run.call(this, program, ...rest);
  };
  engine.runKernel = function (this: unknown, ...rest) {
    kernels += 1;
    return runKernel.apply(this, rest);
  };
  backend.getBufferData = function (this: unknown, ...rest) {
    readBacks += 1;
    return read.apply(this, rest);
  };
  return {
    counts: () => ({ kernels, dispatches, readBacks, byProgram: [...byProgram].sort((a, b) => b[1] - a[1]) }),
    reset: () => {
      kernels = 0;
      dispatches = 0;
      readBacks = 0;
      byProgram.clear();
    },
    stop: () => {
      listenersOf(backend).delete(count);
      engine.runKernel = runKernel;
      backend.runWebGPUProgram = run;
      backend.getBufferData = read;
    },
  };
}
