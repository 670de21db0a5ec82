import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import workerThreads from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { releaseWasmBackend, setBackend } from './backend';
import { FinepruneError } from './errors';
import { wasmHeapOf } from './wasm-heap';
import {
  coreCount,
  MAX_WASM_THREADS,
  parseWasmThreads,
  resolveWasmThreads,
  WASM_THREADS_VARIABLE,
  wasmThreadsInUse,
} from './wasm-threads';

function caught(run: () => unknown): FinepruneError {
  try {
    run();
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    return error as FinepruneError;
  }
  throw new Error('expected a FinepruneError');
}

describe('the wasm thread count', () => {
  const saved = process.env[WASM_THREADS_VARIABLE];
  afterEach(() => {
    if (saved === undefined) delete process.env[WASM_THREADS_VARIABLE];
    else process.env[WASM_THREADS_VARIABLE] = saved;
  });

  it('parses whole numbers from 1 to 8 and auto, from options and from text', () => {
    expect(parseWasmThreads(1, 'x')).toBe(1);
    expect(parseWasmThreads(8, 'x')).toBe(8);
    expect(parseWasmThreads(' 3 ', 'x')).toBe(3);
    expect(parseWasmThreads('AUTO', 'x')).toBe('auto');
    for (const bad of [0, 9, 1.5, -1, '2x', '', 'two', Number.NaN, null]) {
      const error = caught(() => parseWasmThreads(bad, WASM_THREADS_VARIABLE));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(WASM_THREADS_VARIABLE);
      expect(error.fix).toContain("'auto'");
    }
  });

  it('takes the option, else the environment variable, else 1; auto is the cores, at most 8', async () => {
    const cores = os.availableParallelism();
    expect(await coreCount()).toBe(cores);
    delete process.env[WASM_THREADS_VARIABLE];
    expect(await resolveWasmThreads()).toBe(1);
    process.env[WASM_THREADS_VARIABLE] = '2';
    expect(await resolveWasmThreads()).toBe(2);
    expect(await resolveWasmThreads(1)).toBe(1);
    process.env[WASM_THREADS_VARIABLE] = 'auto';
    expect(await resolveWasmThreads()).toBe(Math.min(cores, MAX_WASM_THREADS));
    process.env[WASM_THREADS_VARIABLE] = '0';
    await expect(resolveWasmThreads()).rejects.toThrow(/FINEPRUNE_WASM_THREADS must be a whole number/);
  });
});

