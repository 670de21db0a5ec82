/**
 * Backend selection: named providers that make a TF.js backend available, an explained choice
 * among them, and an offline setup of the wasm backend in Node.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';
import { importNodeBuiltin, isNode, sharedState } from './runtime';
import { registerWasmTrainingKernels } from './wasm-kernels';
import {
  prepareWasmThreads,
  resolveWasmThreads,
  unrefWasmWorkers,
  type WasmThreads,
  wasmPackageDirectory,
  wasmThreadsInUse,
  wasmThreadsVariable,
} from './wasm-threads';

/**
 * A backend to select: `'cpu'`, `'wasm'`, `'auto'` (the best provider that works), or the name of
 * a provider another package registered (for example `'webgpu'`).
 *
 * @example
 * ```ts
 * const name: BackendName = process.env.BACKEND ?? 'auto';
 * await setBackend(name);
 * ```
 */
export type BackendName = 'cpu' | 'wasm' | 'auto' | (string & {});

/**
 * One try at starting a backend.
 *
 * @example
 * ```ts
 * const attempt: BackendAttempt = { name: 'webgpu', ok: false, reason: 'navigator.gpu is missing' };
 * ```
 */
export interface BackendAttempt {
  /** The provider's name. */
  name: string;
  /** Whether the backend started and is now active. */
  ok: boolean;
  /** Why it failed (only when `ok` is false). */
  reason?: string;
  /** `'wasm'` only: the threads it computes on (1 for the single-threaded build). */
  threads?: number;
  /** Time the provider's setup and the backend's initialisation took, in milliseconds. */
  millisecondsToInit?: number;
  /**
   * `'auto'` only: the fastest time of a 128×128 float32 matMul with read-back on this backend, in
   * milliseconds (absent when the backend failed to start or gave a wrong product).
   */
  probeMilliseconds?: number;
}

/**
 * What {@link setBackend} chose, and why.
 *
 * @example
 * ```ts
 * const selection: BackendSelection = await setBackend('auto');
 * console.log(selection.explanation);
 * ```
 */
export interface BackendSelection {
  /** The active TF.js backend's name. */
  backend: string;
  /** Every backend tried, in order: the failures and then the one that worked. */
  attempts: BackendAttempt[];
  /** One human-readable sentence or two on the choice. */
  explanation: string;
}

/**
 * Makes one TF.js backend available. `setup()` does whatever the backend needs before
 * `tf.setBackend(name)` can succeed (import and register it, point it at its binaries, create a
 * device); it may throw to say the backend cannot run here. {@link setBackend} then activates the
 * backend and checks that it initialised. A setup may return a function that undoes temporary
 * changes it made for the initialisation; it is called once activation has finished, whether it
 * worked or not.
 *
 * @example
 * ```ts
 * registerBackendProvider({
 *   name: 'webgpu',
 *   priority: 3,
 *   async setup() {
 *     if (!('gpu' in navigator)) throw new Error('navigator.gpu is missing');
 *     await import('@tensorflow/tfjs-backend-webgpu');
 *   },
 * });
 * ```
 */
export interface BackendProvider {
  /** The TF.js backend name it provides (as given to `tf.setBackend`). */
  name: string;
  /**
   * Order of trying in `'auto'`, higher first, and the tie-break between equally fast probes. The
   * built-ins are wasm = 2 and cpu = 1.
   */
  priority: number;
  /** Prepares the backend; throws when it cannot run here. May return an undo for after activation. */
  // biome-ignore lint/suspicious/noConfusingVoidType: providers written as `async setup() {}` return Promise<void>.
  setup(): Promise<void | (() => void)>;
}

/**
 * Options of {@link setBackend}.
 *
 * @example
 * ```ts
 * await setBackend('wasm', { wasmThreads: 'auto' });
 * ```
 */
export interface SetBackendOptions {
  /**
   * Threads of the wasm backend: a number from 1 to 8 or `'auto'` (one per core). Default: the
   * `FINEPRUNE_WASM_THREADS` environment variable, else 1. The count is fixed when the wasm backend
   * first starts in a process; {@link releaseWasmBackend} lets it start again with another count.
   */
  wasmThreads?: WasmThreads;
}

