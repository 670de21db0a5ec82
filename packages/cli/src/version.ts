import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = '@fineprune/cli';

/**
 * The version in the `package.json` of `@fineprune/cli` found from `directory` upwards (the first
 * `package.json` named `@fineprune/cli`), read at run time, so the sources, the built `dist/` and an
 * installed package all report their own version.
 *
 * @returns the version, or `undefined` when no such package.json is found
 *
 * @example
 * ```ts
 * packageVersionFrom('/usr/lib/node_modules/@fineprune/cli/dist'); // '0.1.0'
 * ```
 */
export function packageVersionFrom(directory: string): string | undefined {
  for (let current = path.resolve(directory); ; current = path.dirname(current)) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(current, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (manifest.name === PACKAGE_NAME && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // no (readable) package.json here: look further up
    }
    if (path.dirname(current) === current) return undefined;
  }
}

/**
 * The version of this `@fineprune/cli` (what `fineprune --version` prints): read from its
 * `package.json` next to the running module, in ESM and CommonJS builds alike.
 *
 * @example
 * ```ts
 * console.log(`fineprune ${cliVersion()}`);
 * ```
 */
export function cliVersion(): string {
  const file = typeof __filename === 'string' ? __filename : fileURLToPath(import.meta.url);
  return packageVersionFrom(path.dirname(file)) ?? 'unknown';
}
