/**
 * Finds the files of installed npm packages (Node only: the built-ins come from
 * `nodeBuiltinSync`, so the package still bundles for the browser). The CommonJS build gets
 * `import.meta.url` from tsup's shim.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type NodeBuiltins, nodeBuiltinSync } from '@fineprune/tensor/runtime';

/**
 * The root directory of an installed package, found through its `package.json`.
 *
 * @throws FinepruneError `IO_FAILED` when the package is not installed.
 */
export function packageDirectory(name: string): string {
  const { createRequire } = nodeBuiltinSync('module', `Reading the data of ${name}`);
  const { dirname } = nodeBuiltinSync('path', `Reading the data of ${name}`);
  try {
    const require = createRequire(import.meta.url);
    return dirname(require.resolve(`${name}/package.json`));
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `The package ${name} could not be found, so its data cannot be read.`,
      fix: `Install it next to @fineprune/text (npm install ${name}).`,
      cause: error,
    });
  }
}

/**
 * Runs `read` on a path inside an installed package; a failure becomes `IO_FAILED` naming the
 * package, the path and the fix.
 */
function readInPackage<T>(
  name: string,
  relativePath: string,
  what: 'file' | 'folder',
  read: (fs: NodeBuiltins['fs'], path: string) => T,
): T {
  const { join } = nodeBuiltinSync('path', `Reading the data of ${name}`);
  const fs = nodeBuiltinSync('fs', `Reading the data of ${name}`);
  const path = join(packageDirectory(name), relativePath);
  try {
    return read(fs, path);
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `The ${what} ${relativePath} of the package ${name} could not be read (${path}).`,
      fix: `Reinstall ${name}; its data files may be missing or damaged.`,
      cause: error,
      details: { path },
    });
  }
}

/**
 * Reads a UTF-8 (or, with `encoding`, Latin-1) file inside an installed package.
 *
 * @throws FinepruneError `IO_FAILED` when the file cannot be read.
 */
export function readPackageFile(
  name: string,
  relativePath: string,
  encoding: 'utf8' | 'latin1' = 'utf8',
): string {
  return readInPackage(name, relativePath, 'file', (fs, path) => fs.readFileSync(path, encoding));
}

/**
 * The names of the entries of a folder inside an installed package.
 *
 * @throws FinepruneError `IO_FAILED` when the folder cannot be read.
 */
export function listPackageDirectory(name: string, relativePath: string): string[] {
  return readInPackage(name, relativePath, 'folder', (fs, path) => fs.readdirSync(path));
}

/**
 * Parses JSON read from a package, turning a syntax error into `INVALID_DATA`.
 *
 * @throws FinepruneError `INVALID_DATA` for malformed JSON.
 */
export function parsePackageJson(name: string, relativePath: string): unknown {
  const text = readPackageFile(name, relativePath);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_DATA,
      message: `The file ${relativePath} of the package ${name} is not valid JSON.`,
      fix: `Reinstall ${name}; the file is damaged.`,
      cause: error,
    });
  }
}