/** Directory of the installed @tensorflow/tfjs-backend-wasm binaries, with a trailing slash. */
async function wasmBinaryDirectory(): Promise<string> {
  const { join } = await importNodeBuiltin('path', "setBackend('wasm') in Node");
  return `${join(await wasmPackageDirectory(), 'dist')}/`;
}

/**
 * The backend state, one per process whichever build (ES module or CommonJS) loaded this file:
 * a provider registered through `import` is found through `require`, and the cached selections
 * of one copy are valid for the other (TF.js keeps its engine on the global object too).
 */
interface BackendState {
  /** The registered providers by name. */
  providers: Map<string, BackendProvider>;
  /** Successful selections by requested name, to make repeated calls cheap. */
  selected: Map<string, BackendSelection>;
  /** Selections under way, so that concurrent calls share one initialisation. */
  pending: Map<string, Promise<BackendSelection>>;
  /** Whether the wasm backend was pointed at its binaries. */
  wasmPathsSet: boolean;
  /** Threads for the next start of the wasm backend (set by {@link setBackend}). */
  wasmThreads: number;
  /** Whether that count was asked for (an option or the environment variable), not the default. */
  wasmThreadsAsked: boolean;
  /** Why the last start fell back from several threads to one, if it did. */
  wasmThreadsFallback?: string;
}

function namespaceOf<T>(module: T | { default?: T }): T {
  return ((module as { default?: T }).default ?? module) as T;
}

const cpuProvider: BackendProvider = {
  name: 'cpu',
  priority: 1,
  async setup() {
    // Loaded on first use, so that importing @fineprune/tensor registers no backend and a bundle
    // that never selects cpu can leave it in a chunk of its own.
    const cpu = namespaceOf(await import('@tensorflow/tfjs-backend-cpu'));
    // Importing it registers it; register again only if a bundler dropped that side effect.
    if (tf.findBackendFactory('cpu') == null) tf.registerBackend('cpu', () => new cpu.MathBackendCPU(), 1);
  },
};

const wasmProvider: BackendProvider = {
  name: 'wasm',
  priority: 2,
  async setup() {
    let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
    try {
      wasm = namespaceOf(await import('@tensorflow/tfjs-backend-wasm'));
    } catch (error) {
      throw new Error(`importing @tensorflow/tfjs-backend-wasm failed (${message(error)})`);
    }
    if (tf.findBackendFactory('wasm') == null) {
      throw new Error('the wasm backend is not registered (importing @tensorflow/tfjs-backend-wasm failed)');
    }
    // The gradients of gather, conv2d filters, depthwise convolutions and max-pooling (idempotent).
    registerWasmTrainingKernels();
    const state = backendState();
    // Started already: its thread count is fixed until releaseWasmBackend().
    if (tf.engine().registry.wasm != null) return;
    if (!isNode()) {
      // In a browser TF.js decides whether threads can run (cross-origin isolation) and how many;
      // only a count the caller asked for is passed on.
      if (state.wasmThreadsAsked) wasm.setThreadsCount(state.wasmThreads);
      return;
    }
    // Load the .wasm binaries from the installed package, never from the network.
    if (!state.wasmPathsSet) wasm.setWasmPaths(await wasmBinaryDirectory());
    state.wasmPathsSet = true;
    try {
      return await prepareWasmThreads(wasm, state.wasmThreads);
    } catch (error) {
      fallBackToOneThread(`its files could not be prepared (${message(error)})`);
      return prepareWasmThreads(wasm, 1);
    }
  },
};

/** Logs why the multi-threaded wasm backend could not start, and makes the next start single-threaded. */
function fallBackToOneThread(reason: string): void {
  const state = backendState();
  state.wasmThreadsFallback = `the multi-threaded wasm backend (${state.wasmThreads} threads) could not start: ${reason}`;
  console.warn(`fineprune: ${state.wasmThreadsFallback}; using one thread instead.`);
  state.wasmThreads = 1;
}

