/**
 * Merges the result files of an encoder-transfer reproduction split over processes
 * (results/encoder-transfer-<task>-*.json), writes results/encoder-transfer-<task>.json with every
 * run and the summary table, and prints the table (mean ± std over seeds) and the remaining weights
 * per projection (Fig. 6) as Markdown.
 *
 *   cd bench && npx tsx --conditions=source src/encoder-transfer-tables.ts [--task brown-genre]
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mean, RESULTS_DIR, std, writeResult } from './harness';

interface Run {
  method: string;
  target: number;
  seed: number;
  distil: boolean;
  scope: string;
  accuracy: number;
  remaining: number;
  perParameterRemaining: Record<string, number>;
  lambda?: number;
  seconds: number;
  tokensPerSecond: number;
  /** Dev examples the run was scored on (its file's task.dev). */
  devExamples?: number;
}

export function main(argv = process.argv.slice(2)): Record<string, unknown> {
  const { values } = parseArgs({
    args: argv,
    options: {
      task: { type: 'string', default: 'brown-genre' },
      // The result files to merge: <prefix>-<task>-*.json (encoder-gpu for the runs of bench/python/transfer_grid.py).
      prefix: { type: 'string', default: 'encoder-transfer' },
    },
  });
  const prefix = `${values.prefix}-${values.task}-`;
  const files = readdirSync(RESULTS_DIR).filter((name) => name.startsWith(prefix) && name.endsWith('.json'));
  const parts = files.map((name) => JSON.parse(readFileSync(path.join(RESULTS_DIR, name), 'utf8')));
  // A part that needed a dense teacher reran the dense model of a seed another part already has:
  // the runs are deterministic, so keep one run per (configuration, seed).
  const seen = new Set<string>();
  const runs: Run[] = parts
    .flatMap((part) =>
      (part.runs as Run[]).map((run) => ({ ...run, devExamples: part.task?.dev as number | undefined })),
    )
    .filter((run) => {
      const id = `${run.method}|${run.target}|${run.distil}|${run.scope}|${run.lambda ?? ''}|${run.devExamples ?? ''}|${run.seed}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  const key = (run: Run) =>
    `${run.method}|${run.target}|${run.distil}|${run.scope}|${run.lambda ?? ''}|${run.devExamples ?? ''}`;
  // Runs scored on another dev set than most of the task's are not comparable: their rows say so.
  const devCounts = new Map<number | undefined, number>();
  for (const run of runs) devCounts.set(run.devExamples, (devCounts.get(run.devExamples) ?? 0) + 1);
  const usualDev = [...devCounts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const devLabel = (run: Run) =>
    run.devExamples === usualDev
      ? ''
      : ` [scored on ${run.devExamples ?? 'unknown'} dev examples, not ${usualDev}]`;
  const groups = new Map<string, Run[]>();
  for (const run of runs) groups.set(key(run), [...(groups.get(key(run)) ?? []), run]);
  const format = (values: number[], digits = 2) =>
    values.length > 1
      ? `${mean(values).toFixed(digits)} ± ${std(values).toFixed(digits)}`
      : values[0]!.toFixed(digits);
  const table = [...groups.values()].map((rows) => ({
    method: rows[0]!.method,
    targetRemainingPercent: rows[0]!.target * 100,
    distillation: rows[0]!.distil,
    scope: rows[0]!.scope,
    ...(rows[0]!.lambda !== undefined ? { lambda: rows[0]!.lambda } : {}),
    devExamples: rows[0]!.devExamples,
    note: devLabel(rows[0]!),
    accuracy: format(rows.map((row) => row.accuracy * 100)),
    remainingPercent: format(rows.map((row) => row.remaining * 100)),
    seeds: rows.map((row) => row.seed),
  }));
  const order = ['dense', 'MaP', 'MvP', 'SMvP', 'L0'];
  table.sort(
    (a, b) =>
      Number(a.distillation) - Number(b.distillation) ||
      b.targetRemainingPercent - a.targetRemainingPercent ||
      a.scope.localeCompare(b.scope) ||
      order.indexOf(a.method) - order.indexOf(b.method),
  );
  // λ as the runs used it (1.25e-5 stays 1.25e-5; six significant digits drop float noise).
  const lambdaLabel = (lambda: number | undefined) =>
    lambda === undefined ? '' : ` (λ = ${Number(lambda.toPrecision(6)).toExponential()})`;
  console.log(
    '| method | target remaining | distillation | selection | dev accuracy % | remaining % | seeds |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const row of table) {
    console.log(
      `| ${row.method}${lambdaLabel(row.lambda as number | undefined)}${row.note} | ${row.targetRemainingPercent}% | ${row.distillation ? 'yes' : 'no'} | ${row.scope} | ${row.accuracy} | ${row.remainingPercent} | ${row.seeds.join(', ')} |`,
    );
  }
  // Fig. 6: remaining weights per projection, mean over the runs of each method at each target.
  const projections = Object.keys(runs.find((run) => run.method !== 'dense')?.perParameterRemaining ?? {});
  if (projections.length > 0) {
    console.log(
      `\n| method | target | ${projections.map((name) => name.replace('/kernel', '')).join(' | ')} |`,
    );
    console.log(`|---|---|${projections.map(() => '---|').join('')}`);
    for (const rows of groups.values()) {
      const first = rows[0]!;
      if (first.method === 'dense' || first.distil) continue;
      const cells = projections.map((name) =>
        (mean(rows.map((row) => row.perParameterRemaining[name]!)) * 100).toFixed(1),
      );
      console.log(
        `| ${first.method}${lambdaLabel(first.lambda)}${devLabel(first)} ${first.scope} | ${first.target * 100}% | ${cells.join(' | ')} |`,
      );
    }
  }
  // Fig. 6 is per layer: the share kept of each layer's prunable weights (projections weighted by size).
  const encoder = (parts.find((part) => part.setting?.encoder)?.setting?.encoder ?? {}) as {
    hiddenSize?: number;
    intermediateSize?: number;
  };
  const sizeOf = (name: string) => {
    const hidden = encoder.hiddenSize ?? 1;
    return name.includes('/ffn/') ? hidden * (encoder.intermediateSize ?? hidden) : hidden * hidden;
  };
  const layers = [...new Set(projections.map((name) => name.split('/')[0]!))];
  const perLayer = [...groups.values()]
    .filter((rows) => rows[0]!.method !== 'dense' && !rows[0]!.distil)
    .map((rows) => {
      const first = rows[0]!;
      const cells = layers.map((layer) => {
        const names = projections.filter((name) => name.startsWith(`${layer}/`));
        const total = names.reduce((sum, name) => sum + sizeOf(name), 0);
        const kept = (row: Run) =>
          names.reduce((sum, name) => sum + row.perParameterRemaining[name]! * sizeOf(name), 0) / total;
        return (mean(rows.map(kept)) * 100).toFixed(1);
      });
      return {
        label: `${first.method}${lambdaLabel(first.lambda)}${devLabel(first)} ${first.scope}`,
        target: first.target,
        cells,
      };
    });
  if (perLayer.length > 0) {
    console.log(`\n| method | target | ${layers.join(' | ')} |`);
    console.log(`|---|---|${layers.map(() => '---|').join('')}`);
    for (const row of perLayer)
      console.log(`| ${row.label} | ${row.target * 100}% | ${row.cells.join(' | ')} |`);
  }
  const merged = { task: values.task, parts: files, runs, table, perLayer };
  const file = writeResult(`${values.prefix}-${values.task}`, merged);
  console.log(`\nwritten to ${file}`);
  return merged;
}

if (import.meta.url === `file://${process.argv[1]}`) main();
