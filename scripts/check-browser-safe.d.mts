// Types of check-browser-safe.mjs, for the TypeScript tests that call it.

/** One JavaScript file that an export of a package gives a browser bundle. */
export interface BrowserEntry {
  /** The `exports` key (`.`, `./errors`, …). */
  subpath: string;
  /** The condition it was found under. */
  condition: 'import' | 'require';
  /** Absolute path of the file. */
  file: string;
}

/** One import of a Node built-in found in a browser entry's files. */
export interface NodeBuiltinImport {
  file: string;
  specifier: string;
  kind: string;
}

export const NODE_ONLY_ENTRIES: Record<string, { subpaths: '*' | string[]; reason: string }>;
export function isNodeBuiltin(specifier: string): boolean;
export function browserEntries(packageDirectory: string): BrowserEntry[];
export function nodeBuiltinImports(packageDirectory: string): Promise<NodeBuiltinImport[]>;
export function sideEffectsProblems(packageDirectory: string): string[];