function backendState(): BackendState {
  return sharedState<BackendState>('tensor.backends.v2', () => ({
    providers: new Map([
      [wasmProvider.name, wasmProvider],
      [cpuProvider.name, cpuProvider],
    ]),
    selected: new Map(),
    pending: new Map(),
    wasmPathsSet: false,
    wasmThreads: 1,
    wasmThreadsAsked: false,
  }));
}

/**
 * Adds (or replaces) a backend provider, so that {@link setBackend} accepts its name and `'auto'`
 * tries it in priority order.
 *
 * @param provider - the provider; its `name` is the TF.js backend name
 *
 * @example
 * ```ts
 * registerBackendProvider({ name: 'webgpu', priority: 3, setup: setUpDawn });
 * await setBackend('webgpu');
 * ```
 */
export function registerBackendProvider(provider: BackendProvider): void {
  if (
    typeof provider !== 'object' ||
    provider === null ||
    typeof provider.name !== 'string' ||
    provider.name === '' ||
    provider.name === 'auto' ||
    typeof provider.setup !== 'function' ||
    !Number.isFinite(provider.priority)
  ) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message:
        'A backend provider needs a non-empty name other than "auto", a finite priority and a setup() function.',
      fix: "Pass { name: 'webgpu', priority: 3, async setup() { ... } }.",
    });
  }
  const { providers, selected } = backendState();
  providers.set(provider.name, provider);
  selected.delete(provider.name);
  selected.delete('auto');
}

/**
 * The registered backend providers, highest priority first (the order `'auto'` tries them in).
 *
 * @returns a copy of the provider list
 *
 * @example
 * ```ts
 * backendProviders().map((provider) => provider.name); // ['wasm', 'cpu']
 * ```
 */
export function backendProviders(): BackendProvider[] {
  return [...backendState().providers.values()].sort((a, b) => b.priority - a.priority);
}

/**
 * The backend fineprune uses when none is named: `'wasm'` (in Node and in browsers).
 *
 * @returns the default backend's name
 *
 * @example
 * ```ts
 * await setBackend(defaultBackendName());
 * ```
 */
export function defaultBackendName(): string {
  return 'wasm';
}

/**
 * The active TF.js backend's name, or `''` when none has been initialised yet.
 *
 * @returns the backend name
 *
 * @example
 * ```ts
 * if (currentBackend() === 'wasm') console.log('fast path');
 * ```
 */
export function currentBackend(): string {
  return tf.getBackend() ?? '';
}

function message(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null && 'message' in error) return String(error.message);
  return String(error);
}

/**
 * Runs `tf.setBackend(name)` and returns why it failed, or undefined when it worked. TF.js reports
 * initialisation errors only through console.warn, so those warnings are captured meanwhile.
 */
async function activate(name: string): Promise<string | undefined> {
  const warnings: string[] = [];
  const originalWarn = console.warn;
  let capturing = false;
  console.warn = (...args: unknown[]) => {
    const text = args.map((arg) => message(arg)).join(' ');
    if (capturing || text.startsWith(`Initialization of backend ${name} failed`)) {
      // The first line names the backend, the next one is the error itself.
      capturing = !capturing;
      warnings.push(text);
      return;
    }
    originalWarn.apply(console, args);
  };
  try {
    const ok = await tf.setBackend(name);
    if (ok && tf.getBackend() === name) return undefined;
    const cause = warnings.slice(1).join(' ').split('\n')[0];
    return cause ? cause : `tf.setBackend('${name}') returned false`;
  } catch (error) {
    return message(error);
  } finally {
    console.warn = originalWarn;
  }
}

/** The attempt of a backend that is now active (for wasm: its threads, which may not keep Node alive). */
function started(name: string, millisecondsToInit: number): BackendAttempt {
  const attempt: BackendAttempt = { name, ok: true, millisecondsToInit };
  if (name === 'wasm') {
    unrefWasmWorkers(tf.engine().registry.wasm);
    attempt.threads = wasmThreadsInUse();
  }
  return attempt;
}

/** Runs the provider's setup and activates its backend; returns why that failed, if it did. */
async function setUpAndActivate(provider: BackendProvider): Promise<string | undefined> {
  let undo: (() => void) | undefined;
  try {
    const result = await provider.setup();
    if (typeof result === 'function') undo = result;
    return await activate(provider.name);
  } catch (error) {
    return message(error);
  } finally {
    undo?.();
  }
}

