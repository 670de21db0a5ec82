/**
 * Threads for the wasm backend: how many (an option, the `FINEPRUNE_WASM_THREADS` environment
 * variable, or the cores), and, in Node, what it takes to start @tensorflow/tfjs-backend-wasm 4.x's
 * multi-threaded SIMD build there.
 *
 * TF.js turns threads off in Node (its flag `WASM_HAS_MULTITHREAD_SUPPORT` is false there) because
 * the Emscripten glue starts its pthread workers from `blob:` URLs, which Node's `Worker` refuses
 * (ERR_WORKER_PATH). The worker script itself supports Node (worker_threads, and `importScripts` of
 * a file path); only its branch that loads the main script from a Blob cannot work. So, during the
 * backend's initialisation only:
 * - `URL.createObjectURL` answers the worker Blob with a real file: the package's own worker script
 *   with that one branch loading the package's own `wasm-out/tfjs-backend-wasm-threaded-simd.js`
 *   instead, written atomically to a private temporary directory, removed once the backend has
 *   started (every worker of its pool has read it by then);
 * - `os.cpus()` reports twice the requested thread count, because the backend caps its thread pool at
 *   half the logical cores it sees (it assumes two hyper-threads per core), which is one thread on a
 *   two-core machine whatever `setThreadsCount` asks;
 * - `worker_threads.Worker` starts its workers without the parent's Node flags (`execArgv`), which
 *   workers inherit by default: `--input-type` (of `node -e`) makes a worker fail to start, and
 *   `--import` loaders would load into each of the backend's 8 workers.
 * All three are restored as soon as the backend has started.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';
import { importNodeBuiltin, isNode, sharedState } from './runtime';

/**
 * The environment variable that sets the wasm backend's thread count: a whole number or `auto`.
 *
 * @example
 * ```ts
 * process.env[WASM_THREADS_VARIABLE] = 'auto'; // before the first setBackend('wasm')
 * ```
 */
export const WASM_THREADS_VARIABLE = 'FINEPRUNE_WASM_THREADS';

/**
 * The most threads the wasm backend uses: @tensorflow/tfjs-backend-wasm 4.x starts a pool of 8
 * workers and caps its XNNPACK thread pool at 8.
 *
 * @example
 * ```ts
 * const threads = Math.min(MAX_WASM_THREADS, requested);
 * ```
 */
export const MAX_WASM_THREADS = 8;

/**
 * A thread count for the wasm backend: a whole number from 1 to {@link MAX_WASM_THREADS}, or
 * `'auto'` for one per core (up to that maximum).
 *
 * @example
 * ```ts
 * const threads: WasmThreads = process.env.CI ? 1 : 'auto';
 * ```
 */
export type WasmThreads = number | 'auto';

/** The npm package whose glue, worker script and binaries the threaded build uses. */
const WASM_PACKAGE = '@tensorflow/tfjs-backend-wasm';
/** The worker's branch that loads the main script from a Blob (cannot work in Node). */
const BLOB_BRANCH =
  'var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)';

/**
 * Reads a thread count given as an option or as the environment variable's text.
 *
 * @param value - a number, `'auto'`, or the text of one
 * @param source - where it came from, for the error message
 * @returns the count, or `'auto'`
 * @throws FinepruneError `INVALID_ARGUMENT` for anything else
 *
 * @example
 * ```ts
 * parseWasmThreads('2', 'FINEPRUNE_WASM_THREADS'); // 2
 * parseWasmThreads('auto', '--threads'); // 'auto'
 * ```
 */
export function parseWasmThreads(value: unknown, source: string): WasmThreads {
  const text = typeof value === 'string' ? value.trim().toLowerCase() : value;
  if (text === 'auto') return 'auto';
  const count = typeof text === 'string' && /^\d+$/.test(text) ? Number(text) : text;
  if (typeof count === 'number' && Number.isInteger(count) && count >= 1 && count <= MAX_WASM_THREADS) {
    return count;
  }
  throw new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `${source} must be a whole number of wasm threads from 1 to ${MAX_WASM_THREADS} or 'auto', got ${JSON.stringify(value)}.`,
    fix: `Set ${source} to 'auto' (one thread per core) or to a number such as 2; ${MAX_WASM_THREADS} is the wasm backend's own limit.`,
    details: { source, value: String(value) },
  });
}

/**
 * The cores this process may use: `os.availableParallelism()` (or the count of `os.cpus()` where
 * that is missing) in Node, `navigator.hardwareConcurrency` in a browser, 1 when neither is known.
 *
 * @returns a whole number ≥ 1
 *
 * @example
 * ```ts
 * console.log(`${await coreCount()} cores`);
 * ```
 */
export async function coreCount(): Promise<number> {
  if (isNode()) {
    const os = await importNodeBuiltin('os', 'coreCount()');
    const count =
      typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
    return Math.max(1, count);
  }
  const browser = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return Math.max(1, browser?.hardwareConcurrency ?? 1);
}

