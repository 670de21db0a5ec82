// What each package costs in a browser bundle, measured from the BUILT packages (dist, as
// published; no `source` condition): esbuild, --platform=browser, minified, then gzip -9.
//
//   pnpm build && pnpm --filter @fineprune/bench bundle-cost
//
// For every browser entry of every public package it bundles two pages: one that imports the whole
// entry (`import * as entry`) and one that imports a typical single export (the table below).
// Each is measured twice: with TensorFlow.js's packages (@tensorflow/*) external (an application
// loads tfjs-core once whatever it uses; this is fineprune's own cost) and with everything in.
// Code splitting is on, so a module loaded with import() (the cpu and wasm backends, which
// setBackend loads on first use) is counted apart, as "later".
// It also packs each package (`pnpm pack`) and records the tarball's size, packed and unpacked.
// Writes results/bundle-cost.json and the table between the bundle-cost markers of each README.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { browserEntries } from '../scripts/check-browser-safe.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const TFJS = ['@tensorflow/*'];

/** One typical import per entry: what a user who needs one thing from it writes. */
const TYPICAL = {
  '@fineprune/tensor': 'setBackend',
  '@fineprune/tensor/errors': 'FinepruneError',
  '@fineprune/tensor/random': 'createRandom',
  '@fineprune/tensor/runtime': 'sharedState',
  '@fineprune/tensor/select': 'kthLargest',
  '@fineprune/tensor/conformance': 'runConformance',
  '@fineprune/core': 'Pruner',
  '@fineprune/core/testing': 'tinyMlp',
  '@fineprune/masks': 'topV',
  '@fineprune/structured': 'unitTopV',
  '@fineprune/scores': 'magnitude',
  '@fineprune/schedulers': 'cubic',
  '@fineprune/criteria': 'optimalBrainDamage',
  '@fineprune/distillation': 'distillation',
  '@fineprune/layers': 'fromLayersModel',
  '@fineprune/safetensors': 'encodeSafetensors',
  '@fineprune/transformers': 'createBertModel',
  '@fineprune/text': 'createBertTokenizer',
  '@fineprune/datasets': 'parseIdx',
  '@fineprune/recipes': 'parseRecipe',
  '@fineprune/backend-webgpu': 'registerWebGPUBackend',
  '@fineprune/backend-node-gpu': 'registerNodeGpuBackend',
};

function gzipSize(bytes) {
  return gzipSync(bytes, { level: 9 }).length;
}

