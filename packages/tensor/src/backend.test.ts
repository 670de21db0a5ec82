import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BackendProvider,
  backendProviders,
  currentBackend,
  defaultBackendName,
  registerBackendProvider,
  setBackend,
} from './backend';
import { FinepruneError } from './errors';

async function catchError(promise: Promise<unknown>): Promise<FinepruneError> {
  try {
    await promise;
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    return error as FinepruneError;
  }
  throw new Error('expected a FinepruneError');
}

describe('backend selection', () => {
  const builtIns = backendProviders();
  afterAll(() => {
    for (const provider of builtIns) registerBackendProvider(provider);
  });

  it('defaults to wasm and lists the built-in providers by priority', () => {
    expect(defaultBackendName()).toBe('wasm');
    expect(builtIns.map((provider) => [provider.name, provider.priority])).toEqual([
      ['wasm', 2],
      ['cpu', 1],
    ]);
  });

  it('selects wasm by default, and returns the cached selection when asked again', async () => {
    const first = await setBackend();
    expect(first.backend).toBe('wasm');
    expect(first.attempts.at(-1)).toMatchObject({ name: 'wasm', ok: true });
    expect(currentBackend()).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    // the second call returns the cached selection object itself: nothing was initialised again
    const second = await setBackend('wasm');
    expect(second).toBe(first);
    const [a, b] = await Promise.all([setBackend('cpu'), setBackend('cpu')]);
    expect(a).toBe(b);
    expect(currentBackend()).toBe('cpu');
    expect(tf.sum(tf.tensor1d([1, 2])).dataSync()[0]).toBe(3);
  });

  it('rejects an unknown name with UNKNOWN_BACKEND, the known names and a fix', async () => {
    const error = await catchError(setBackend('tpu'));
    expect(error.code).toBe('UNKNOWN_BACKEND');
    expect(error.message).toContain("'tpu'");
    expect(error.message).toContain("'wasm'");
    expect(error.message).toContain("'cpu'");
    expect(error.message).toContain("'auto'");
    expect(error.fix).toMatch(/registerBackendProvider/);
    expect(error.details).toMatchObject({ name: 'tpu', known: ['auto', 'wasm', 'cpu'] });
  });

  it('reports a failing provider as BACKEND_UNAVAILABLE with its cause and keeps the active backend', async () => {
    await setBackend('wasm');
    registerBackendProvider({
      name: 'broken',
      priority: 10,
      async setup() {
        throw new Error('no device here');
      },
    });
    const error = await catchError(setBackend('broken'));
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toContain('no device here');
    expect(error.cause).toBe('no device here');
    expect(error.fix.length).toBeGreaterThan(0);
    expect(currentBackend()).toBe('wasm');

    // A setup that succeeds for a backend TF.js does not know fails at activation instead.
    registerBackendProvider({ name: 'unregistered', priority: 9, async setup() {} });
    const activation = await catchError(setBackend('unregistered'));
    expect(activation.code).toBe('BACKEND_UNAVAILABLE');
    expect(activation.message).toMatch(/not found in registry/);
    expect(currentBackend()).toBe('wasm');
  });

  it("reports the TF.js backend factory's own error (sync or async) and keeps the active backend", async () => {
    await setBackend('wasm');
    tf.registerBackend('test-throwing', () => {
      throw new Error('factory exploded');
    });
    tf.registerBackend('test-rejecting', async () => {
      throw new Error('async init failed');
    });
    registerBackendProvider({ name: 'test-throwing', priority: -50, async setup() {} });
    registerBackendProvider({ name: 'test-rejecting', priority: -51, async setup() {} });
    const warnings: unknown[] = [];
    const originalWarn = console.warn;
    console.warn = (...args: unknown[]) => warnings.push(args);
    try {
      for (const [name, cause] of [
        ['test-throwing', 'factory exploded'],
        ['test-rejecting', 'async init failed'],
      ] as const) {
        const error = await catchError(setBackend(name));
        expect(error.code).toBe('BACKEND_UNAVAILABLE');
        expect(error.message).toContain(cause);
        expect(currentBackend()).toBe('wasm');
      }
    } finally {
      console.warn = originalWarn;
      tf.removeBackend('test-throwing');
      tf.removeBackend('test-rejecting');
    }
    // TF.js's own warnings about the failure were folded into the errors, not printed.
    expect(warnings).toEqual([]);
  });

  it("'auto' probes every provider, picks the fastest, and explains timings and failures", async () => {
    const selection = await setBackend('auto');
    expect(selection.backend).toBe('wasm');
    expect(selection.attempts.map((attempt) => [attempt.name, attempt.ok])).toEqual([
      ['broken', false],
      ['unregistered', false],
      ['wasm', true],
      ['cpu', true],
      // Left registered by the previous test; their TF.js backends were removed.
      ['test-throwing', false],
      ['test-rejecting', false],
    ]);
    expect(selection.attempts[0]!.reason).toBe('no device here');
    expect(selection.explanation).toContain('broken: no device here');
    expect(selection.explanation).toContain("'auto' chose 'wasm', the fastest working backend");
    const [wasm, cpu] = selection.attempts.slice(2);
    expect(wasm!.probeMilliseconds).toBeGreaterThan(0);
    // wasm's SIMD matMul is an order of magnitude faster than the pure-JS cpu backend.
    expect(cpu!.probeMilliseconds).toBeGreaterThan(wasm!.probeMilliseconds!);
    expect(selection.explanation).toMatch(/wasm [\d.]+ ms, cpu [\d.]+ ms/);
    expect(currentBackend()).toBe('wasm');
    for (const attempt of selection.attempts) expect(attempt.millisecondsToInit).toBeGreaterThanOrEqual(0);
    // Idempotent while the chosen backend stays active.
    expect(await setBackend('auto')).toBe(selection);
  });

  it("'auto' fails with one BACKEND_UNAVAILABLE listing every failure when nothing starts", async () => {
    const failing = (name: string, priority: number): BackendProvider => ({
      name,
      priority,
      async setup() {
        throw new Error(`${name} disabled for this test`);
      },
    });
    registerBackendProvider(failing('wasm', 2));
    registerBackendProvider(failing('cpu', 1));
    // Activate a third TF.js backend so that neither wasm nor cpu is already running.
    tf.registerBackend('test-dummy', () => new MathBackendCPU(), -100);
    await tf.setBackend('test-dummy');
    const error = await catchError(setBackend('auto'));
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    for (const name of ['broken', 'unregistered', 'wasm', 'cpu']) expect(error.message).toContain(`${name}:`);
    expect((error.details?.attempts as unknown[]).length).toBe(backendProviders().length);
    expect(currentBackend()).toBe('test-dummy');
    for (const provider of builtIns) registerBackendProvider(provider);
    registerBackendProvider({ ...failing('broken', -10) });
    registerBackendProvider({ name: 'unregistered', priority: -11, async setup() {} });
    expect((await setBackend('auto')).backend).toBe('wasm');
    tf.removeBackend('test-dummy');
  });

  it("'auto' rejects a backend whose probe gives a wrong product", async () => {
    tf.registerBackend('test-wrong', () => new MathBackendCPU(), -100);
    // A matMul kernel that returns zeros: the backend starts but computes wrongly.
    tf.registerKernel({
      kernelName: 'BatchMatMul',
      backendName: 'test-wrong',
      kernelFunc: ({ inputs, backend }) => {
        const a = inputs.a!;
        const b = inputs.b!;
        const shape = [...a.shape.slice(0, -1), b.shape.at(-1)!];
        const zeros = new Float32Array(shape.reduce((size, length) => size * length, 1));
        return (backend as MathBackendCPU).makeTensorInfo(shape, 'float32', zeros);
      },
    });
    registerBackendProvider({ name: 'test-wrong', priority: 100, async setup() {} });
    try {
      const selection = await setBackend('auto');
      expect(selection.attempts[0]).toMatchObject({ name: 'test-wrong', ok: false });
      expect(selection.attempts[0]!.reason).toMatch(/probe matMul gave 0 instead of/);
      expect(selection.backend).toBe('wasm');
    } finally {
      registerBackendProvider({
        name: 'test-wrong',
        priority: -100,
        async setup() {
          throw new Error('off');
        },
      });
      tf.unregisterKernel('BatchMatMul', 'test-wrong');
      tf.removeBackend('test-wrong');
    }
  });

  it('rejects malformed providers', () => {
    expect(() => registerBackendProvider({ name: 'auto', priority: 1, async setup() {} })).toThrowError(
      /non-empty name/,
    );
  });

  it('loads the wasm binaries from the installed package with no network (fresh process)', () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const tsxLoader = createRequire(import.meta.url).resolve('tsx');
    const script = [
      "globalThis.fetch = () => { throw new Error('network used'); };",
      `const { setBackend } = await import(${JSON.stringify(path.join(here, 'backend.ts'))});`,
      "const tf = await import('@tensorflow/tfjs-core');",
      "const selection = await setBackend('wasm');",
      'const sum = tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0];',
      'console.log(JSON.stringify({ backend: selection.backend, sum }));',
    ].join('\n');
    const output = execFileSync(
      process.execPath,
      ['--import', tsxLoader, '--input-type=module', '-e', script],
      {
        cwd: here,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(JSON.parse(output.trim().split('\n').at(-1)!)).toEqual({ backend: 'wasm', sum: 6 });
  });
});
