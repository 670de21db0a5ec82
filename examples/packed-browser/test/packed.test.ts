import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, context } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserEntries, nodeBuiltinImports } from '../../../scripts/check-browser-safe.mjs';
import type { MixedFormatsResult } from '../src/mixed-formats';
import type { PageReport } from '../src/page';
import type { PruningReport } from '../src/pruning';
import {
  CHROMIUM_FLAGS,
  CHROMIUM_WEBGPU_FLAGS,
  expectWebGPURan,
  pageResult,
  withChromiumPage,
} from './chromium';
import { expectCorrectPruning } from './expectations';
import {
  buildPage,
  lockedVersion,
  npmInstall,
  packAll,
  publicPackages,
  run,
  stubTfjsRelease,
  TFJS_PACKAGES,
  tensorflowCopies,
} from './packed-project';

const source = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');
/** The one-shot run's weights and masks, the part that must agree across backends and formats. */
function weightsAndMasks(report: PruningReport): Array<{ weights: number[]; mask: number[] }> {
  return report.oneShot.kernels.map(({ weights, mask }) => ({ weights, mask }));
}

let work: string;
let project: string;
let tarballs: Map<string, string>;

/** Bundles a file of src/ (copied into the project) with the installed packages left as imports. */
async function bundleForNode(file: string, format: 'esm' | 'cjs', outfile: string): Promise<string> {
  await build({
    entryPoints: [path.join(project, 'src', file)],
    outfile: path.join(project, outfile),
    bundle: true,
    packages: 'external',
    platform: 'node',
    format,
    target: 'node20',
    logLevel: 'error',
  });
  return path.join(project, outfile);
}

/** Runs a program of the project in Node; returns its last line of output, parsed, and its stderr. */
async function runNode<T>(file: string, ...args: string[]): Promise<{ result: T; stderr: string }> {
  const { stdout, stderr } = await run(process.execPath, [file, ...args], { cwd: project, timeout: 300_000 });
  return { result: JSON.parse(stdout.trim().split('\n').pop()!) as T, stderr };
}

async function runPage(url: string, flags: readonly string[]): Promise<PageReport> {
  return withChromiumPage(url, flags, (page) =>
    pageResult<PageReport>(page, 'packedReport', 'packedError', 240_000),
  );
}