async function tryProvider(provider: BackendProvider): Promise<BackendAttempt> {
  const start = performance.now();
  const elapsed = () => Math.round((performance.now() - start) * 100) / 100;
  // Also when wasm was activated with tf.setBackend directly, which skips the provider's setup. Not
  // before @tensorflow/tfjs-backend-wasm is loaded: loading it would register its own kernels over
  // these (with a warning); the provider's setup registers them after loading it.
  if (provider.name === 'wasm' && tf.findBackendFactory('wasm') != null) registerWasmTrainingKernels();
  if (tf.getBackend() === provider.name && tf.engine().registry[provider.name] != null) {
    return started(provider.name, 0);
  }
  const previous = tf.engine().registry[tf.getBackend() ?? ''] != null ? tf.getBackend() : undefined;
  let reason = await setUpAndActivate(provider);
  if (reason !== undefined && provider.name === 'wasm' && backendState().wasmThreads > 1) {
    fallBackToOneThread(reason);
    reason = await setUpAndActivate(provider);
  }
  if (reason === undefined) return started(provider.name, elapsed());
  // Leave TF.js on the backend that was working before, not half-switched to the failed one.
  if (previous && tf.getBackend() !== previous) await tf.setBackend(previous);
  return { name: provider.name, ok: false, reason, millisecondsToInit: elapsed() };
}

function describeFailures(attempts: readonly BackendAttempt[]): string {
  return attempts
    .filter((attempt) => !attempt.ok)
    .map((attempt) => `${attempt.name}: ${attempt.reason}`)
    .join('; ');
}

/** Side of the square matrices of the speed probe. */
const PROBE_SIZE = 128;
/** Timed repetitions of the probe (after one warm-up); the fastest counts. */
const PROBE_REPETITIONS = 3;

/** Probe entries: small multiples of 1/8, so every product and sum is exact in float32. */
function probeEntry(row: number, column: number): number {
  return (((row * 7 + column * 3) % 11) - 5) / 8;
}

let probeExpectedRow: Float64Array | undefined;

/** Row 0 of the probe's product, computed in JavaScript. */
function expectedProbeRow(): Float64Array {
  if (probeExpectedRow === undefined) {
    probeExpectedRow = new Float64Array(PROBE_SIZE);
    for (let column = 0; column < PROBE_SIZE; column += 1) {
      let sum = 0;
      for (let k = 0; k < PROBE_SIZE; k += 1) sum += probeEntry(0, k) * probeEntry(k, column);
      probeExpectedRow[column] = sum;
    }
  }
  return probeExpectedRow;
}

/**
 * Times a 128×128 float32 matMul (with reading the result back) on the active backend and checks its
 * first row. Returns the fastest of three timed runs after a warm-up, or why the backend failed.
 */
async function probeActiveBackend(): Promise<{ milliseconds: number } | { reason: string }> {
  const values = new Float32Array(PROBE_SIZE * PROBE_SIZE);
  for (let row = 0; row < PROBE_SIZE; row += 1) {
    for (let column = 0; column < PROBE_SIZE; column += 1)
      values[row * PROBE_SIZE + column] = probeEntry(row, column);
  }
  const matrix = tf.tensor2d(values, [PROBE_SIZE, PROBE_SIZE]);
  try {
    let fastest = Number.POSITIVE_INFINITY;
    for (let repetition = 0; repetition <= PROBE_REPETITIONS; repetition += 1) {
      const start = performance.now();
      const product = tf.matMul(matrix, matrix);
      const result = await product.data();
      const milliseconds = performance.now() - start;
      product.dispose();
      if (repetition === 0) {
        const expected = expectedProbeRow();
        for (let column = 0; column < PROBE_SIZE; column += 1) {
          if (result[column] !== expected[column]) {
            return {
              reason: `the probe matMul gave ${result[column]} instead of ${expected[column]} at [0, ${column}]`,
            };
          }
        }
      } else {
        fastest = Math.min(fastest, milliseconds);
      }
    }
    return { milliseconds: Math.round(fastest * 1000) / 1000 };
  } catch (error) {
    return { reason: `the probe matMul failed: ${message(error)}` };
  } finally {
    matrix.dispose();
  }
}

