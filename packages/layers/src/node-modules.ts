/**
 * Lazy access to Node's file system, path and crypto modules, so this package still loads in
 * browsers (only {@link fileSystem} needs them).
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor';

export type NodeFs = typeof import('node:fs');
export type NodePath = typeof import('node:path');
export type NodeCrypto = typeof import('node:crypto');

/** The Node modules the file-system handler uses. */
export interface NodeModules {
  fs: NodeFs;
  path: NodePath;
  crypto: NodeCrypto;
}

function unwrap<T>(module: T & { default?: T }): T {
  return module.default ?? module;
}

/**
 * Imports `node:fs`, `node:path` and `node:crypto`.
 *
 * @throws FinepruneError `IO_FAILED` where they do not exist (a browser)
 */
export async function nodeModules(): Promise<NodeModules> {
  try {
    // Variable specifiers keep browser bundlers from trying to resolve Node built-ins.
    const [fsModule, pathModule, cryptoModule] = ['node:fs', 'node:path', 'node:crypto'];
    const [fs, path, crypto] = (await Promise.all([
      import(/* webpackIgnore: true */ /* @vite-ignore */ fsModule),
      import(/* webpackIgnore: true */ /* @vite-ignore */ pathModule),
      import(/* webpackIgnore: true */ /* @vite-ignore */ cryptoModule),
    ])) as [NodeFs, NodePath, NodeCrypto];
    return { fs: unwrap(fs), path: unwrap(path), crypto: unwrap(crypto) };
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: 'fileSystem() needs Node.js file access (node:fs), which this environment does not have.',
      fix: "In a browser save with 'indexeddb://name' or 'downloads://name', or tf.io.withSaveHandler().",
      cause: error,
    });
  }
}
