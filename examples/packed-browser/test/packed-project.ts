/**
 * A project outside the monorepo that installs the packed packages as a user would: `pnpm pack`
 * every public package, then `npm install` the tarballs with TF.js from the registry (the versions
 * the lockfile pins) into a new folder under the system's temp directory.
 */
import { execFile } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';

/** Runs a program without blocking the test worker (a blocked worker misses Vitest's heartbeats). */
export const run = promisify(execFile);

const here = path.dirname(fileURLToPath(import.meta.url));
/** The monorepo's root. */
export const ROOT = path.resolve(here, '..', '..', '..');

/** The TF.js packages a fineprune user installs beside fineprune (peers of its packages). */
export const TFJS_PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-layers',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
];

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function readManifest(directory: string): Manifest {
  return JSON.parse(readFileSync(path.join(directory, 'package.json'), 'utf8')) as Manifest;
}

/** The public packages of the monorepo: name and folder. */
export function publicPackages(): Array<{ name: string; directory: string }> {
  const parent = path.join(ROOT, 'packages');
  return readdirSync(parent)
    .map((entry) => path.join(parent, entry))
    .filter((directory) => existsSync(path.join(directory, 'package.json')))
    .map((directory) => ({ directory, manifest: readManifest(directory) }))
    .filter(({ manifest }) => !manifest.private)
    .map(({ directory, manifest }) => ({ name: manifest.name, directory }));
}

/**
 * The environment of a user's shell: without the variables pnpm sets for the test's own script,
 * which would otherwise leak its configuration into npm.
 */
function userEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^(npm_|PNPM_|pnpm_)/i.test(key) && key !== 'NODE_OPTIONS' && key !== 'INIT_CWD',
    ),
  );
}

/** The files a manifest's `exports` name (every condition, every subpath). */
function exportedFiles(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports === null || typeof exports !== 'object') return [];
  return Object.values(exports).flatMap(exportedFiles);
}

/**
 * Packs every public package into `destination`; returns tarball paths by package name. A package
 * whose built files are missing is refused before packing: a tarball without its `dist` would fail
 * later as a confusing bundling or import error. (Under turbo, each example that packs lists every
 * public package in its devDependencies, so `^build` builds them all first.)
 */
export async function packAll(destination: string): Promise<Map<string, string>> {
  mkdirSync(destination, { recursive: true });
  const tarballs = new Map<string, string>();
  for (const { name, directory } of publicPackages()) {
    const manifest = JSON.parse(readFileSync(path.join(directory, 'package.json'), 'utf8')) as {
      exports?: unknown;
    };
    const missing = exportedFiles(manifest.exports).filter(
      (file) => !file.includes('/src/') && !existsSync(path.join(directory, file)),
    );
    if (missing.length > 0) {
      throw new Error(
        `${name} is not built (${missing.slice(0, 3).join(', ')} missing): run \`pnpm build\` first, and list ${name} in the devDependencies of the example whose test packs it.`,
      );
    }
    const before = new Set(readdirSync(destination));
    await run('pnpm', ['pack', '--pack-destination', destination], { cwd: directory });
    const created = readdirSync(destination).filter((file) => !before.has(file) && file.endsWith('.tgz'));
    if (created.length !== 1) throw new Error(`pnpm pack of ${name} made ${created.length} tarballs`);
    tarballs.set(name, path.join(destination, created[0]!));
  }
  return tarballs;
}

/** The version of an npm package installed in the monorepo (the one pnpm-lock.yaml pins). */
export function lockedVersion(name: string): string {
  const require = createRequire(import.meta.url);
  return readManifest(path.dirname(require.resolve(`${name}/package.json`))).version;
}

