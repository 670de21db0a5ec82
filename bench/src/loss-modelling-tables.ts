/**
 * Merges the runs of loss-modelling-mnist.ts (one file, or the per-process part files
 * results/<prefix>-part-*.json of a run split over processes) into results/<prefix>.json with the
 * summary tables, and prints them as Markdown for the READMEs: Table 1 (best ΔL across λ), the
 * exact against the sampled Gauss–Newton diagonal, ΔL against π and the schedule, Table 2 (best
 * validation gap after fine-tuning), Table 3 (best validation gap right after pruning), ΔL and the
 * gaps per λ where several were run, ΔL against the gap after fine-tuning per criterion with
 * Spearman's ρ, and Appendix C.4 (GraSP, SynFlow, random against the loss models at each π).
 * Without --keep-parts the part files are deleted once merged.
 *
 *   cd bench && npx tsx --conditions=source src/loss-modelling-tables.ts [--prefix loss-modelling-mnist] [--keep-parts]
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
  /** Absent in runs written before the exact diagonal was run beside the sampled one (sampled). */
  gaussNewton?: 'exact' | 'sampled' | null;
  deltaLoss: number;
  gapBeforeFineTuning: number;
  gapAfterFineTuning: number | null;
  maxStepNorm: number;
  denseError: number;
}

interface Part {
  setup: Record<string, unknown>;
  dense: Array<{ seed: number; validationError: number; trainSeconds: number; bestEpoch?: number }>;
  runs: Run[];
  elapsedSeconds: number;
  complete: boolean;
}

/** The criterion of a run as the tables name it: OBD and QM with the exact diagonal are rows of their own. */
const label = (run: Run) => (run.gaussNewton === 'exact' ? `${run.criterion}-exact` : run.criterion);

const format = (values: number[], scale = 1, digits = 3) => {
  if (values.length === 0) return '—';
  const { mean, std } = meanStd(values.map((value) => value * scale));
  return `${mean.toFixed(digits)} ± ${std.toFixed(digits)}`;
};

const markdown = (rows: Array<Record<string, unknown>>) => {
  const keys = Object.keys(rows[0] ?? {});
  return [
    `| ${keys.join(' | ')} |`,
    `|${keys.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${keys.map((key) => String(row[key])).join(' | ')} |`),
  ].join('\n');
};

/** ΔL and the validation gaps before and after fine-tuning (points) of some runs, mean ± std. */
const lossAndGaps = (list: Run[]) => ({
  deltaLoss: format(list.map((run) => run.deltaLoss)),
  gapBeforeFineTuningPercent: format(
    list.map((run) => run.gapBeforeFineTuning),
    100,
    2,
  ),
  gapAfterFineTuningPercent: format(
    list.map((run) => run.gapAfterFineTuning).filter((value): value is number => value !== null),
    100,
    2,
  ),
});

const rho = (list: Run[]) =>
  list.length >= 3
    ? Number(
        spearman(
          list.map((run) => run.deltaLoss),
          list.map((run) => run.gapAfterFineTuning!),
        ).toFixed(3),
      )
    : null;

