/**
 * The WebGPU backend of fineprune: finds a GPU adapter by a preference order (navigator.gpu in a
 * browser, Dawn through the npm package `webgpu` in Node), creates the device that
 * @tensorflow/tfjs-backend-webgpu runs on, registers it as the `'webgpu'` provider of
 * @fineprune/tensor, and tears it all down again so that Node processes exit.
 */

import * as tf from '@tensorflow/tfjs-core';
import { type BackendProvider, registerBackendProvider, registerTopCountRoute } from '@fineprune/tensor';
import { registerFusedWebGPUKernels, unregisterFusedWebGPUKernels } from './fused-kernels';
import { gpuTopCountMasks } from './gpu-selection';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/** Where the backend runs. */
export type WebGPUEnvironment = 'browser' | 'node';

/**
 * One way to ask for an adapter. The first preference that yields an adapter and a device wins.
 *
 * @example
 * ```ts
 * const software: AdapterPreference = { dawnBackend: 'opengl', featureLevel: 'compatibility' };
 * ```
 */
export interface AdapterPreference {
  /**
   * Node only: the Dawn backend to create the GPU with (`'vulkan'`, `'opengl'`, `'opengles'`,
   * `'metal'`, `'d3d12'`, …), passed to Dawn as the `backend=` flag. Ignored in browsers.
   */
  dawnBackend?: string;
  /** Passed to `requestAdapter`. */
  powerPreference?: 'high-performance' | 'low-power';
  /** Passed to `requestAdapter`; `'compatibility'` admits OpenGL-class adapters. */
  featureLevel?: 'core' | 'compatibility';
  /** Passed to `requestAdapter`: ask for the browser's or Dawn's software fallback adapter. */
  forceFallbackAdapter?: boolean;
  /** Node only: further Dawn flags for `create()` (for example `'enable-dawn-features=...'`). */
  dawnFlags?: string[];
}

/** The parts of a `GPU` object the backend uses. */
export interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<AdapterLike | null>;
}

/** The parts of a `GPUAdapter` the backend uses. */
export interface AdapterLike {
  readonly features: { has(feature: string): boolean };
  readonly limits: Record<string, number>;
  readonly info?: { vendor?: string; architecture?: string; device?: string; description?: string };
  requestDevice(descriptor?: Record<string, unknown>): Promise<DeviceLike>;
}

/** The parts of a `GPUDevice` the backend uses. */
export interface DeviceLike {
  destroy(): void;
  readonly lost?: Promise<{ reason?: string; message?: string }>;
}

/**
 * Options of {@link registerWebGPUBackend} and {@link requestWebGPUDevice}.
 *
 * @example
 * ```ts
 * registerWebGPUBackend({ adapters: [{ dawnBackend: 'opengl', featureLevel: 'compatibility' }] });
 * ```
 */
export interface WebGPUOptions {
  /** Adapter preferences, tried in order. Default: {@link defaultAdapterPreferences}. */
  adapters?: AdapterPreference[];
  /** The provider's priority in `setBackend('auto')`. Default 3 (above wasm = 2 and cpu = 1). */
  priority?: number;
  /** A GPU object to use instead of `navigator.gpu` (browser) or a Dawn instance (Node). */
  gpu?: GpuLike;
  /**
   * Register the fused training kernels (attention softmax, LayerNorm, GELU and their gradients) and
   * the GPU top-count selection, so that an encoder step launches fewer kernels and reads nothing
   * back for mask selection. Default true; false removes them (the plain op chains and the host
   * selection, as TF.js alone would run).
   */
  fusedKernels?: boolean;
}

/** One try at an adapter preference. */
export interface AdapterAttempt {
  preference: AdapterPreference;
  ok: boolean;
  /** Why it failed. */
  reason?: string;
  /** Time spent on this preference, in milliseconds. */
  milliseconds: number;
}

/**
 * The device the backend runs on, and how it was chosen.
 *
 * @example
 * ```ts
 * const selection = await requestWebGPUDevice();
 * console.log(selection.adapter.description, selection.attempts);
 * ```
 */
export interface WebGPUDeviceSelection {
  environment: WebGPUEnvironment;
  /** The preference that produced the device. */
  preference: AdapterPreference;
  /** The adapter's self-description (vendor, architecture, device, description). */
  adapter: { vendor: string; architecture: string; device: string; description: string };
  /** Every preference tried, in order. */
  attempts: AdapterAttempt[];
  /** The device (a `GPUDevice`). */
  device: DeviceLike;
}