/**
 * The `FINEPRUNE_WASM_THREADS` environment variable's text, when it is set and not blank (Node).
 *
 * @returns the text, or undefined
 *
 * @example
 * ```ts
 * if (wasmThreadsVariable() !== undefined) console.log('threads set in the environment');
 * ```
 */
export function wasmThreadsVariable(): string | undefined {
  const environment = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const text = environment?.[WASM_THREADS_VARIABLE];
  return text === undefined || text.trim() === '' ? undefined : text;
}

/**
 * The thread count the wasm backend starts with: `requested` when given, else the
 * `FINEPRUNE_WASM_THREADS` environment variable (Node), else 1. `'auto'` becomes the core count,
 * capped at {@link MAX_WASM_THREADS}.
 *
 * @param requested - an explicit count (an option of `setBackend` or the cli's `--threads`)
 * @returns the number of threads, from 1 to {@link MAX_WASM_THREADS}
 * @throws FinepruneError `INVALID_ARGUMENT` for a malformed option or environment variable
 *
 * @example
 * ```ts
 * await resolveWasmThreads('auto'); // 2 on a two-core machine
 * ```
 */
export async function resolveWasmThreads(requested?: WasmThreads): Promise<number> {
  const fromEnvironment = wasmThreadsVariable();
  let threads: WasmThreads = 1;
  if (requested !== undefined) threads = parseWasmThreads(requested, 'the wasmThreads option');
  else if (fromEnvironment !== undefined) threads = parseWasmThreads(fromEnvironment, WASM_THREADS_VARIABLE);
  return threads === 'auto' ? Math.min(MAX_WASM_THREADS, await coreCount()) : threads;
}

/** What the threaded build needs from the installed package, found once per process. */
interface WorkerScript {
  /** The text of the worker script to start the pthread workers from. */
  text: string;
  /** The byte size of the Blob the backend makes of its worker script (to recognise it). */
  blobSize: number;
}

interface ThreadsState {
  script?: Promise<WorkerScript>;
}

function threadsState(): ThreadsState {
  return sharedState<ThreadsState>('tensor.wasmThreads.v1', () => ({}));
}

/**
 * The installed @tensorflow/tfjs-backend-wasm's directory (Node only).
 *
 * @returns the absolute directory holding its package.json, `dist/` and `wasm-out/`
 *
 * @example
 * ```ts
 * wasm.setWasmPaths(`${await wasmPackageDirectory()}/dist/`);
 * ```
 */
export async function wasmPackageDirectory(): Promise<string> {
  const feature = "setBackend('wasm') in Node";
  const { createRequire } = await importNodeBuiltin('module', feature);
  const { dirname } = await importNodeBuiltin('path', feature);
  // The CommonJS build gets import.meta.url from tsup's shim (a file URL of this module).
  const require = createRequire(import.meta.url);
  return dirname(require.resolve(`${WASM_PACKAGE}/package.json`));
}

/** Writes `text` to `path` through a temporary name and a rename, so no reader sees half a file. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const { writeFile, rename } = await importNodeBuiltin('fs/promises', 'the wasm worker script');
  const partial = `${path}.partial`;
  await writeFile(partial, text, { encoding: 'utf8', mode: 0o600, flag: 'wx' });
  await rename(partial, path);
}

/**
 * Generates the worker script from the installed package's own (its Blob branch replaced) and
 * checks that it is the package the backend was loaded from.
 */