export function main(argv = process.argv.slice(2)): Record<string, unknown> {
  const { values } = parseArgs({
    args: argv,
    options: {
      prefix: { type: 'string', default: 'loss-modelling-mnist' },
      'keep-parts': { type: 'boolean', default: false },
    },
  });
  const prefix = values.prefix!;
  const partPattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-part-.*\\.json$`);
  const files = readdirSync(RESULTS_DIR).filter((name) => partPattern.test(name));
  const sources = files.length > 0 ? files : [`${prefix}.json`];
  const parts: Part[] = sources.map((name) => JSON.parse(readFileSync(path.join(RESULTS_DIR, name), 'utf8')));
  const runs = parts.flatMap((part) => part.runs);
  // Every process of a seed records the same dense network (trained once, cached): keep one per seed.
  const dense = parts
    .flatMap((part) => part.dense)
    .filter((entry, index, all) => all.findIndex((other) => other.seed === entry.seed) === index)
    .sort((a, b) => a.seed - b.seed);
  const seeds = [...new Set(runs.map((run) => run.seed))].sort((a, b) => a - b);
  const present = new Set(runs.map(label));
  const lossModels = ['mp', 'obd', 'lm', 'qm', 'obd-exact', 'qm-exact'].filter((name) => present.has(name));
  const select = (name: string, filter: Partial<Run> = {}) =>
    runs.filter(
      (run) =>
        label(run) === name &&
        Object.entries(filter).every(([key, value]) => run[key as keyof Run] === value),
    );
  const lambdas = [...new Set(runs.map((run) => run.lambda))].sort((a, b) => a - b);
  const stageCounts = [...new Set(runs.map((run) => run.stages))].sort((a, b) => a - b);
  const invariant = (name: string) => name === 'mp' || name === 'random';

  /** The λ whose runs have the lowest mean of `key` for one criterion, π and schedule. */
  const bestOverLambda = (name: string, stages: number, key: 'deltaLoss' | 'gapBeforeFineTuning') => {
    let best: { lambda: number; values: number[] } | undefined;
    for (const lambda of lambdas) {
      const chosen = select(name, { stages, schedule: 'exponential', lambda }).map((run) => run[key]);
      if (chosen.length === 0) continue;
      if (!best || meanStd(chosen).mean < meanStd(best.values).mean) best = { lambda, values: chosen };
    }
    return best;
  };
  /** Table 1 (ΔL) or Table 3 (gap right after pruning, in points): best across λ per π. */
  const bestTable = (key: 'deltaLoss' | 'gapBeforeFineTuning', scale: number, digits: number) =>
    lossModels.map((name) => {
      const row: Record<string, string> = { criterion: name };
      for (const stages of stageCounts) {
        const best = invariant(name)
          ? { lambda: 0, values: select(name).map((run) => run[key]) }
          : bestOverLambda(name, stages, key);
        const lambdasRun = new Set(
          select(name, { stages, schedule: 'exponential' }).map((run) => run.lambda),
        );
        row[`π=${stages}`] =
          best && best.values.length > 0
            ? `${format(best.values, scale, digits)}${invariant(name) ? '' : ` (λ=${best.lambda}${lambdasRun.size === 1 ? ' only' : ''})`}`
            : '—';
      }
      return row;
    });
  const table1 = bestTable('deltaLoss', 1, 3);
  const table3 = bestTable('gapBeforeFineTuning', 100, 2);

  // The exact against the sampled Gauss–Newton diagonal at λ = 0, exponential schedule.
  const gaussNewtonTable = ['obd', 'qm']
    .filter((name) => present.has(`${name}-exact`))
    .flatMap((name) =>
      stageCounts
        .filter((stages) => select(`${name}-exact`, { stages, lambda: 0 }).length > 0)
        .map((stages) => {
          const cell = (
            which: string,
            key: 'deltaLoss' | 'gapAfterFineTuning',
            scale: number,
            digits: number,
          ) =>
            format(
              select(which, { stages, schedule: 'exponential', lambda: 0 })
                .map((run) => run[key])
                .filter((value): value is number => value !== null),
              scale,
              digits,
            );
          return {
            criterion: name,
            stages,
            deltaLossSampled: cell(name, 'deltaLoss', 1, 3),
            deltaLossExact: cell(`${name}-exact`, 'deltaLoss', 1, 3),
            gapAfterSampled: cell(name, 'gapAfterFineTuning', 100, 2),
            gapAfterExact: cell(`${name}-exact`, 'gapAfterFineTuning', 100, 2),
          };
        }),
    );

  // The step-size constraint λ (Sec. 3.2) where several were run: ΔL and both gaps per λ.
  const lambdaTable = lossModels.flatMap((name) =>
    stageCounts.flatMap((stages) => {
      const runLambdas = [
        ...new Set(select(name, { stages, schedule: 'exponential' }).map((run) => run.lambda)),
      ];
      if (invariant(name) || runLambdas.length < 2) return [];
      return runLambdas
        .sort((a, b) => a - b)
        .map((lambda) => {
          const list = select(name, { stages, schedule: 'exponential', lambda });
          return {
            criterion: name,
            stages,
            lambda,
            seeds: list.length,
            ...lossAndGaps(list),
          };
        });
    }),
  );

  // ΔL at λ = 0, exponential vs linear, and the largest ‖Δθ‖₂ of a stage.
  const schedules = ['obd', 'lm', 'qm'].flatMap((name) =>
    stageCounts
      .filter((stages) => stages > 1 && select(name, { stages, schedule: 'linear', lambda: 0 }).length > 0)
      .map((stages) => {
        const exponential = select(name, { stages, schedule: 'exponential', lambda: 0 });
        const linear = select(name, { stages, schedule: 'linear', lambda: 0 });
        return {
          criterion: name,
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

  // Table 2: best validation gap after fine-tuning across λ, π and schedules, in points.
  const fineTuned = runs.filter((run) => run.gapAfterFineTuning !== null);
  const table2 = [...present].map((name) => {
    let best: { key: string; values: number[]; before: number[] } | undefined;
    const groups = new Map<string, { after: number[]; before: number[] }>();
    for (const run of fineTuned.filter((candidate) => label(candidate) === name)) {
      const key = invariant(name) ? 'one-shot' : `π=${run.stages} ${run.schedule} λ=${run.lambda}`;
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
      criterion: name,
      bestGapAfterFineTuningPercent: best ? format(best.values, 100, 2) : '—',
      gapBeforeFineTuningPercent: best ? format(best.before, 100, 2) : '—',
      configuration: best?.key ?? '—',
    };
  });

  // ΔL against the gap after fine-tuning, per criterion (every fine-tuned configuration and seed).
  const perCriterion = [...present].map((name) => {
    const list = fineTuned.filter((run) => label(run) === name);
    return {
      criterion: name,
      points: list.length,
      deltaLoss: format(list.map((run) => run.deltaLoss)),
      gapBeforeFineTuningPercent: format(
        list.map((run) => run.gapBeforeFineTuning),
        100,
        2,
      ),
      gapAfterFineTuningPercent: format(
        list.map((run) => run.gapAfterFineTuning!),
        100,
        2,
      ),
      spearmanRho: rho(list) ?? '—',
    };
  });

  // Appendix C.4: every criterion at λ = 0 on the exponential schedule, per π.
  const appendixC4 = ['mp', 'random', 'grasp', 'synflow', 'lm', 'obd', 'qm']
    .filter((name) => present.has(name) && ['random', 'grasp', 'synflow'].some((extra) => present.has(extra)))
    .flatMap((name) =>
      (invariant(name) ? [1] : stageCounts).flatMap((stages) => {
        const list = invariant(name)
          ? select(name)
          : select(name, { stages, schedule: 'exponential', lambda: 0 });
        if (list.length === 0) return [];
        return [
          {
            criterion: name,
            stages: invariant(name) ? 'any (one-shot)' : stages,
            seeds: list.length,
            ...lossAndGaps(list),
          },
        ];
      }),
    );

  const correlation = {
    all: { rho: rho(fineTuned), points: fineTuned.length },
    lossModelsOnly: (() => {
      const list = fineTuned.filter((run) => ['mp', 'obd', 'lm', 'qm'].includes(label(run)));
      return { rho: rho(list), points: list.length };
    })(),
    withoutOneShot: {
      rho: rho(fineTuned.filter((run) => run.stages > 1)),
      points: fineTuned.filter((run) => run.stages > 1).length,
    },
  };

  const denseErrors = dense.map((entry) => entry.validationError);
  const summary = {
    seeds,
    denseValidationErrorPercent: format(denseErrors, 100, 2),
    denseBestEpochs: dense.map((entry) => entry.bestEpoch ?? null),
    table1BestDeltaLossAcrossLambdaExponential: table1,
    table3BestGapRightAfterPruningPercent: table3,
    gaussNewtonExactVersusSampledLambda0: gaussNewtonTable,
    deltaLossByLambdaExponential: lambdaTable,
    deltaLossLinearVsExponentialLambda0: schedules,
    table2BestGapAfterFineTuning: table2,
    deltaLossAgainstGapAfterFineTuningPerCriterion: perCriterion,
    appendixC4: appendixC4,
    spearmanDeltaLossVsGapAfterFineTuning: correlation,
  };
  const merged = {
    setup: { ...parts[0]!.setup, seeds },
    processes: sources.map((name, index) => ({
      file: name,
      elapsedSeconds: parts[index]!.elapsedSeconds,
      complete: parts[index]!.complete,
      command: (parts[index] as Part & { command?: unknown }).command ?? null,
    })),
    summary,
    dense,
    runs,
  };
  writeResult(prefix, merged);
  if (files.length > 0 && !values['keep-parts'])
    for (const name of files) rmSync(path.join(RESULTS_DIR, name));

  console.log(`Seeds: ${seeds.join(', ')}; dense validation error ${summary.denseValidationErrorPercent}%`);
  for (const entry of dense as Array<Part['dense'][number] & { epochsRun?: number }>)
    console.log(
      `- seed ${entry.seed}: ${(entry.validationError * 100).toFixed(2)}% (best epoch ${entry.bestEpoch ?? '?'} of ${entry.epochsRun ?? '?'} run, ${entry.trainSeconds} s)`,
    );
  console.log('');
  const printed: Array<[string, Array<Record<string, unknown>>]> = [
    ['Table 1 — best ΔL across λ (exponential)', table1],
    ['Table 3 — best validation gap right after pruning across λ (exponential, points)', table3],
    ['Exact against sampled Gauss–Newton (λ = 0, exponential)', gaussNewtonTable],
    ['ΔL and the gaps by λ (exponential)', lambdaTable],
    ['Linear vs exponential (λ = 0)', schedules],
    ['Table 2 — best validation gap after fine-tuning (points)', table2],
    ['ΔL against the gap after fine-tuning, per criterion', perCriterion],
    ['Appendix C.4 (λ = 0, exponential)', appendixC4],
  ];
  for (const [title, rows] of printed) if (rows.length > 0) console.log(`${title}\n\n${markdown(rows)}\n`);
  console.log(`Spearman ρ(ΔL, gap after fine-tuning): ${JSON.stringify(correlation)}`);
  return merged;
}

if (import.meta.url === `file://${process.argv[1]}`) main();
