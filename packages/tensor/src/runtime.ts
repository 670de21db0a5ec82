/**
 * Where the code runs, and the few things that depend on it: Node's built-in modules for the
 * Node-only paths (reading installed packages, the wasm binaries' folder), and module state that
 * every copy of a fineprune package shares (the ES-module and the CommonJS build loaded in one
 * process). Importing this module has no side effect and imports no Node built-in, so the packages
 * that use it still bundle for the browser.
 */

import { ErrorCodes, FinepruneError } from './errors';

/**
 * The Node built-in modules fineprune's Node-only paths use, by name.
 *
 * @example
 * ```ts
 * function joinAll(path: NodeBuiltins['path'], parts: string[]): string {
 *   return path.join(...parts);
 * }
 * ```
 */
export interface NodeBuiltins {
  crypto: typeof import('node:crypto');
  fs: typeof import('node:fs');
  'fs/promises': typeof import('node:fs/promises');
  module: typeof import('node:module');
  os: typeof import('node:os');
  path: typeof import('node:path');
  url: typeof import('node:url');
  vm: typeof import('node:vm');
  worker_threads: typeof import('node:worker_threads');
  zlib: typeof import('node:zlib');
}

/**
 * The name of one of the {@link NodeBuiltins}, without the `node:` prefix.
 *
 * @example
 * ```ts
 * const name: NodeBuiltinName = 'fs/promises';
 * ```
 */
export type NodeBuiltinName = keyof NodeBuiltins;

interface NodeProcess {
  versions?: { node?: string };
  getBuiltinModule?: (name: string) => unknown;
}

function nodeProcess(): NodeProcess | undefined {
  return (globalThis as { process?: NodeProcess }).process;
}

/**
 * Whether this is Node.js (also under Vitest or another test runner in Node), as opposed to a
 * browser or a worker.
 *
 * @returns true in Node
 *
 * @example
 * ```ts
 * if (isNode()) console.log('files can be read from disk');
 * ```
 */
export function isNode(): boolean {
  return typeof nodeProcess()?.versions?.node === 'string';
}

function notInNode(name: string, feature: string, cause?: unknown): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.MISSING_DEPENDENCY,
    message: `${feature} needs Node.js (its built-in module node:${name}), which this environment does not provide.`,
    fix: 'Run this part in Node.js 20 or later; in a browser, pass the data in memory instead of a path.',
    ...(cause === undefined ? {} : { cause }),
    details: { module: `node:${name}` },
  });
}

/**
 * Loads one of Node's built-in modules, for code that runs only in Node. The specifier is not
 * written literally, so browser bundlers leave the import alone; outside Node the promise rejects
 * with a `MISSING_DEPENDENCY` {@link FinepruneError} naming `feature`.
 *
 * @param name - the built-in, without the `node:` prefix
 * @param feature - what needs it, for the error message (for example `'loadMnist()'`)
 * @returns the module's namespace
 * @throws FinepruneError `MISSING_DEPENDENCY` outside Node
 *
 * @example
 * ```ts
 * const { readFile } = await importNodeBuiltin('fs/promises', 'loadMnist()');
 * ```
 */
export async function importNodeBuiltin<Name extends NodeBuiltinName>(
  name: Name,
  feature: string,
): Promise<NodeBuiltins[Name]> {
  if (!isNode()) throw notInNode(name, feature);
  const specifier = `node:${name}`;
  try {
    const namespace = (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as {
      default?: NodeBuiltins[Name];
    };
    return (namespace.default ?? namespace) as NodeBuiltins[Name];
  } catch (error) {
    throw notInNode(name, feature, error);
  }
}

/**
 * The synchronous form of {@link importNodeBuiltin}, for Node-only code behind a synchronous API.
 * It uses `process.getBuiltinModule` (Node 20.16 and later, 22.3 and later) or, in the CommonJS
 * build, `require`. On an older Node 20 in an ES module neither exists: it then throws, and the
 * message says to upgrade Node (the asynchronous form works on every Node 20).
 *
 * @param name - the built-in, without the `node:` prefix
 * @param feature - what needs it, for the error message
 * @returns the module
 * @throws FinepruneError `MISSING_DEPENDENCY` outside Node, or on Node 20 before 20.16 in an ES module
 *
 * @example
 * ```ts
 * const { gunzipSync } = nodeBuiltinSync('zlib', 'parseIdx() of a gzipped file');
 * ```
 */
export function nodeBuiltinSync<Name extends NodeBuiltinName>(
  name: Name,
  feature: string,
): NodeBuiltins[Name] {
  const process = nodeProcess();
  if (!isNode()) throw notInNode(name, feature);
  const specifier = `node:${name}`;
  const builtin = process?.getBuiltinModule?.(specifier);
  if (builtin !== undefined) return builtin as NodeBuiltins[Name];
  // In the CommonJS build `require` is the module's own; an ES module has none.
  if (typeof require === 'function') {
    try {
      return require(specifier) as NodeBuiltins[Name];
    } catch {
      // A bundler's stand-in for require that cannot load anything: fall through to the error.
    }
  }
  throw new FinepruneError({
    code: ErrorCodes.MISSING_DEPENDENCY,
    message: `${feature} reads node:${name} synchronously, which this Node.js (${process?.versions?.node}) allows only from CommonJS.`,
    fix: 'Use Node.js 20.16 or later (process.getBuiltinModule), or require() the package instead of importing it.',
    details: { module: specifier },
  });
}

/**
 * Module state shared by every copy of fineprune in one JavaScript realm: the ES-module and the
 * CommonJS build of a package (Node loads both when one part of an application imports and another
 * requires), or two bundled copies. The first caller creates the value; later callers, from any
 * copy, get the same object. Keys are global (`Symbol.for('fineprune.' + key)`), so a key names its
 * shape: change the key when the shape changes.
 *
 * @param key - a name unique across fineprune, with a version (`'tensor.backends.v1'`)
 * @param create - makes the initial value
 * @returns the shared value
 *
 * @example
 * ```ts
 * const providers = sharedState('tensor.backendProviders.v1', () => new Map<string, BackendProvider>());
 * ```
 */
export function sharedState<T>(key: string, create: () => T): T {
  const symbol = Symbol.for(`fineprune.${key}`);
  const store = globalThis as unknown as Record<symbol, T | undefined>;
  let value = store[symbol];
  if (value === undefined) {
    value = create();
    Object.defineProperty(globalThis, symbol, {
      value,
      configurable: false,
      enumerable: false,
      writable: false,
    });
  }
  return value;
}