const BACKEND_NAME = 'webgpu';

interface State {
  selection: WebGPUDeviceSelection | undefined;
  adapterInfo: unknown;
  /** Globals this package installed in Node (Dawn's GPU* constants, navigator), removed at teardown. */
  installedGlobals: string[];
  navigatorInstalled: 'none' | 'navigator' | 'gpu';
  factoryRegistered: boolean;
}

const state: State = {
  selection: undefined,
  adapterInfo: undefined,
  installedGlobals: [],
  navigatorInstalled: 'none',
  factoryRegistered: false,
};

function environment(): WebGPUEnvironment {
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
  const browserLike = typeof (globalThis as { window?: unknown }).window !== 'undefined';
  return typeof process?.versions?.node === 'string' && !browserLike ? 'node' : 'browser';
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function describePreference(preference: AdapterPreference): string {
  const parts = Object.entries(preference)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : value}`);
  return parts.length === 0 ? 'default' : parts.join(' ');
}

/**
 * The adapter preferences tried when none are given. Browsers: a high-performance adapter, then a
 * low-power one, then a compatibility-level one, then the software fallback. Node: the native Dawn
 * backend of the platform (Vulkan on Linux, Metal on macOS, D3D12 then Vulkan on Windows), then Dawn's
 * OpenGL backend at the compatibility feature level, which runs on Mesa's llvmpipe (software) on
 * machines without a GPU.
 *
 * @param where - `'browser'` or `'node'` (default: where this runs)
 * @returns the preferences, most wanted first
 *
 * @example
 * ```ts
 * defaultAdapterPreferences('node'); // [{ dawnBackend: 'vulkan', ... }, { dawnBackend: 'opengl', ... }]
 * ```
 */
export function defaultAdapterPreferences(where: WebGPUEnvironment = environment()): AdapterPreference[] {
  if (where === 'browser') {
    return [
      { powerPreference: 'high-performance' },
      { powerPreference: 'low-power' },
      { featureLevel: 'compatibility' },
      { forceFallbackAdapter: true },
    ];
  }
  const platform = (globalThis as { process?: { platform?: string } }).process?.platform;
  const native: AdapterPreference[] =
    platform === 'darwin'
      ? [{ dawnBackend: 'metal', powerPreference: 'high-performance' }]
      : platform === 'win32'
        ? [
            { dawnBackend: 'd3d12', powerPreference: 'high-performance' },
            { dawnBackend: 'vulkan', powerPreference: 'high-performance' },
          ]
        : [{ dawnBackend: 'vulkan', powerPreference: 'high-performance' }];
  return [...native, { dawnBackend: 'opengl', featureLevel: 'compatibility' }];
}

interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}

/** Loads the npm package `webgpu` (Dawn), an optional peer dependency, and installs its globals. */
async function loadDawn(): Promise<DawnModule> {
  // A computed specifier keeps browser bundlers from trying to bundle the native module.
  const specifier = 'webgpu';
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ specifier)) as DawnModule;
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.MISSING_DEPENDENCY,
      message: `WebGPU in Node needs the npm package 'webgpu' (Dawn), which could not be loaded: ${message(error)}.`,
      fix: "Install it next to @fineprune/backend-webgpu (npm install webgpu), or use setBackend('wasm').",
      cause: error,
    });
  }
  // tfjs-backend-webgpu uses GPUBufferUsage, GPUMapMode, ... as globals, as in a browser.
  for (const [name, value] of Object.entries(dawn.globals)) {
    if (!(name in globalThis)) {
      (globalThis as Record<string, unknown>)[name] = value;
      state.installedGlobals.push(name);
    }
  }
  return dawn;
}

function requiredLimits(adapter: AdapterLike): Record<string, number | undefined> {
  const limits = adapter.limits;
  // The limits tfjs-backend-webgpu asks for when it creates its own device.
  return {
    maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
    maxBufferSize: limits.maxBufferSize,
    maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
    maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
  };
}

async function tryPreference(
  preference: AdapterPreference,
  where: WebGPUEnvironment,
  given: GpuLike | undefined,
): Promise<{ gpu: GpuLike; adapter: AdapterLike; device: DeviceLike }> {
  let gpu = given;
  if (gpu === undefined && where === 'browser') {
    gpu = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
    if (gpu === undefined) throw new Error('navigator.gpu is missing (this browser has no WebGPU)');
  }
  if (gpu === undefined) {
    const dawn = await loadDawn();
    const flags = [...(preference.dawnFlags ?? [])];
    if (preference.dawnBackend !== undefined) {
      flags.unshift(`backend=${preference.dawnBackend}`);
      // Dawn's OpenGL backend opens EGL; without a display, Mesa needs the surfaceless platform.
      const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
      if (/^opengl/.test(preference.dawnBackend) && env !== undefined && env.EGL_PLATFORM === undefined) {
        env.EGL_PLATFORM = 'surfaceless';
      }
    }
    gpu = dawn.create(flags);
  }
  const request: Record<string, unknown> = {};
  if (preference.powerPreference !== undefined) request.powerPreference = preference.powerPreference;
  if (preference.featureLevel !== undefined) request.featureLevel = preference.featureLevel;
  if (preference.forceFallbackAdapter !== undefined)
    request.forceFallbackAdapter = preference.forceFallbackAdapter;
  const adapter = await gpu.requestAdapter(request);
  if (adapter === null || adapter === undefined) throw new Error('no adapter matches');
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits: requiredLimits(adapter) });
  return { gpu, adapter, device };
}

/**
 * Finds an adapter by the preference order and creates a device on it, without registering anything
 * with TF.js. {@link registerWebGPUBackend}'s provider calls it; call it yourself to check what a
 * machine offers.
 *
 * @param options - adapter preferences, or a GPU object to use
 * @returns the device and how it was chosen
 * @throws FinepruneError `BACKEND_UNAVAILABLE` listing every preference's failure
 *
 * @example
 * ```ts
 * const { adapter, preference } = await requestWebGPUDevice();
 * console.log(adapter.description, preference); // "OpenGL version 4.5 (Core Profile) Mesa ..." { dawnBackend: 'opengl', ... }
 * ```
 */
export async function requestWebGPUDevice(options: WebGPUOptions = {}): Promise<WebGPUDeviceSelection> {
  const where = environment();
  const preferences = options.adapters ?? defaultAdapterPreferences(where);
  const attempts: AdapterAttempt[] = [];
  for (const preference of preferences) {
    const start = performance.now();
    const elapsed = () => Math.round((performance.now() - start) * 100) / 100;
    try {
      const { gpu, adapter, device } = await tryPreference(preference, where, options.gpu);
      attempts.push({ preference, ok: true, milliseconds: elapsed() });
      const info = adapter.info ?? {};
      if (where === 'node') installNavigatorGpu(gpu);
      state.adapterInfo = adapter.info;
      return {
        environment: where,
        preference,
        adapter: {
          vendor: info.vendor ?? '',
          architecture: info.architecture ?? '',
          device: info.device ?? '',
          description: info.description ?? '',
        },
        attempts,
        device,
      };
    } catch (error) {
      if (FinepruneError.is(error)) throw error;
      attempts.push({ preference, ok: false, reason: message(error), milliseconds: elapsed() });
    }
  }
  const failures = attempts.map((attempt) => `${describePreference(attempt.preference)}: ${attempt.reason}`);
  throw new FinepruneError({
    code: ErrorCodes.BACKEND_UNAVAILABLE,
    message: `No WebGPU adapter could be used (${failures.join('; ')}).`,
    fix:
      where === 'node'
        ? 'On Linux without a GPU install Mesa EGL (Debian: libegl1 libegl-mesa0 libgl1-mesa-dri libegl-dev) for the OpenGL path; with an NVIDIA GPU install its Vulkan driver (libvulkan1). Or use wasm.'
        : 'Use a browser with WebGPU enabled, or fall back to wasm (setBackend("auto") does).',
    details: { attempts },
  });
}

/** tfjs-backend-webgpu checks `navigator.gpu` when a backend is constructed; Node has none. */
function installNavigatorGpu(gpu: GpuLike): void {
  const global = globalThis as { navigator?: { gpu?: unknown } };
  if (global.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    state.navigatorInstalled = 'navigator';
  } else if (global.navigator.gpu === undefined) {
    Object.defineProperty(global.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
    state.navigatorInstalled = 'gpu';
  }
}

async function webgpuBackendClass(): Promise<
  new (
    device: unknown,
    adapterInfo?: unknown,
  ) => tf.KernelBackend
> {
  const module = (await import('@tensorflow/tfjs-backend-webgpu')) as unknown as {
    WebGPUBackend?: new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend;
    default?: { WebGPUBackend?: new (device: unknown, adapterInfo?: unknown) => tf.KernelBackend };
  };
  const backendClass = module.WebGPUBackend ?? module.default?.WebGPUBackend;
  if (backendClass === undefined) throw new Error('@tensorflow/tfjs-backend-webgpu exports no WebGPUBackend');
  return backendClass;
}

async function setUp(options: WebGPUOptions): Promise<void> {
  if (state.selection === undefined) {
    // Importing tfjs-backend-webgpu first registers its kernels (and, where navigator.gpu already
    // exists, its own factory, which is replaced below by one on the device chosen here).
    const WebGPUBackend = await webgpuBackendClass();
    const selection = await requestWebGPUDevice(options);
    state.selection = selection;
    selection.device.lost?.then(() => {
      if (state.selection === selection) state.selection = undefined;
    });
    if (tf.findBackendFactory(BACKEND_NAME) != null) tf.removeBackend(BACKEND_NAME);
    // Priority 0: TF.js never picks it on its own; fineprune's setBackend does.
    tf.registerBackend(BACKEND_NAME, () => new WebGPUBackend(selection.device, state.adapterInfo), 0);
    state.factoryRegistered = true;
  }
  if (options.fusedKernels ?? true) {
    registerFusedWebGPUKernels();
    registerTopCountRoute(BACKEND_NAME, gpuTopCountMasks);
  } else {
    unregisterFusedWebGPUKernels();
    registerTopCountRoute(BACKEND_NAME, undefined);
  }
}

/**
 * Registers the `'webgpu'` backend provider with @fineprune/tensor, so that `setBackend('webgpu')`
 * works and `setBackend('auto')` tries (and times) it. Nothing starts until the backend is selected.
 *
 * @param options - adapter preferences, the provider's priority, or a GPU object to use
 * @returns the registered provider
 *
 * @example
 * ```ts
 * import { setBackend } from '@fineprune/tensor';
 * import { disposeWebGPU, registerWebGPUBackend } from '@fineprune/backend-webgpu';
 *
 * registerWebGPUBackend();
 * const { backend, explanation } = await setBackend('auto');
 * // ... train ...
 * await disposeWebGPU(); // lets Node exit
 * ```
 */
export function registerWebGPUBackend(options: WebGPUOptions = {}): BackendProvider {
  const provider: BackendProvider = {
    name: BACKEND_NAME,
    priority: options.priority ?? 3,
    setup: () => setUp(options),
  };
  registerBackendProvider(provider);
  return provider;
}

/**
 * The device the `'webgpu'` backend runs on and how it was chosen, once it has been set up.
 *
 * @returns the selection, or `undefined` before set-up and after {@link disposeWebGPU}
 *
 * @example
 * ```ts
 * await setBackend('webgpu');
 * console.log(webgpuSelection()?.adapter.description);
 * ```
 */
export function webgpuSelection(): WebGPUDeviceSelection | undefined {
  return state.selection;
}

/**
 * Tears the WebGPU backend down: removes it from TF.js (its tensors are lost; TF.js falls back to its
 * next registered backend), destroys the device, and removes the globals this package installed in
 * Node, so that Dawn lets the process exit. The provider stays registered: selecting `'webgpu'` again
 * creates a new device.
 *
 * @example
 * ```ts
 * await setBackend('webgpu');
 * // ... work ...
 * await disposeWebGPU();
 * ```
 */
export async function disposeWebGPU(): Promise<void> {
  if (state.factoryRegistered && tf.findBackendFactory(BACKEND_NAME) != null) tf.removeBackend(BACKEND_NAME);
  state.factoryRegistered = false;
  const selection = state.selection;
  state.selection = undefined;
  state.adapterInfo = undefined;
  if (selection !== undefined) {
    try {
      selection.device.destroy();
    } catch {
      // A lost device may refuse; there is nothing left to free.
    }
  }
  if (state.navigatorInstalled === 'navigator') delete (globalThis as { navigator?: unknown }).navigator;
  if (state.navigatorInstalled === 'gpu')
    delete (globalThis as { navigator: { gpu?: unknown } }).navigator.gpu;
  state.navigatorInstalled = 'none';
  for (const name of state.installedGlobals) delete (globalThis as Record<string, unknown>)[name];
  state.installedGlobals = [];
}
