/**
 * Node's file system, path and crypto modules, loaded on first use through
 * `@fineprune/tensor/runtime`, so this package still loads in browsers (only {@link fileSystem}
 * needs them).
 */

import { importNodeBuiltin, type NodeBuiltins } from '@fineprune/tensor/runtime';

export type NodeFs = NodeBuiltins['fs'];
export type NodePath = NodeBuiltins['path'];
export type NodeCrypto = NodeBuiltins['crypto'];

/** The Node modules the file-system handler uses. */
export interface NodeModules {
  fs: NodeFs;
  path: NodePath;
  crypto: NodeCrypto;
}

/**
 * Imports `node:fs`, `node:path` and `node:crypto`.
 *
 * @throws FinepruneError `MISSING_DEPENDENCY` where they do not exist (a browser)
 */
export async function nodeModules(): Promise<NodeModules> {
  const feature = "fileSystem() (in a browser save with 'indexeddb://name' or 'downloads://name')";
  const [fs, path, crypto] = await Promise.all([
    importNodeBuiltin('fs', feature),
    importNodeBuiltin('path', feature),
    importNodeBuiltin('crypto', feature),
  ]);
  return { fs, path, crypto };
}
