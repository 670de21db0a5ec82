/**
 * Backend selection: named providers that make a TF.js backend available, an explained choice
 * among them, and an offline setup of the wasm backend in Node.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';
import { importNodeBuiltin, isNode, sharedState } from './runtime';
import { registerWasmTrainingKernels } from './wasm-kernels';

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
 * backend and checks that it initialised.
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
  /** Prepares the backend; throws when it cannot run here. */
  setup(): Promise<void>;
}

/** Directory of the installed @tensorflow/tfjs-backend-wasm binaries, with a trailing slash. */
async function wasmBinaryDirectory(): Promise<string> {
  const feature = "setBackend('wasm') in Node";
  const { createRequire } = await importNodeBuiltin('module', feature);
  const { dirname, join } = await importNodeBuiltin('path', feature);
  // The CommonJS build gets import.meta.url from tsup's shim (a file URL of this module).
  const require = createRequire(import.meta.url);
  const packageJson = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return `${join(dirname(packageJson), 'dist')}/`;
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
    if (tf.engine().registry.wasm != null || state.wasmPathsSet) return;
    if (isNode()) {
      // Load the .wasm binaries from the installed package, never from the network. Threads are
      // unsupported in Node (the backend turns them off there), so the single-threaded SIMD build runs.
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      wasm.setWasmPaths(await wasmBinaryDirectory());
    }
    state.wasmPathsSet = true;
  },
};

function backendState(): BackendState {
  return sharedState<BackendState>('tensor.backends.v1', () => ({
    providers: new Map([
      [wasmProvider.name, wasmProvider],
      [cpuProvider.name, cpuProvider],
    ]),
    selected: new Map(),
    pending: new Map(),
    wasmPathsSet: false,
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

async function tryProvider(provider: BackendProvider): Promise<BackendAttempt> {
  const start = performance.now();
  const elapsed = () => Math.round((performance.now() - start) * 100) / 100;
  // Also when wasm was activated with tf.setBackend directly, which skips the provider's setup. Not
  // before @tensorflow/tfjs-backend-wasm is loaded: loading it would register its own kernels over
  // these (with a warning); the provider's setup registers them after loading it.
  if (provider.name === 'wasm' && tf.findBackendFactory('wasm') != null) registerWasmTrainingKernels();
  if (tf.getBackend() === provider.name && tf.engine().registry[provider.name] != null) {
    return { name: provider.name, ok: true, millisecondsToInit: 0 };
  }
  const previous = tf.engine().registry[tf.getBackend() ?? ''] != null ? tf.getBackend() : undefined;
  let reason: string | undefined;
  try {
    await provider.setup();
    reason = await activate(provider.name);
  } catch (error) {
    reason = message(error);
  }
  if (reason === undefined) return { name: provider.name, ok: true, millisecondsToInit: elapsed() };
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
  return {
    backend: best.name,
    attempts,
    explanation:
      `'auto' chose '${best.name}', the fastest working backend on a ${PROBE_SIZE}×${PROBE_SIZE} matMul probe ` +
      `(fastest of ${PROBE_REPETITIONS} runs after a warm-up: ${timings}).${failures}`,
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
    explanation: `'${name}' was requested and started.`,
  };
}

/**
 * Selects and initialises the TF.js backend. A named backend must start or the call throws; `'auto'`
 * starts every registered provider (highest priority first), times a small matMul probe on each that
 * starts (checking its result), and keeps the fastest; the explanation lists each backend's probe time
 * and every failure. A second call with the same name while that backend is still active returns the
 * first result at once (so the probes run once).
 *
 * @param name - `'wasm'` (the default), `'cpu'`, `'auto'` or a registered provider's name
 * @returns the chosen backend, every attempt, and an explanation
 * @throws FinepruneError `UNKNOWN_BACKEND` for a name no provider has, `BACKEND_UNAVAILABLE` when
 *   the backend (or, for `'auto'`, every backend) fails to start
 *
 * @example
 * ```ts
 * const { backend, attempts, explanation } = await setBackend('auto');
 * console.log(backend, explanation); // 'wasm' "'auto' chose 'wasm', ..."
 * ```
 */
export async function setBackend(name: BackendName = defaultBackendName()): Promise<BackendSelection> {
  if (typeof name !== 'string' || name === '') {
    throw new FinepruneError({
      code: ErrorCodes.UNKNOWN_BACKEND,
      message: `A backend name must be a non-empty string, got ${JSON.stringify(name)}.`,
      fix: "Pass 'wasm', 'cpu' or 'auto'.",
    });
  }
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
