/**
 * The Markdown tables of the Fashion-MNIST reproduction (packages/scores/README.md) from the result
 * files of movement-fashion.ts: the runs of every file, one per (method, target, seed) — the first
 * file that has it wins, so a rerun of some methods (listed first) replaces their rows of an older
 * run — grouped by method, target and λ, with the accuracy and the remaining weights reached as
 * mean ± sample standard deviation over the seeds, and the remaining weights per layer.
 *
 *   cd bench && npx tsx --conditions=source src/movement-fashion-tables.ts [--write name] [files…]
 *
 * Without files: the published table, results/movement-fashion-smvp.json (SMvP with σ(S) > τ),
 * results/movement-fashion-recalibrated.json (L0 at 10%), results/movement-fashion.json (the rest).
 * With --write, the table's runs (only those) also go to results/<name>.json, a file that
 * `fineprune report` draws as a sweep beside the sweep's own runs (Fig. 2).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mean, RESULTS_DIR, std, writeResult } from './harness';

interface Run {
  method: string;
  target: number;
  seed: number;
  lambda?: number;
  accuracy: number;
  remaining: number;
  perLayerRemaining: number[];
}

export const PUBLISHED = [
  'movement-fashion-smvp.json',
  'movement-fashion-recalibrated.json',
  'movement-fashion.json',
];

/**
 * The runs of the files, one per (method, target, seed), the first file's where two have one.
 *
 * @example
 * ```ts
 * mergedRuns(['results/movement-fashion-smvp.json', 'results/movement-fashion.json']);
 * ```
 */
export function mergedRuns(files: readonly string[]): Run[] {
  const seen = new Set<string>();
  const runs: Run[] = [];
  for (const file of files) {
    const { runs: fileRuns } = JSON.parse(readFileSync(file, 'utf8')) as { runs: Run[] };
    for (const run of fileRuns) {
      const key = `${run.method}|${run.target}|${run.seed}`;
      if (seen.has(key)) continue;
      seen.add(key);
      runs.push(run);
    }
  }
  return runs;
}

export function main(argv = process.argv.slice(2)): string {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { write: { type: 'string' } },
    allowPositionals: true,
  });
  const files = (positionals.length > 0 ? positionals : PUBLISHED).map((file) =>
    path.isAbsolute(file) || file.includes('/') ? file : path.join(RESULTS_DIR, file),
  );
  const runs = mergedRuns(files);
  const order = ['dense', 'MaP', 'MvP', 'SMvP', 'L0'];
  const groups = new Map<string, Run[]>();
  for (const run of runs) {
    const key = `${run.method}|${run.target}|${run.lambda ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  const rows = [...groups.values()].sort(
    (a, b) => b[0]!.target - a[0]!.target || order.indexOf(a[0]!.method) - order.indexOf(b[0]!.method),
  );
  const cell = (values: number[], digits: number) =>
    values.length > 1
      ? `${mean(values).toFixed(digits)} ± ${std(values).toFixed(digits)}`
      : values[0]!.toFixed(digits);
  const lines = [
    '| method | target remaining | λ | Fashion-MNIST test accuracy % | remaining reached % | per layer: 784×300 / 300×100 / 100×10 % | seeds |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const group of rows) {
    const first = group[0]!;
    const layers = first.perLayerRemaining.map((_, layer) =>
      (mean(group.map((run) => run.perLayerRemaining[layer]!)) * 100).toFixed(1),
    );
    lines.push(
      `| ${first.method} | ${Number((first.target * 100).toPrecision(6))}% | ${first.lambda === undefined ? '—' : Number(first.lambda.toPrecision(6)).toExponential()} | ${cell(
        group.map((run) => run.accuracy * 100),
        2,
      )} | ${cell(
        group.map((run) => run.remaining * 100),
        2,
      )} | ${layers.join(' / ')} | ${group.map((run) => run.seed).join(', ')} |`,
    );
  }
  const sources = files.map((file) => path.basename(file));
  const text = `From ${sources.join(', ')}:\n\n${lines.join('\n')}`;
  console.log(text);
  if (values.write) console.log(`\nruns written to ${writeResult(values.write, { sources, runs })}`);
  return text;
}

if (import.meta.url === `file://${process.argv[1]}`) main();