async function generateWorkerScript(loadedVersion: string): Promise<WorkerScript> {
  const feature = 'the multi-threaded wasm backend';
  const { createRequire } = await importNodeBuiltin('module', feature);
  const { join } = await importNodeBuiltin('path', feature);
  const { Script } = await importNodeBuiltin('vm', feature);
  const directory = await wasmPackageDirectory();
  const require = createRequire(join(directory, 'package.json'));
  const { version } = require('./package.json') as { version: string };
  if (version !== loadedVersion) {
    throw new Error(
      `${WASM_PACKAGE} at ${directory} is version ${version} but the loaded backend is ${loadedVersion}`,
    );
  }
  const gluePath = join(directory, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require('./wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
    wasmWorkerContents?: unknown;
  };
  require.resolve(gluePath);
  if (typeof wasmWorkerContents !== 'string' || !wasmWorkerContents.includes(BLOB_BRANCH)) {
    throw new Error(
      `${WASM_PACKAGE} ${version}'s worker script is not the one fineprune knows how to start in Node`,
    );
  }
  // The backend escapes the newlines inside the script's strings the same way before making its Blob.
  const blobText = wasmWorkerContents.replace(/\n/g, '\\n');
  const text = blobText.replace(BLOB_BRANCH, `importScripts(${JSON.stringify(gluePath)})`);
  // A syntax check, so that a worker never starts on a script that cannot run.
  new Script(text, { filename: 'fineprune-wasm-worker.cjs' });
  return { text, blobSize: new TextEncoder().encode(blobText).length };
}

/** Writes the worker script into a new private temporary directory; returns its path and a remover. */
async function writeWorkerScript(script: WorkerScript): Promise<{ path: string; remove(): void }> {
  const feature = 'the multi-threaded wasm backend';
  const { join } = await importNodeBuiltin('path', feature);
  const { mkdtemp } = await importNodeBuiltin('fs/promises', feature);
  const { rmSync } = await importNodeBuiltin('fs', feature);
  const { tmpdir } = await importNodeBuiltin('os', feature);
  const directory = await mkdtemp(join(tmpdir(), 'fineprune-wasm-threads-'));
  const path = join(directory, 'worker.cjs');
  const remove = () => rmSync(directory, { recursive: true, force: true });
  try {
    await writeAtomically(path, script.text);
  } catch (error) {
    remove();
    throw error;
  }
  return { path, remove };
}

/** The parts of @tensorflow/tfjs-backend-wasm's module the threaded start uses. */
export interface WasmModuleControls {
  setThreadsCount(count: number): void;
  version_wasm: string;
}

/**
 * Prepares the next initialisation of the wasm backend (Node) for `threads` threads: the
 * multi-threaded SIMD build when `threads` > 1, the single-threaded SIMD build otherwise. Returns
 * the function that restores `URL.createObjectURL`, `os.cpus` and `worker_threads.Worker` and removes
 * the worker script's file, to call once `tf.setBackend('wasm')` has finished, whether it worked or not.
 *
 * @param wasm - the imported @tensorflow/tfjs-backend-wasm module
 * @param threads - from 1 to {@link MAX_WASM_THREADS}
 * @returns the restore function
 * @throws Error when the installed package is not the one this code knows how to start (the caller
 *   falls back to one thread)
 *
 * @example
 * ```ts
 * const restore = await prepareWasmThreads(wasm, 2);
 * try { await tf.setBackend('wasm'); } finally { restore(); }
 * ```
 */
export async function prepareWasmThreads(wasm: WasmModuleControls, threads: number): Promise<() => void> {
  wasm.setThreadsCount(threads);
  if (threads <= 1) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    return () => {};
  }
  const state = threadsState();
  state.script ??= generateWorkerScript(wasm.version_wasm);
  let script: WorkerScript;
  try {
    script = await state.script;
  } catch (error) {
    state.script = undefined;
    throw error;
  }
  const workerFile = await writeWorkerScript(script);
  const os = await importNodeBuiltin('os', 'the multi-threaded wasm backend');
  const workerThreads = await importNodeBuiltin('worker_threads', 'the multi-threaded wasm backend');
  const originalCpus = os.cpus;
  const originalCreateObjectURL = URL.createObjectURL;
  const OriginalWorker = workerThreads.Worker;
  workerThreads.Worker = class WorkerWithoutParentFlags extends OriginalWorker {
    constructor(filename: string | URL, options?: import('node:worker_threads').WorkerOptions) {
      super(filename, { ...options, execArgv: [] });
    }
  };
  os.cpus = () => {
    const cpus = originalCpus();
    return Array.from({ length: 2 * threads }, (_, index) => cpus[index % cpus.length]!);
  };
  URL.createObjectURL = (object: Blob | MediaSource) =>
    object instanceof Blob && object.type === 'application/javascript' && object.size === script.blobSize
      ? workerFile.path
      : originalCreateObjectURL(object as Blob);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  return () => {
    os.cpus = originalCpus;
    URL.createObjectURL = originalCreateObjectURL;
    workerThreads.Worker = OriginalWorker;
    workerFile.remove();
  };
}

/** The parts of the wasm backend's Emscripten module that hold its pthread workers. */
interface PthreadControls {
  wasm?: {
    PThread?: { runningWorkers?: Array<{ unref?(): void }> };
    tfjs?: { getThreadsCount?(): number };
  };
}

/**
 * Lets a Node process exit while the backend's pool threads wait for work: Emscripten keeps a
 * running pthread's worker referenced, and the XNNPACK pool threads run until the backend is
 * disposed (which terminates them).
 *
 * @param backend - the wasm backend instance
 *
 * @example
 * ```ts
 * unrefWasmWorkers(tf.engine().registry.wasm);
 * ```
 */
export function unrefWasmWorkers(backend: unknown): void {
  for (const worker of (backend as PthreadControls).wasm?.PThread?.runningWorkers ?? []) worker.unref?.();
}

/**
 * The threads the initialised wasm backend computes on: 1 for the single-threaded build, the
 * XNNPACK pool's size for the multi-threaded one, 0 when the wasm backend is not initialised.
 *
 * @returns the thread count
 *
 * @example
 * ```ts
 * await setBackend('wasm', { wasmThreads: 'auto' });
 * console.log(`wasm on ${wasmThreadsInUse()} threads`);
 * ```
 */
export function wasmThreadsInUse(): number {
  const backend = tf.engine().registry.wasm as PthreadControls | undefined;
  return backend?.wasm?.tfjs?.getThreadsCount?.() ?? 0;
}