describe('the packed packages, installed from their tarballs outside the monorepo', () => {
  beforeAll(async () => {
    work = mkdtempSync(path.join(os.tmpdir(), 'fineprune-packed-'));
    tarballs = await packAll(path.join(work, 'tarballs'));
    project = path.join(work, 'project');
    await npmInstall(project, {
      ...Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`])),
      ...Object.fromEntries(TFJS_PACKAGES.map((name) => [name, lockedVersion(name)])),
    });
    mkdirSync(path.join(project, 'src'));
    for (const file of ['pruning.ts', 'page.ts', 'node-consumer.ts', 'mixed-formats.ts']) {
      copyFileSync(path.join(source, file), path.join(project, 'src', file));
    }
  }, 600_000);

  afterAll(async () => {
    // Asynchronously: tens of thousands of installed files; a synchronous delete would block the
    // test worker long enough to miss Vitest's heartbeat.
    if (work) await rm(work, { recursive: true, force: true });
  }, 300_000);

  it('packs every public package and installs one copy of each TF.js package', () => {
    expect([...tarballs.keys()].sort()).toEqual(
      publicPackages()
        .map(({ name }) => name)
        .sort(),
    );
    const copies = tensorflowCopies(project);
    for (const name of TFJS_PACKAGES) {
      expect(copies.get(name), name).toEqual([
        { version: lockedVersion(name), where: `node_modules/${name}` },
      ]);
    }
  });

  it('bundles every browser entry of every installed package for the browser', async () => {
    const installed = publicPackages().map(({ name }) => path.join(project, 'node_modules', name));
    for (const directory of installed) expect(await nodeBuiltinImports(directory), directory).toEqual([]);
    const entries = installed.flatMap((directory) =>
      browserEntries(directory)
        .filter((entry) => entry.condition === 'import')
        .map(
          (entry) => path.relative(path.join(project, 'node_modules'), directory) + entry.subpath.slice(1),
        ),
    );
    expect(entries).toContain('@fineprune/tensor/errors');
    for (const specifier of entries) {
      // No `source` condition, no externals: exactly what a user's browser build resolves.
      const result = await build({
        stdin: { contents: `export * from '${specifier}';`, resolveDir: project },
        bundle: true,
        write: false,
        platform: 'browser',
        format: 'esm',
        logLevel: 'silent',
      });
      expect(result.errors, specifier).toEqual([]);
    }
  }, 300_000);

  it('prunes in headless Chromium: one-shot and gradual, on wasm, and on WebGPU where offered', async () => {
    const www = path.join(project, 'www');
    mkdirSync(www);
    await buildPage(project, source, www);
    const server = await context({ logLevel: 'silent' });
    try {
      const { port } = await server.serve({ servedir: www, host: '127.0.0.1', port: 0 });
      const url = `http://127.0.0.1:${port}/index.html`;
      const withWebGPU = await runPage(url, CHROMIUM_WEBGPU_FLAGS);
      const plain = await runPage(url, CHROMIUM_FLAGS);
      const runs = [...withWebGPU.runs, ...plain.runs];
      for (const run of runs) expectCorrectPruning(run);
      expect(plain.runs.map((run) => run.backend)).toContain('wasm');
      expectWebGPURan(withWebGPU.webgpu);
      expect(withWebGPU.runs.map((run) => run.backend)).toEqual(
        withWebGPU.webgpu.ran ? ['webgpu', 'wasm'] : ['wasm'],
      );
      // The same weights, hence the same one-shot masks, on every backend (layer names differ: each
      // run builds new layers).
      for (const run of runs) expect(weightsAndMasks(run)).toEqual(weightsAndMasks(runs[0]!));
      console.log(
        `packed page: ${runs.map((run) => run.backend).join(', ')} ran; WebGPU ${
          withWebGPU.webgpu.ran
            ? `on ${withWebGPU.webgpu.adapter}`
            : `not offered (${withWebGPU.webgpu.reason.split('\n')[0]})`
        }`,
      );
    } finally {
      await server.dispose();
    }
  }, 600_000);

  it('prunes from Node as an ES module and as CommonJS, with the same masks', async () => {
    const reports: PruningReport[] = [];
    for (const format of ['esm', 'cjs'] as const) {
      const file = await bundleForNode(
        'node-consumer.ts',
        format,
        `consumer.${format === 'esm' ? 'mjs' : 'cjs'}`,
      );
      const { result: report, stderr } = await runNode<PruningReport>(file, 'wasm');
      // Loading the wasm backend on first use must not re-register kernels over fineprune's own.
      expect(stderr).not.toContain('already registered');
      expect(report.backend).toBe('wasm');
      expectCorrectPruning(report);
      reports.push(report);
    }
    expect(weightsAndMasks(reports[1]!)).toEqual(weightsAndMasks(reports[0]!));
  }, 600_000);

  it('keeps one runtime state when one process imports and requires the packages', async () => {
    const file = await bundleForNode('mixed-formats.ts', 'esm', 'mixed-formats.mjs');
    const { result } = await runNode<MixedFormatsResult>(file);
    // Two copies of each package are loaded…
    expect(result.twoCopies).toEqual({ setBackend: true, FinepruneError: true, registerPrunableLayer: true });
    // …yet a provider registered through import is selected through require,
    expect(result.provider).toEqual({ selected: 'mixed-formats-cpu', active: 'mixed-formats-cpu', sum: 5 });
    // errors are instances of both classes (and a plain Error of neither),
    expect(result.errors.fromRequire?.code).toBe('UNKNOWN_BACKEND');
    expect(result.errors.fromRequire?.message).toContain("'mixed-formats-cpu'");
    expect(result.errors.fromImport?.code).toBe('UNKNOWN_BACKEND');
    expect(result.errors.requireErrorIsImportClass).toBe(true);
    expect(result.errors.importErrorIsRequireClass).toBe(true);
    expect(result.errors.plainErrorIsFinepruneError).toBe(false);
    // a layer registered through import is prunable through require,
    expect(result.layers).toEqual({
      seenThroughRequire: true,
      spec: { weights: ['kernel'], kind: 'bilinear' },
    });
    // and without process.getBuiltinModule the ES-module build explains itself; CommonJS still works.
    expect(result.syncBuiltins.esm).toMatchObject({
      code: 'MISSING_DEPENDENCY',
      message: expect.stringContaining('only from CommonJS'),
    });
    expect(result.syncBuiltins.cjsGunzipSync).toBe('function');
  }, 300_000);

  it('gives a user on a newer TF.js (4.23.0) one copy of each TF.js package', async () => {
    const stubs = await stubTfjsRelease(path.join(work, 'tfjs-4.23'), '4.23.0');
    const newer = path.join(work, 'newer-tfjs');
    await npmInstall(newer, {
      ...Object.fromEntries(
        ['@fineprune/tensor', '@fineprune/core', '@fineprune/layers', '@fineprune/backend-webgpu'].map(
          (name) => [name, `file:${tarballs.get(name)}`],
        ),
      ),
      ...Object.fromEntries([...stubs].map(([name, file]) => [name, `file:${file}`])),
    });
    const copies = tensorflowCopies(newer);
    for (const name of TFJS_PACKAGES) {
      expect(copies.get(name), name).toEqual([{ version: '4.23.0', where: `node_modules/${name}` }]);
    }
  }, 300_000);
});