/** Writes a package.json with `dependencies` into `directory` and runs `npm install` there. */
export async function npmInstall(directory: string, dependencies: Record<string, string>): Promise<void> {
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    path.join(directory, 'package.json'),
    `${JSON.stringify({ name: 'fineprune-user', private: true, type: 'module', dependencies }, null, 2)}\n`,
  );
  const install = (cacheFirst: boolean) =>
    run('npm', ['install', '--no-audit', '--no-fund', cacheFirst ? '--prefer-offline' : '--prefer-online'], {
      cwd: directory,
      env: userEnvironment(),
      timeout: 480_000,
    });
  try {
    await install(true);
  } catch (error) {
    // Once more, from the registry. A registry request that failed (network, or TLS behind a proxy
    // whose CA npm was not given: SELF_SIGNED_CERT_IN_CHAIN in npm's debug log) surfaces as a bogus
    // ERESOLVE ("Found: @tensorflow/tfjs-core@undefined"). turbo.json passes NODE_EXTRA_CA_CERTS and
    // the proxy variables through to the tests for that reason: turbo's strict mode drops them.
    console.warn(
      `npm install failed once, trying again from the registry:\n${(error as { stderr?: string }).stderr}`,
    );
    await install(false);
  }
}

/** Every installed copy of each `@tensorflow/*` package under `directory`'s node_modules. */
export function tensorflowCopies(directory: string): Map<string, Array<{ version: string; where: string }>> {
  const copies = new Map<string, Array<{ version: string; where: string }>>();
  const visit = (modules: string) => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      const folders = entry.startsWith('@')
        ? readdirSync(path.join(modules, entry)).map((name) => path.join(modules, entry, name))
        : [path.join(modules, entry)];
      for (const folder of folders) {
        if (!existsSync(path.join(folder, 'package.json'))) continue;
        const manifest = readManifest(folder);
        if (manifest.name?.startsWith('@tensorflow/')) {
          const list = copies.get(manifest.name) ?? [];
          list.push({ version: manifest.version, where: path.relative(directory, folder) });
          copies.set(manifest.name, list);
        }
        visit(path.join(folder, 'node_modules'));
      }
    }
  };
  visit(path.join(directory, 'node_modules'));
  return copies;
}

/**
 * Stand-ins for a TF.js release that is not published (for example 4.23.0): each package's
 * package.json with the version replaced, its `@tensorflow/*` dependencies and peers moved to that
 * version, and an empty entry. Enough for npm to resolve a tree; nothing in them runs. Returns
 * tarball paths by name.
 */
export async function stubTfjsRelease(destination: string, version: string): Promise<Map<string, string>> {
  const require = createRequire(import.meta.url);
  const tarballs = new Map<string, string>();
  for (const name of TFJS_PACKAGES) {
    const real = readManifest(path.dirname(require.resolve(`${name}/package.json`)));
    const folder = path.join(destination, name.replace('/', '+'));
    mkdirSync(folder, { recursive: true });
    const moved = (entries: Record<string, string> | undefined) =>
      entries &&
      Object.fromEntries(
        Object.entries(entries)
          .filter(([dependency]) => dependency.startsWith('@tensorflow/'))
          .map(([dependency]) => [dependency, version]),
      );
    const manifest = {
      name,
      version,
      main: 'index.js',
      dependencies: moved(real.dependencies),
      peerDependencies: moved(real.peerDependencies),
    };
    writeFileSync(path.join(folder, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    writeFileSync(path.join(folder, 'index.js'), '');
    const { stdout } = await run('npm', ['pack', '--pack-destination', destination, '--loglevel=error'], {
      cwd: folder,
      env: userEnvironment(),
    });
    tarballs.set(name, path.join(destination, stdout.trim().split('\n').pop()!));
  }
  return tarballs;
}

/** Copies a package's `.wasm` binaries (tfjs-backend-wasm's) into `destination`. */
export function copyWasmBinaries(projectDirectory: string, destination: string): void {
  const dist = path.join(projectDirectory, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  for (const file of readdirSync(dist).filter((name) => name.endsWith('.wasm'))) {
    cpSync(path.join(dist, file), path.join(destination, file));
  }
}

/**
 * A browser page served from `www`: `project/src/page.ts` bundled with the imports resolved from the
 * packed install (esbuild, ES modules), `index.html` copied from `htmlDirectory`, and tfjs-backend-wasm's
 * binaries beside them.
 */
export async function buildPage(project: string, htmlDirectory: string, www: string): Promise<void> {
  await build({
    entryPoints: [path.join(project, 'src', 'page.ts')],
    outfile: path.join(www, 'page.js'),
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    logLevel: 'error',
  });
  copyFileSync(path.join(htmlDirectory, 'index.html'), path.join(www, 'index.html'));
  copyWasmBinaries(project, www);
}