async function selectAuto(): Promise<BackendSelection> {
  const attempts: BackendAttempt[] = [];
  for (const provider of backendProviders()) {
    const attempt = await tryProvider(provider);
    if (attempt.ok) {
      const probe = await probeActiveBackend();
      if ('reason' in probe) {
        attempt.ok = false;
        attempt.reason = probe.reason;
      } else {
        attempt.probeMilliseconds = probe.milliseconds;
      }
    }
    attempts.push(attempt);
  }
  const working = attempts.filter((attempt) => attempt.ok);
  if (working.length === 0) {
    throw new FinepruneError({
      code: ErrorCodes.BACKEND_UNAVAILABLE,
      message: `No backend could be started. ${describeFailures(attempts)}.`,
      fix: 'Check that @tensorflow/tfjs-backend-cpu and @tensorflow/tfjs-backend-wasm are installed, or register a provider that works here.',
      details: { attempts },
    });
  }
  // The fastest probe wins; on a tie, the higher priority (earlier in the list).
  const best = working.reduce((fastest, attempt) =>
    attempt.probeMilliseconds! < fastest.probeMilliseconds! ? attempt : fastest,
  );
  if (tf.getBackend() !== best.name) await tf.setBackend(best.name);
  const timings = working.map((attempt) => `${attempt.name} ${attempt.probeMilliseconds} ms`).join(', ');
  const failures = attempts.length > working.length ? ` Failed: ${describeFailures(attempts)}.` : '';
  const wasmAttempt = working.find((attempt) => attempt.name === 'wasm');
  const wasmNote = wasmAttempt === undefined ? '' : ` wasm ran${threadsNote(wasmAttempt)}.`;
  return {
    backend: best.name,
    attempts,
    explanation:
      `'auto' chose '${best.name}', the fastest working backend on a ${PROBE_SIZE}×${PROBE_SIZE} matMul probe ` +
      `(fastest of ${PROBE_REPETITIONS} runs after a warm-up: ${timings}).${failures}${wasmNote}`,
  };
}

async function select(name: string): Promise<BackendSelection> {
  if (name === 'auto') return selectAuto();
  const provider = backendState().providers.get(name);
  if (provider === undefined) {
    const known = ['auto', ...backendProviders().map((entry) => entry.name)];
    throw new FinepruneError({
      code: ErrorCodes.UNKNOWN_BACKEND,
      message: `Unknown backend '${name}'. Known backends: ${known.map((entry) => `'${entry}'`).join(', ')}.`,
      fix: `Use one of ${known.join(', ')}, or registerBackendProvider() first for another backend.`,
      details: { name, known },
    });
  }
  const attempt = await tryProvider(provider);
  if (!attempt.ok) {
    throw new FinepruneError({
      code: ErrorCodes.BACKEND_UNAVAILABLE,
      message: `Backend '${name}' could not be started: ${attempt.reason}.`,
      fix: `Use setBackend('auto') to fall back to a backend that works, or fix the cause above.`,
      details: { attempts: [attempt] },
      cause: attempt.reason,
    });
  }
  return {
    backend: name,
    attempts: [attempt],
    explanation: `'${name}' was requested and started${threadsNote(attempt)}.`,
  };
}

/** ` on N thread(s)` for a started wasm backend, with the reason when it fell back to one. */
function threadsNote(attempt: BackendAttempt | undefined): string {
  if (attempt?.threads === undefined) return '';
  const fallback = backendState().wasmThreadsFallback;
  const count = ` on ${attempt.threads} thread${attempt.threads === 1 ? '' : 's'}`;
  return fallback === undefined || attempt.threads > 1 ? count : `${count} (${fallback})`;
}

/**
 * Sets the thread count the wasm backend starts with, or checks that an explicitly requested count
 * is the one it already runs on.
 */
