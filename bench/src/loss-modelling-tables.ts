/**
 * Merges the runs of loss-modelling-mnist.ts (one file, or the per-process part files
 * results/loss-modelling-mnist-part-*.json of a run split over processes) into
 * results/loss-modelling-mnist.json with the summary tables, and prints them as Markdown for the
 * criteria README: Table 1 (best ΔL across λ), ΔL against π and the schedule, Table 2 (best
 * validation gap after fine-tuning), and Spearman's ρ between ΔL and the gap after fine-tuning.
 *
 *   cd bench && npx tsx --conditions=source src/loss-modelling-tables.ts [--keep-parts]
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { meanStd, spearman } from '@fineprune/criteria';
import { RESULTS_DIR, writeResult } from './harness';

interface Run {
  seed: number;
  criterion: string;
  stages: number;
  schedule: string;
  lambda: number;
  deltaLoss: number;
  gapBeforeFineTuning: number;
  gapAfterFineTuning: number | null;
  maxStepNorm: number;
  denseError: number;
}

interface Part {
  setup: Record<string, unknown>;
  dense: Array<{ seed: number; validationError: number; trainSeconds: number }>;
  runs: Run[];
  elapsedSeconds: number;
  complete: boolean;
}

const format = (values: number[], scale = 1, digits = 3) => {
  if (values.length === 0) return '—';
  const { mean, std } = meanStd(values.map((value) => value * scale));
  return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
};

export function main(argv = process.argv.slice(2)): Record<string, unknown> {
  const { values } = parseArgs({
    args: argv,
    options: { 'keep-parts': { type: 'boolean', default: false } },
  });
  const files = readdirSync(RESULTS_DIR).filter((name) => /^loss-modelling-mnist-part-.*\.json$/.test(name));
  const sources = files.length > 0 ? files : ['loss-modelling-mnist.json'];
  const parts: Part[] = sources.map((name) => JSON.parse(readFileSync(path.join(RESULTS_DIR, name), 'utf8')));
  const runs = parts.flatMap((part) => part.runs);
  // Every process of a seed records the same dense network (trained once, cached): keep one per seed.
  const dense = parts
    .flatMap((part) => part.dense)
    .filter((entry, index, all) => all.findIndex((other) => other.seed === entry.seed) === index)
    .sort((a, b) => a.seed - b.seed);
  const seeds = [...new Set(runs.map((run) => run.seed))].sort((a, b) => a - b);
  const criteria = ['mp', 'obd', 'lm', 'qm'];
  const select = (filter: Partial<Run>) =>
    runs.filter((run) => Object.entries(filter).every(([key, value]) => run[key as keyof Run] === value));
  const lambdas = [...new Set(runs.map((run) => run.lambda))].sort((a, b) => a - b);
  const stageCounts = [...new Set(runs.map((run) => run.stages))].sort((a, b) => a - b);

  /** Mean ΔL for each λ of a (criterion, π, schedule); the λ with the lowest mean. */
  const bestOverLambda = (
    criterion: string,
    stages: number,
    schedule: string,
    key: 'deltaLoss' | 'gapAfterFineTuning',
  ) => {
    let best: { lambda: number; values: number[] } | undefined;
    for (const lambda of lambdas) {
      const chosen = select({ criterion, stages, schedule, lambda })
        .map((run) => run[key])
        .filter((value): value is number => value !== null);
      if (chosen.length === 0) continue;
      if (!best || meanStd(chosen).mean < meanStd(best.values).mean) best = { lambda, values: chosen };
    }
    return best;
  };
  const mpRuns = select({ criterion: 'mp' });

  // Table 1: best ΔL across λ, per π (exponential schedule; MP is invariant to π and λ).
  const table1 = criteria.map((criterion) => {
    const row: Record<string, string> = { criterion };
    for (const stages of stageCounts) {
      const best =
        criterion === 'mp'
          ? { lambda: 0, values: mpRuns.map((run) => run.deltaLoss) }
          : bestOverLambda(criterion, stages, 'exponential', 'deltaLoss');
      row[`π=${stages}`] = best
        ? `${format(best.values)}${criterion === 'mp' ? '' : ` (λ=${best.lambda})`}`
        : '—';
    }
    return row;
  });

  // ΔL at λ = 0, exponential vs linear, and the largest ‖Δθ‖₂ of a stage.
  const schedules = criteria
    .filter((criterion) => criterion !== 'mp')
    .flatMap((criterion) =>
      stageCounts
        .filter((stages) => stages > 1)
        .map((stages) => {
          const exponential = select({ criterion, stages, schedule: 'exponential', lambda: 0 });
          const linear = select({ criterion, stages, schedule: 'linear', lambda: 0 });
          return {
            criterion,
            stages,
            exponentialDeltaLoss: format(exponential.map((run) => run.deltaLoss)),
            linearDeltaLoss: format(linear.map((run) => run.deltaLoss)),
            exponentialMaxStepNorm: format(
              exponential.map((run) => run.maxStepNorm),
              1,
              2,
            ),
            linearMaxStepNorm: format(
              linear.map((run) => run.maxStepNorm),
              1,
              2,
            ),
            linearSeeds: linear.length,
          };
        }),
    );

  // λ grid at π = 14 (exponential).
  const lambdaTable = criteria
    .filter((criterion) => criterion !== 'mp')
    .map((criterion) => {
      const row: Record<string, string> = { criterion };
      for (const lambda of lambdas) {
        row[`λ=${lambda}`] = format(
          select({ criterion, stages: 14, schedule: 'exponential', lambda }).map((run) => run.deltaLoss),
        );
      }
      return row;
    });

  // Table 2: best validation gap after fine-tuning across λ and π (both schedules), in %.
  const fineTuned = runs.filter((run) => run.gapAfterFineTuning !== null);
  const table2 = criteria.map((criterion) => {
    let best: { key: string; values: number[]; before: number[] } | undefined;
    const groups = new Map<string, { after: number[]; before: number[] }>();
    for (const run of fineTuned.filter((candidate) => candidate.criterion === criterion)) {
      const key = criterion === 'mp' ? 'mp' : `π=${run.stages} ${run.schedule} λ=${run.lambda}`;
      const group = groups.get(key) ?? { after: [], before: [] };
      group.after.push(run.gapAfterFineTuning!);
      group.before.push(run.gapBeforeFineTuning);
      groups.set(key, group);
    }
    for (const [key, group] of groups) {
      if (!best || meanStd(group.after).mean < meanStd(best.values).mean) {
        best = { key, values: group.after, before: group.before };
      }
    }
    return {
      criterion,
      bestGapAfterFineTuningPercent: best ? format(best.values, 100, 2) : '—',
      gapBeforeFineTuningPercent: best ? format(best.before, 100, 2) : '—',
      configuration: best?.key ?? '—',
    };
  });

  const rho = (list: Run[]) =>
    list.length >= 3
      ? spearman(
          list.map((run) => run.deltaLoss),
          list.map((run) => run.gapAfterFineTuning!),
        )
      : Number.NaN;
  const correlation = {
    all: { rho: rho(fineTuned), points: fineTuned.length },
    withoutOneShot: {
      rho: rho(fineTuned.filter((run) => run.stages > 1)),
      points: fineTuned.filter((run) => run.stages > 1).length,
    },
    ...Object.fromEntries(
      criteria.map((criterion) => {
        const list = fineTuned.filter((run) => run.criterion === criterion);
        return [criterion, { rho: rho(list), points: list.length }];
      }),
    ),
  };

  const denseErrors = dense.map((entry) => entry.validationError);
  const summary = {
    seeds,
    denseValidationErrorPercent: format(denseErrors, 100, 2),
    table1BestDeltaLossAcrossLambdaExponential: table1,
    deltaLossLinearVsExponentialLambda0: schedules,
    deltaLossByLambdaAt14StagesExponential: lambdaTable,
    table2BestGapAfterFineTuning: table2,
    spearmanDeltaLossVsGapAfterFineTuning: correlation,
  };
  const merged = {
    setup: { ...parts[0]!.setup, seeds },
    processes: sources.map((name, index) => ({
      file: name,
      elapsedSeconds: parts[index]!.elapsedSeconds,
      complete: parts[index]!.complete,
    })),
    summary,
    dense,
    runs,
  };
  writeResult('loss-modelling-mnist', merged);
  if (files.length > 0 && !values['keep-parts'])
    for (const name of files) rmSync(path.join(RESULTS_DIR, name));

  const markdown = (rows: Array<Record<string, unknown>>) => {
    const keys = Object.keys(rows[0] ?? {});
    return [
      `| ${keys.join(' | ')} |`,
      `|${keys.map(() => '---').join('|')}|`,
      ...rows.map((row) => `| ${keys.map((key) => String(row[key])).join(' | ')} |`),
    ].join('\n');
  };
  console.log(`Seeds: ${seeds.join(', ')}; dense validation error ${summary.denseValidationErrorPercent}%\n`);
  console.log(`Table 1 — best ΔL across λ (exponential)\n\n${markdown(table1)}\n`);
  console.log(`ΔL by λ at π = 14 (exponential)\n\n${markdown(lambdaTable)}\n`);
  console.log(`Linear vs exponential (λ = 0)\n\n${markdown(schedules)}\n`);
  console.log(`Table 2 — best validation gap after fine-tuning (%)\n\n${markdown(table2)}\n`);
  console.log(`Spearman ρ(ΔL, gap after fine-tuning): ${JSON.stringify(correlation)}`);
  return merged;
}

if (import.meta.url === `file://${process.argv[1]}`) main();