/** Bundles `source` (an ES module importing from `file`) and measures what a page loads. */
async function measure(source, resolveDir, external) {
  const outdir = mkdtempSync(path.join(os.tmpdir(), 'fineprune-bundle-cost-'));
  try {
    const result = await build({
      stdin: { contents: source, resolveDir, sourcefile: 'page.js' },
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      write: false,
      metafile: true,
      outdir,
      external,
      logLevel: 'error',
    });
    const outputs = result.metafile.outputs;
    const byPath = new Map(result.outputFiles.map((file) => [path.relative(process.cwd(), file.path), file]));
    const entry = Object.keys(outputs).find((key) => outputs[key].entryPoint !== undefined);
    // The entry and what it imports statically load with the page; what those import() load later.
    // (esbuild also writes chunks for import() calls in modules it then drops: they are not counted.)
    const reachable = (starts, kinds) => {
      const seen = new Set();
      const pending = [...starts];
      while (pending.length > 0) {
        const next = pending.pop();
        if (seen.has(next)) continue;
        seen.add(next);
        for (const imported of outputs[next].imports) {
          if (!imported.external && kinds.includes(imported.kind)) pending.push(imported.path);
        }
      }
      return seen;
    };
    const initial = reachable([entry], ['import-statement']);
    const everything = reachable([entry], ['import-statement', 'dynamic-import']);
    const later = [...everything].filter((key) => !initial.has(key));
    const sum = (keys, size) => keys.reduce((total, key) => total + size(byPath.get(key).contents), 0);
    return {
      minified: sum([...initial], (bytes) => bytes.length),
      gzip: sum([...initial], gzipSize),
      laterGzip: sum(later, gzipSize),
    };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** The package's tarball as `pnpm pack` makes it: bytes packed, and the files' bytes unpacked. */
function tarballSize(directory) {
  const destination = mkdtempSync(path.join(os.tmpdir(), 'fineprune-pack-'));
  try {
    execFileSync('pnpm', ['pack', '--pack-destination', destination], { cwd: directory, stdio: 'pipe' });
    const file = path.join(destination, readdirSync(destination)[0]);
    const tar = gunzipSync(readFileSync(file));
    let unpacked = 0;
    // A tar file: 512-byte headers, each with the entry's size (octal) at offset 124, then the data.
    for (let offset = 0; offset + 512 <= tar.length; ) {
      const size = Number.parseInt(
        tar
          .subarray(offset + 124, offset + 136)
          .toString('latin1')
          .trim() || '0',
        8,
      );
      if (tar[offset] === 0) break;
      unpacked += size;
      offset += 512 + Math.ceil(size / 512) * 512;
    }
    return { packed: statSync(file).size, unpacked };
  } finally {
    rmSync(destination, { recursive: true, force: true });
  }
}

function specifierOf(name, subpath) {
  return subpath === '.' ? name : `${name}/${subpath.slice(2)}`;
}

async function measurePackage(directory) {
  const manifest = JSON.parse(readFileSync(path.join(directory, 'package.json'), 'utf8'));
  const entries = browserEntries(directory).filter((entry) => entry.condition === 'import');
  const rows = [];
  for (const entry of entries) {
    const specifier = specifierOf(manifest.name, entry.subpath);
    const relative = `./${path.relative(directory, entry.file)}`;
    const typical = TYPICAL[specifier];
    const pages = {
      entry: `import * as entry from '${relative}'; globalThis.keep = entry;`,
      ...(typical
        ? { typical: `import { ${typical} } from '${relative}'; globalThis.keep = ${typical};` }
        : {}),
    };
    const row = { specifier, typicalImport: typical ?? null };
    for (const [page, source] of Object.entries(pages)) {
      row[page] = {
        withoutTfjs: await measure(source, directory, TFJS),
        withTfjs: await measure(source, directory, []),
      };
    }
    rows.push(row);
  }
  return { name: manifest.name, directory, tarball: tarballSize(directory), rows };
}

function kilobytes(bytes) {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function readmeTable(measured) {
  const lines = [
    '| import | min+gzip without TF.js | with TF.js | loaded later, on first use |',
    '|---|---|---|---|',
  ];
  for (const row of measured.rows) {
    for (const [page, label] of [
      ['entry', `\`import * from '${row.specifier}'\``],
      ['typical', `\`import { ${row.typicalImport} } from '${row.specifier}'\``],
    ]) {
      const cost = row[page];
      if (!cost) continue;
      lines.push(
        `| ${label} | ${kilobytes(cost.withoutTfjs.gzip)} | ${kilobytes(cost.withTfjs.gzip)} | ${
          cost.withTfjs.laterGzip > 0 ? kilobytes(cost.withTfjs.laterGzip) : '—'
        } |`,
      );
    }
  }
  return lines.join('\n');
}

const BEGIN = '<!-- bundle-cost:begin (written by bench/bundle-cost.mjs; do not edit by hand) -->';
const END = '<!-- bundle-cost:end -->';

function writeReadme(measured, date) {
  const file = path.join(measured.directory, 'README.md');
  const text = readFileSync(file, 'utf8');
  const section = [
    BEGIN,
    `Measured ${date} from the built package by \`bench/bundle-cost.mjs\` (esbuild, \`--platform=browser\`,`,
    'minified, gzip -9; "without TF.js" leaves the `@tensorflow/*` packages out, which an application',
    'loads once whatever it uses; "later" is code loaded by `import()` on first use, such as the cpu and',
    'wasm backends that `setBackend` loads). JSON: `bench/results/bundle-cost.json`.',
    '',
    `Tarball (\`pnpm pack\`): ${kilobytes(measured.tarball.packed)} packed, ${kilobytes(measured.tarball.unpacked)} unpacked.`,
    '',
    readmeTable(measured),
    END,
  ].join('\n');
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  const updated =
    start >= 0 && end > start
      ? text.slice(0, start) + section + text.slice(end + END.length)
      : `${text.trimEnd()}\n\n## Bundle cost\n\n${section}\n`;
  writeFileSync(file, updated);
}

const packagesDirectory = path.join(root, 'packages');
const directories = readdirSync(packagesDirectory)
  .map((name) => path.join(packagesDirectory, name))
  .filter((directory) => existsSync(path.join(directory, 'package.json')))
  .filter((directory) => !JSON.parse(readFileSync(path.join(directory, 'package.json'), 'utf8')).private);
const date = new Date().toISOString().slice(0, 10);
const results = [];
for (const directory of directories) {
  const measured = await measurePackage(directory);
  results.push(measured);
  if (measured.rows.length > 0) writeReadme(measured, date);
  for (const row of measured.rows) {
    console.log(
      `${row.specifier}: entry ${kilobytes(row.entry.withoutTfjs.gzip)} (${kilobytes(row.entry.withTfjs.gzip)} with TF.js)` +
        (row.typical ? `, { ${row.typicalImport} } ${kilobytes(row.typical.withoutTfjs.gzip)}` : ''),
    );
  }
}
const output = path.join(here, 'results', 'bundle-cost.json');
writeFileSync(
  output,
  `${JSON.stringify(
    {
      date,
      tool: 'bench/bundle-cost.mjs: esbuild --bundle --splitting --platform=browser --minify, gzip -9',
      node: process.version,
      packages: results.map(({ name, tarball, rows }) => ({ name, tarball, rows })),
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${path.relative(root, output)}`);
