// Checks that every public package's built files can be bundled for a browser: no file that a
// browser-facing export reaches imports a Node built-in (statically, through require(), or through
// a dynamic import with a literal name that a bundler would try to resolve). Node-only code reaches
// the built-ins through @fineprune/tensor/runtime, whose imports a bundler does not follow, or lives
// in one of the Node-only entries listed below. It also checks that no package declares
// `"sideEffects": true` (each lists its files with side effects, or says false).
//
//   node scripts/check-browser-safe.mjs            (run by `pnpm build` after the packages are built)
//   node scripts/check-browser-safe.mjs DIR...     (the given package folders, e.g. installed tarballs)
//
// Exits with status 1 and lists every offending file and import when one is found.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * Entries meant only for Node, by package, with the reason. `'*'` marks a whole package.
 * A new Node-only entry is added here on purpose, never by accident.
 */
export const NODE_ONLY_ENTRIES = {
  '@fineprune/cli': {
    subpaths: '*',
    reason: 'the fineprune command, a Node program (files, signals, processes)',
  },
  '@fineprune/safetensors': {
    subpaths: ['./node'],
    reason: 'reading and atomically writing .safetensors files',
  },
  '@fineprune/transformers': { subpaths: ['./node'], reason: 'Hugging Face checkpoint folders on disk' },
};

const BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** Whether `specifier` names a Node built-in (`fs`, `node:fs/promises`, `node:test`, …). */
export function isNodeBuiltin(specifier) {
  return BUILTINS.has(specifier) || specifier.startsWith('node:');
}

function readManifest(packageDirectory) {
  return JSON.parse(readFileSync(path.join(packageDirectory, 'package.json'), 'utf8'));
}

/** The files an export target names for one condition (`import` or `require`), if any. */
function targetFile(target, condition) {
  if (typeof target === 'string') return target;
  if (target === null || typeof target !== 'object') return undefined;
  const branch = target[condition] ?? target.default;
  if (typeof branch === 'string') return branch;
  return branch && typeof branch === 'object' ? (branch.default ?? undefined) : undefined;
}

/**
 * The JavaScript files of a package's exports that a browser bundle may load: every subpath except
 * `./package.json`, JSON files and the {@link NODE_ONLY_ENTRIES}, for both `import` and `require`.
 */
export function browserEntries(packageDirectory) {
  const manifest = readManifest(packageDirectory);
  const nodeOnly = NODE_ONLY_ENTRIES[manifest.name];
  if (nodeOnly?.subpaths === '*') return [];
  const exportsField = manifest.exports ?? { '.': manifest.module ?? manifest.main };
  const entries = [];
  for (const [subpath, target] of Object.entries(exportsField)) {
    if (subpath === './package.json' || subpath.endsWith('.json')) continue;
    if (nodeOnly?.subpaths.includes(subpath)) continue;
    for (const condition of ['import', 'require']) {
      const file = targetFile(target, condition);
      if (file && /\.(c|m)?js$/.test(file)) {
        entries.push({ subpath, condition, file: path.join(packageDirectory, file) });
      }
    }
  }
  return entries;
}

/**
 * Every import of a Node built-in in the files the browser entries of one package reach (its own
 * files only: other packages are checked on their own).
 */
export async function nodeBuiltinImports(packageDirectory) {
  const entries = browserEntries(packageDirectory);
  const missing = entries.filter((entry) => !existsSync(entry.file));
  if (missing.length > 0) {
    return missing.map((entry) => ({
      file: entry.file,
      specifier: '(file missing)',
      kind: `export ${entry.subpath} (${entry.condition})`,
    }));
  }
  if (entries.length === 0) return [];
  const result = await build({
    entryPoints: [...new Set(entries.map((entry) => entry.file))].map((file, index) => ({
      in: file,
      out: `entry-${index}`,
    })),
    bundle: true,
    write: false,
    metafile: true,
    outdir: path.join(packageDirectory, '.check-browser-safe'),
    platform: 'neutral',
    format: 'esm',
    logLevel: 'silent',
    // Follow the package's own relative imports (chunks); leave every package name alone.
    plugins: [
      {
        name: 'only-own-files',
        setup(context) {
          context.onResolve({ filter: /^[^./]/ }, (args) => ({ path: args.path, external: true }));
        },
      },
    ],
  });
  const found = [];
  for (const [file, input] of Object.entries(result.metafile.inputs)) {
    for (const imported of input.imports) {
      const specifier = imported.original ?? imported.path;
      if (isNodeBuiltin(specifier)) {
        found.push({ file: path.resolve(file), specifier, kind: imported.kind });
      }
    }
  }
  return found;
}

/** Problems with a package's `sideEffects` field: it must be `false` or a list of existing files. */
export function sideEffectsProblems(packageDirectory) {
  const manifest = readManifest(packageDirectory);
  const field = manifest.sideEffects;
  if (field === false) return [];
  if (!Array.isArray(field)) {
    return [`"sideEffects" is ${JSON.stringify(field)}; list the files with side effects, or say false`];
  }
  return field
    .filter((file) => !file.includes('*') && !existsSync(path.join(packageDirectory, file)))
    .filter((file) => !file.startsWith('./src/') || existsSync(path.join(packageDirectory, 'src')))
    .map((file) => `"sideEffects" names ${file}, which does not exist`);
}

function publicPackageDirectories(root) {
  const parent = path.join(root, 'packages');
  return readdirSync(parent)
    .map((name) => path.join(parent, name))
    .filter((directory) => existsSync(path.join(directory, 'package.json')))
    .filter((directory) => !readManifest(directory).private);
}

async function main() {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const arguments_ = process.argv.slice(2);
  const directories =
    arguments_.length > 0 ? arguments_.map((d) => path.resolve(d)) : publicPackageDirectories(root);
  let problems = 0;
  for (const directory of directories) {
    const name = readManifest(directory).name;
    const imports = await nodeBuiltinImports(directory);
    for (const entry of imports) {
      console.error(
        `${name}: ${path.relative(directory, entry.file)} imports ${entry.specifier} (${entry.kind})`,
      );
    }
    const sideEffects = sideEffectsProblems(directory);
    for (const problem of sideEffects) console.error(`${name}: ${problem}`);
    problems += imports.length + sideEffects.length;
  }
  if (problems > 0) {
    console.error(
      `\n${problems} problem(s). Reach Node built-ins through importNodeBuiltin()/nodeBuiltinSync() of ` +
        '@fineprune/tensor/runtime, or move the code to a Node-only entry listed in scripts/check-browser-safe.mjs.',
    );
    process.exitCode = 1;
  } else {
    console.log(`browser-safe: ${directories.length} packages, no Node built-in import in a browser entry`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
