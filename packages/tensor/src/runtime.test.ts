import { afterEach, describe, expect, it, vi } from 'vitest';
import { FinepruneError } from './errors';
import { importNodeBuiltin, isNode, nodeBuiltinSync, sharedState } from './runtime';

/** A second, separately evaluated copy of a module, as when Node loads both builds of a package. */
async function freshCopy<T>(load: () => Promise<T>): Promise<T> {
  vi.resetModules();
  return load();
}

/** The error a call throws (synchronously or by rejecting), or undefined. */
async function caught(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  return undefined;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('isNode', () => {
  it('is true under Vitest in Node, false when process.versions.node is absent', () => {
    expect(isNode()).toBe(true);
    vi.stubGlobal('process', { versions: {} });
    const inBrowserLikeRealm = isNode();
    vi.unstubAllGlobals();
    expect(inBrowserLikeRealm).toBe(false);
  });
});

describe('importNodeBuiltin', () => {
  it("returns the built-in's namespace (the same functions as a static import)", async () => {
    const path = await importNodeBuiltin('path', 'a test');
    expect(path.join('a', 'b', '..', 'c')).toBe(`a${path.sep}c`);
    const { gunzipSync, gzipSync } = await importNodeBuiltin('zlib', 'a test');
    expect([...gunzipSync(gzipSync(Uint8Array.of(1, 2, 3)))]).toEqual([1, 2, 3]);
  });

  it('rejects outside Node with MISSING_DEPENDENCY naming the feature and the module', async () => {
    vi.stubGlobal('process', undefined);
    const pending = importNodeBuiltin('fs/promises', 'loadMnist()');
    vi.unstubAllGlobals();
    const error = await caught(() => pending);
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).code).toBe('MISSING_DEPENDENCY');
    expect((error as FinepruneError).message).toContain('loadMnist() needs Node.js');
    expect((error as FinepruneError).details).toEqual({ module: 'node:fs/promises' });
  });
});

describe('nodeBuiltinSync', () => {
  it('returns the built-in synchronously, the object process.getBuiltinModule gives', () => {
    const zlib = nodeBuiltinSync('zlib', 'a test');
    expect(zlib).toBe(process.getBuiltinModule('node:zlib'));
    expect([...zlib.gunzipSync(zlib.gzipSync(Uint8Array.of(4, 5, 6)))]).toEqual([4, 5, 6]);
    expect(nodeBuiltinSync('path', 'a test').posix.join('a', 'b', '..', 'c')).toBe('a/c');
  });

  it('falls back to require where process.getBuiltinModule is missing (Node 20 before 20.16, CommonJS)', () => {
    // Vitest gives this module a CommonJS-style require, as the package's CJS build has. (The ES-module
    // build on such a Node, which has neither, is tested with the packed tarballs in
    // examples/packed-browser: it throws MISSING_DEPENDENCY naming Node 20.16.)
    vi.stubGlobal('process', { versions: { node: '20.10.0' } });
    let joined: string | undefined;
    try {
      joined = nodeBuiltinSync('path', 'a test').posix.join('a', 'b', '..', 'c');
    } finally {
      vi.unstubAllGlobals();
    }
    expect(joined).toBe('a/c');
  });

  it('throws MISSING_DEPENDENCY outside Node', () => {
    vi.stubGlobal('process', undefined);
    let error: unknown;
    try {
      nodeBuiltinSync('zlib', 'parseIdx()');
    } catch (thrown) {
      error = thrown;
    } finally {
      vi.unstubAllGlobals();
    }
    expect((error as FinepruneError).code).toBe('MISSING_DEPENDENCY');
    expect((error as FinepruneError).message).toContain(
      'parseIdx() needs Node.js (its built-in module node:zlib)',
    );
  });
});

describe('sharedState', () => {
  it('creates the value once and hands the same object to a second copy of the module', async () => {
    let created = 0;
    const first = sharedState('test.runtime.counter.v1', () => {
      created += 1;
      return { hits: 0 };
    });
    first.hits += 1;
    const copy = await freshCopy(() => import('./runtime'));
    expect(copy.sharedState).not.toBe(sharedState);
    const second = copy.sharedState('test.runtime.counter.v1', () => {
      created += 1;
      return { hits: 100 };
    });
    expect(second).toBe(first);
    expect(second.hits).toBe(1);
    expect(created).toBe(1);
    expect((globalThis as Record<symbol, unknown>)[Symbol.for('fineprune.test.runtime.counter.v1')]).toBe(
      first,
    );
  });

  it('keeps different keys apart', () => {
    expect(sharedState('test.runtime.a.v1', () => ['a'])).not.toBe(
      sharedState('test.runtime.b.v1', () => ['a']),
    );
  });
});

describe('one runtime state for two copies of @fineprune/tensor', () => {
  it('a provider registered through one copy is selectable through the other', async () => {
    const first = await import('./backend');
    first.registerBackendProvider({
      name: 'runtime-test-provider',
      priority: -100,
      async setup() {
        throw new Error('not a real backend');
      },
    });
    const second = await freshCopy(() => import('./backend'));
    expect(second.setBackend).not.toBe(first.setBackend);
    expect(second.backendProviders().map((provider) => provider.name)).toContain('runtime-test-provider');
    // The second copy knows the name (not UNKNOWN_BACKEND) and reports the provider's own failure.
    const error = await caught(() => second.setBackend('runtime-test-provider'));
    expect((error as FinepruneError).code).toBe('BACKEND_UNAVAILABLE');
    expect((error as FinepruneError).message).toContain('not a real backend');
  });

  it('instanceof FinepruneError holds for an error made by the other copy; subclasses keep their meaning', async () => {
    const copy = await freshCopy(() => import('./errors'));
    expect(copy.FinepruneError).not.toBe(FinepruneError);
    const foreign = new copy.FinepruneError({ code: 'INVALID_ARGUMENT', message: 'm.', fix: 'f.' });
    expect(foreign).toBeInstanceOf(FinepruneError);
    expect(
      new FinepruneError({ code: 'IO_FAILED', message: 'm.', fix: 'f.' }) instanceof copy.FinepruneError,
    ).toBe(true);
    expect(new Error('plain') instanceof FinepruneError).toBe(false);
    expect({ code: 'IO_FAILED' } instanceof FinepruneError).toBe(false);
    const nothing: unknown = null;
    expect(nothing instanceof FinepruneError).toBe(false);

    class ReadError extends FinepruneError {}
    const own = new ReadError({ code: 'IO_FAILED', message: 'm.', fix: 'f.' });
    expect(own instanceof ReadError).toBe(true);
    expect(own instanceof FinepruneError).toBe(true);
    expect(foreign instanceof ReadError).toBe(false);
  });
});