async function configureWasmThreads(requested: WasmThreads | undefined): Promise<void> {
  const state = backendState();
  const threads = await resolveWasmThreads(requested);
  const inUse = wasmThreadsInUse();
  if (inUse === 0) {
    state.wasmThreads = threads;
    state.wasmThreadsAsked = requested !== undefined || wasmThreadsVariable() !== undefined;
    state.wasmThreadsFallback = undefined;
    return;
  }
  if (requested !== undefined && inUse !== threads && state.wasmThreadsFallback === undefined) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The wasm backend already runs on ${inUse} thread${inUse === 1 ? '' : 's'} in this process; ${threads} were requested. The thread count is fixed when it starts.`,
      fix: 'Call releaseWasmBackend() first (tensors on wasm are lost), or request the same count.',
      details: { inUse, requested: threads },
    });
  }
}

/**
 * Disposes the wasm backend (terminating its worker threads) and leaves it registered, so that the
 * next {@link setBackend} starts it afresh, for example with another thread count. Tensors still on
 * the wasm backend become unusable: dispose of them first. Does nothing when it has not started.
 *
 * @example
 * ```ts
 * await setBackend('wasm', { wasmThreads: 2 });
 * // ... work on two threads ...
 * releaseWasmBackend();
 * await setBackend('wasm', { wasmThreads: 1 });
 * ```
 */
export function releaseWasmBackend(): void {
  const factory = tf.findBackendFactory('wasm');
  if (factory == null || tf.engine().registry.wasm == null) return;
  tf.removeBackend('wasm');
  // The priority @tensorflow/tfjs-backend-wasm registers itself with.
  tf.registerBackend('wasm', factory, 2);
  const state = backendState();
  for (const [name, selection] of state.selected) {
    if (selection.backend === 'wasm') state.selected.delete(name);
  }
  state.wasmThreadsFallback = undefined;
}

/**
 * Selects and initialises the TF.js backend. A named backend must start or the call throws; `'auto'`
 * starts every registered provider (highest priority first), times a small matMul probe on each that
 * starts (checking its result), and keeps the fastest; the explanation lists each backend's probe time
 * and every failure. A second call with the same name while that backend is still active returns the
 * first result at once (so the probes run once).
 *
 * The wasm backend runs on `options.wasmThreads` threads, else on `FINEPRUNE_WASM_THREADS`, else on
 * one. In Node, more than one starts TF.js's multi-threaded SIMD build on worker threads (see
 * the package README); if that cannot start, a warning is logged and it runs on one thread. The worker
 * threads never keep the process alive.
 *
 * @param name - `'wasm'` (the default), `'cpu'`, `'auto'` or a registered provider's name
 * @param options - the wasm backend's thread count
 * @returns the chosen backend, every attempt, and an explanation
 * @throws FinepruneError `UNKNOWN_BACKEND` for a name no provider has, `BACKEND_UNAVAILABLE` when
 *   the backend (or, for `'auto'`, every backend) fails to start, `INVALID_ARGUMENT` for a malformed
 *   thread count or one other than the running wasm backend's
 *
 * @example
 * ```ts
 * const { backend, attempts, explanation } = await setBackend('auto');
 * console.log(backend, explanation); // 'wasm' "'auto' chose 'wasm', ..."
 * await setBackend('wasm', { wasmThreads: 'auto' }); // one thread per core
 * ```
 */
export async function setBackend(
  name: BackendName = defaultBackendName(),
  options: SetBackendOptions = {},
): Promise<BackendSelection> {
  if (typeof name !== 'string' || name === '') {
    throw new FinepruneError({
      code: ErrorCodes.UNKNOWN_BACKEND,
      message: `A backend name must be a non-empty string, got ${JSON.stringify(name)}.`,
      fix: "Pass 'wasm', 'cpu' or 'auto'.",
    });
  }
  if (name === 'wasm' || name === 'auto') await configureWasmThreads(options.wasmThreads);
  const { selected, pending } = backendState();
  const previous = selected.get(name);
  if (previous !== undefined && tf.getBackend() === previous.backend) return previous;
  const inFlight = pending.get(name);
  if (inFlight !== undefined) return inFlight;
  const promise = select(name).finally(() => pending.delete(name));
  pending.set(name, promise);
  const selection = await promise;
  selected.set(name, selection);
  return selection;
}