describe('the multi-threaded wasm backend in Node', () => {
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  const Worker = workerThreads.Worker;
  beforeAll(() => releaseWasmBackend());
  afterAll(() => releaseWasmBackend());

  it('starts on 2 threads over a shared memory, computes, and restores the globals it replaced', async () => {
    const selection = await setBackend('wasm', { wasmThreads: 2 });
    expect(selection.attempts[0]).toMatchObject({ name: 'wasm', ok: true, threads: 2 });
    expect(selection.explanation).toBe("'wasm' was requested and started on 2 threads.");
    expect(wasmThreadsInUse()).toBe(2);
    const memory = wasmHeapOf()!.memory;
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(URL.createObjectURL).toBe(createObjectURL);
    expect(os.cpus).toBe(cpus);
    expect(workerThreads.Worker).toBe(Worker);
    // 64×64 products of small integers are exact in float32, whichever thread sums which rows.
    const before = tf.memory().numTensors;
    const a = tf.tensor2d(
      Array.from({ length: 64 * 64 }, (_, index) => (index % 7) - 3),
      [64, 64],
    );
    const [product, again] = [tf.matMul(a, a), tf.matMul(a, a)];
    const [got, want] = [await product.data(), await again.data()];
    const row0 = Array.from({ length: 64 }, (_, column) => {
      let sum = 0;
      for (let k = 0; k < 64; k += 1) sum += (((0 * 64 + k) % 7) - 3) * (((k * 64 + column) % 7) - 3);
      return sum;
    });
    expect(Array.from(got.subarray(0, 64))).toEqual(row0);
    expect(got).toEqual(want);
    tf.dispose([a, product, again]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('keeps its thread count until released, and starts again with another count after', async () => {
    await setBackend('wasm', { wasmThreads: 2 });
    await expect(setBackend('wasm', { wasmThreads: 1 })).rejects.toThrow(/already runs on 2 threads/);
    // Without an explicit count, the running backend is used as it is.
    expect((await setBackend('wasm')).backend).toBe('wasm');
    releaseWasmBackend();
    expect(wasmThreadsInUse()).toBe(0);
    const single = await setBackend('wasm', { wasmThreads: 1 });
    expect(single.attempts[0]!.threads).toBe(1);
    expect(wasmHeapOf()!.memory.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });
});

describe('a threaded start that fails', () => {
  afterAll(() => releaseWasmBackend());

  it('falls back to one thread, logs a warning and gives the reason in the explanation', async () => {
    // Loads and registers the wasm backend (when no earlier test did), then leaves it unstarted.
    releaseWasmBackend();
    await setBackend('wasm', { wasmThreads: 1 });
    releaseWasmBackend();
    const factory = tf.findBackendFactory('wasm')!;
    // The real backend, except that its multi-threaded start fails (as a worker refusing to start would).
    tf.removeBackend('wasm');
    tf.registerBackend(
      'wasm',
      async () => {
        if (await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT')) throw new Error('workers refused');
        return factory();
      },
      2,
    );
    const warnings: string[] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => warnings.push(args.join(' '));
    try {
      const selection = await setBackend('wasm', { wasmThreads: 2 });
      expect(selection.attempts[0]).toMatchObject({ name: 'wasm', ok: true, threads: 1 });
      expect(selection.explanation).toContain(
        'started on 1 thread (the multi-threaded wasm backend (2 threads) could not start: Error: workers refused).',
      );
      expect(
        warnings.filter((text) => text.includes('workers refused; using one thread instead')),
      ).toHaveLength(1);
      expect(Array.from(await tf.add(tf.scalar(1), tf.scalar(2)).data())).toEqual([3]);
    } finally {
      console.warn = warn;
      releaseWasmBackend();
      tf.removeBackend('wasm');
      tf.registerBackend('wasm', factory, 2);
    }
  });
});

/** Runs `script` (an ES module, TypeScript allowed) in a fresh Node process. */
function runNode(script: string, environment: Record<string, string>, timeout: number) {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const tsxLoader = createRequire(import.meta.url).resolve('tsx');
  const started = performance.now();
  return new Promise<{ code: number | null; stdout: string; stderr: string; milliseconds: number }>(
    (resolve) => {
      execFile(
        process.execPath,
        ['--conditions=source', '--import', tsxLoader, '--input-type=module', '-e', script],
        { cwd: here, encoding: 'utf8', timeout, env: { ...process.env, ...environment } },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
          resolve({ code, stdout, stderr, milliseconds: performance.now() - started });
        },
      );
    },
  );
}

describe('a Node process on the threaded wasm backend', () => {
  const backendModule = JSON.stringify(path.join(path.dirname(fileURLToPath(import.meta.url)), 'index.ts'));
  const script = [
    `const { setBackend, wasmThreadsInUse } = await import(${backendModule});`,
    "const tf = await import('@tensorflow/tfjs-core');",
    "const selection = await setBackend('wasm');",
    'const a = tf.tensor2d([1, 2, 3, 4], [2, 2]);',
    'const product = Array.from(await tf.matMul(a, a).data());',
    'console.log(JSON.stringify({ threads: wasmThreadsInUse(), product, explanation: selection.explanation }));',
  ].join('\n');
  // Bound on start, one product and exit on a loaded two-core machine; a process kept alive by its
  // worker threads would hit it (the test then fails with code null).
  const bound = 60_000;

  it(`takes ${WASM_THREADS_VARIABLE}=2, exits on its own with code 0 and leaves no temporary file`, async () => {
    const temporary = await mkdtemp(path.join(os.tmpdir(), 'fineprune-test-'));
    const result = await runNode(script, { [WASM_THREADS_VARIABLE]: '2', TMPDIR: temporary }, bound);
    const left = (await readdir(temporary)).filter((name) => name.startsWith('fineprune'));
    await rm(temporary, { recursive: true });
    expect(left).toEqual([]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    // [[1, 2], [3, 4]]² = [[7, 10], [15, 22]]
    expect(last).toMatchObject({ threads: 2, product: [7, 10, 15, 22] });
  });

  it('falls back to one thread with a warning when the worker script cannot be written', async () => {
    // A temporary directory that is a regular file (tsx's own cache is turned off, it would need one).
    const notADirectory = path.join(await mkdtemp(path.join(os.tmpdir(), 'fineprune-test-')), 'file');
    await writeFile(notADirectory, '');
    const result = await runNode(
      script,
      { [WASM_THREADS_VARIABLE]: '2', TMPDIR: notADirectory, TSX_DISABLE_CACHE: '1' },
      bound,
    );
    await rm(path.dirname(notADirectory), { recursive: true });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /multi-threaded wasm backend \(2 threads\) could not start: .*ENOTDIR.*using one thread/,
    );
    const last = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ threads: 1, product: [7, 10, 15, 22] });
    expect(last.explanation).toMatch(/started on 1 thread \(the multi-threaded wasm backend/);
  });

  it(`rejects a malformed ${WASM_THREADS_VARIABLE} with INVALID_ARGUMENT`, async () => {
    const result = await runNode(script, { [WASM_THREADS_VARIABLE]: 'many' }, bound);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/FINEPRUNE_WASM_THREADS must be a whole number of wasm threads/);
  });
});
