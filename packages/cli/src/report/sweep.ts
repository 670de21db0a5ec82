import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { htmlPage } from './html';
import { axes, defaultFrame, escapeHtml, extent, legend, linearScale, logScale, PALETTE, svg } from './svg';

/**
 * One fine-pruning run of a sweep: the method (with its selection and distillation), the target
 * share of remaining weights, the share it reached and its accuracy.
 *
 * @example
 * ```ts
 * const run: SweepRun = { series: 'MvP', target: 0.1, seed: 1, lambda: null, remaining: 0.1, accuracy: 0.86 };
 * ```
 */
export interface SweepRun {
  /** The line the run belongs to: the method, with " global" and " + KD" where they apply. */
  series: string;
  /** The target share of remaining weights (runs of one target are averaged); the reached share when absent. */
  target: number;
  seed: number | null;
  /** The penalty λ of SMvP or L0 (their targets are nominal: λ sets what they keep), if any. */
  lambda: number | null;
  /** Share of the prunable weights kept, in [0, 1]. */
  remaining: number;
  /** Accuracy in [0, 1]. */
  accuracy: number;
}

/**
 * A sweep: the runs of one or more result files of the movement-pruning benchmarks (`runs` of
 * `bench/results/movement-fashion*.json` or `encoder-*.json`).
 *
 * @example
 * ```ts
 * const sweep: Sweep = { files: ['movement-fashion-sweep.json'], runs: [] };
 * ```
 */
export interface Sweep {
  files: string[];
  runs: SweepRun[];
}

/**
 * One averaged point of a line: the mean (and sample standard deviation) over the seeds of one
 * series at one target.
 *
 * @example
 * ```ts
 * const point: SweepPoint = { target: 0.1, lambda: null, remaining: 0.1, remainingStd: 0, accuracy: 0.86, accuracyStd: 0.004, seeds: 3 };
 * ```
 */
export interface SweepPoint {
  target: number;
  lambda: number | null;
  remaining: number;
  remainingStd: number;
  accuracy: number;
  accuracyStd: number;
  seeds: number;
}

/** Largest sweep file read (a result file of the benchmarks is well under 1 MiB). */
export const SWEEP_FILE_LIMIT = 32 * 2 ** 20;

function invalid(file: string, entry: string, problem: string): never {
  throw new FinepruneError({
    code: ErrorCodes.INVALID_DATA,
    message: `${file}: ${entry} ${problem}`,
    fix: 'Pass a result file of the movement-pruning benchmarks (a JSON object whose "runs" list has method, accuracy and remaining of each run).',
  });
}

function share(file: string, entry: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1))
    invalid(file, entry, `must be a number in [0, 1], got ${JSON.stringify(value)}.`);
  return value;
}

/**
 * Reads the runs of a sweep result file that has already been parsed; every run needs a `method`
 * (a short string), `accuracy` and `remaining` in [0, 1]; `target`, `seed`, `lambda`, `scope`
 * ("global" marks the series) and `distil` (true adds " + KD") are optional.
 *
 * @throws FinepruneError `INVALID_DATA` naming the file and the entry that is wrong
 *
 * @example
 * ```ts
 * const runs = sweepRuns(JSON.parse(text), 'movement-fashion-sweep.json');
 * ```
 */
export function sweepRuns(parsed: unknown, file: string): SweepRun[] {
  const runs = (parsed as { runs?: unknown } | null)?.runs;
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(runs))
    invalid(file, 'the file', 'is not a JSON object with a "runs" list.');
  if (runs.length === 0) invalid(file, '"runs"', 'is empty.');
  return runs.map((run: unknown, index) => {
    const entry = `runs[${index}]`;
    if (typeof run !== 'object' || run === null) invalid(file, entry, 'is not an object.');
    const { method, accuracy, remaining, target, seed, lambda, scope, distil } = run as Record<
      string,
      unknown
    >;
    if (typeof method !== 'string' || method.length === 0 || method.length > 64)
      invalid(file, `${entry}.method`, `must be a name of 1–64 characters, got ${JSON.stringify(method)}.`);
    const reached = share(file, `${entry}.remaining`, remaining);
    if (target !== undefined && (typeof target !== 'number' || !(target > 0 && target <= 1)))
      invalid(file, `${entry}.target`, `must be a number in (0, 1], got ${JSON.stringify(target)}.`);
    if (seed !== undefined && !Number.isInteger(seed))
      invalid(file, `${entry}.seed`, `must be an integer, got ${JSON.stringify(seed)}.`);
    if (lambda !== undefined && (typeof lambda !== 'number' || !(lambda >= 0 && Number.isFinite(lambda))))
      invalid(file, `${entry}.lambda`, `must be a finite number ≥ 0, got ${JSON.stringify(lambda)}.`);
    const series = `${method}${scope === 'global' ? ' global' : ''}${distil === true ? ' + KD' : ''}`;
    return {
      series,
      target: (target as number | undefined) ?? reached,
      seed: (seed as number | undefined) ?? null,
      lambda: (lambda as number | undefined) ?? null,
      remaining: reached,
      accuracy: share(file, `${entry}.accuracy`, accuracy),
    };
  });
}

/**
 * Reads sweep result files (untrusted): each at most {@link SWEEP_FILE_LIMIT} bytes, valid JSON,
 * runs as {@link sweepRuns} checks them. Runs of the same series, target and seed that appear in
 * two files are kept once (the first file wins), so overlapping result files can be drawn together;
 * runs at another λ are other runs.
 *
 * @throws FinepruneError `IO_FAILED` when a file cannot be read or is too large, `INVALID_DATA` when it is not a sweep
 *
 * @example
 * ```ts
 * const sweep = await readSweep(['results/movement-fashion-sweep.json', 'results/movement-fashion.json']);
 * ```
 */
export async function readSweep(files: readonly string[]): Promise<Sweep> {
  const runs: SweepRun[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    let text: string;
    try {
      const { size } = await stat(file);
      if (size > SWEEP_FILE_LIMIT)
        throw new Error(`${size} bytes, more than the ${SWEEP_FILE_LIMIT} allowed`);
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new FinepruneError({
        code: ErrorCodes.IO_FAILED,
        message: `${file} cannot be read as a sweep: ${(error as Error).message}`,
        fix: 'Pass an existing result file of the benchmarks (bench/results/*.json).',
        cause: error,
      });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_DATA,
        message: `${file} is not valid JSON: ${(error as Error).message}`,
        fix: 'Pass a result file written by the benchmarks, unmodified.',
        cause: error,
      });
    }
    for (const run of sweepRuns(parsed, path.basename(file))) {
      const key = `${run.series}|${run.target}|${run.lambda}|${run.seed}`;
      if (seen.has(key)) continue;
      seen.add(key);
      runs.push(run);
    }
  }
  return { files: [...files], runs };
}

/**
 * Whether a report target names a sweep result file rather than a run, checkpoint or model: a
 * `.json` file other than `model.json` and `run.json`.
 *
 * @example
 * ```ts
 * isSweepTarget('bench/results/movement-fashion-sweep.json'); // true
 * ```
 */
export function isSweepTarget(target: string): boolean {
  const name = path.basename(target);
  return name.endsWith('.json') && name !== 'model.json' && name !== 'run.json';
}

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
const sampleStd = (values: readonly number[]) => {
  if (values.length < 2) return 0;
  const average = mean(values);
  return Math.sqrt(values.reduce((sum, value) => sum + (value - average) ** 2, 0) / (values.length - 1));
};

/**
 * The lines of a sweep: one per series, a point per target and λ (mean and sample standard
 * deviation over its seeds), in decreasing order of remaining weights. Dense runs are a series like
 * any other.
 *
 * @example
 * ```ts
 * const lines = sweepLines(sweep); // Map { 'MaP' => [...], 'MvP' => [...] }
 * ```
 */
export function sweepLines(sweep: Sweep): Map<string, SweepPoint[]> {
  const grouped = new Map<string, Map<string, SweepRun[]>>();
  for (const run of sweep.runs) {
    const points = grouped.get(run.series) ?? new Map<string, SweepRun[]>();
    const key = `${run.target}|${run.lambda}`;
    points.set(key, [...(points.get(key) ?? []), run]);
    grouped.set(run.series, points);
  }
  const lines = new Map<string, SweepPoint[]>();
  for (const [series, targets] of grouped) {
    const points = [...targets.values()].map((runs) => {
      const remaining = runs.map((run) => run.remaining);
      const accuracy = runs.map((run) => run.accuracy);
      return {
        target: runs[0]!.target,
        lambda: runs[0]!.lambda,
        remaining: mean(remaining),
        remainingStd: sampleStd(remaining),
        accuracy: mean(accuracy),
        accuracyStd: sampleStd(accuracy),
        seeds: runs.length,
      };
    });
    lines.set(
      series,
      points.sort((left, right) => right.remaining - left.remaining),
    );
  }
  return lines;
}

const DENSE = 'dense';

/**
 * Accuracy against remaining weights across a sweep (Fig. 2 of Movement Pruning): one line per
 * method through the mean of its seeds at each target, a bar of ± one standard deviation, remaining
 * weights on a log axis; the dense runs are the dashed line.
 *
 * @example
 * ```ts
 * const svg = sweepPlot(await readSweep(['results/movement-fashion-sweep.json']));
 * ```
 */
export function sweepPlot(sweep: Sweep): string {
  const title = 'Accuracy (%) against remaining weights (%), mean over seeds';
  const lines = [...sweepLines(sweep)];
  const pruned = lines.filter(([series]) => series !== DENSE);
  const dense = lines.find(([series]) => series === DENSE)?.[1][0];
  const frame = defaultFrame(620, 380);
  const points = pruned.flatMap(([, line]) => line);
  const x = logScale(
    [Math.min(...points.map((point) => point.remaining * 100)) / 1.25, 100],
    [frame.left, frame.right],
  );
  const accuracies = points.flatMap((point) => [
    (point.accuracy - point.accuracyStd) * 100,
    (point.accuracy + point.accuracyStd) * 100,
  ]);
  if (dense) accuracies.push(dense.accuracy * 100);
  const y = linearScale(extent(accuracies), [frame.bottom, frame.top]);
  const marks: string[] = [];
  pruned.forEach(([series, line], index) => {
    const colour = PALETTE[index % PALETTE.length]!;
    const d = line
      .map(
        (point, at) =>
          `${at ? 'L' : 'M'}${x(point.remaining * 100).toFixed(1)},${y(point.accuracy * 100).toFixed(1)}`,
      )
      .join('');
    marks.push(
      `<path class="line series-${index}" d="${d}" fill="none" stroke="${colour}" stroke-width="1.6"/>`,
    );
    for (const point of line) {
      const cx = x(point.remaining * 100).toFixed(1);
      marks.push(
        `<line class="spread series-${index}" x1="${cx}" x2="${cx}" y1="${y((point.accuracy - point.accuracyStd) * 100).toFixed(1)}" y2="${y((point.accuracy + point.accuracyStd) * 100).toFixed(1)}" stroke="${colour}"/>`,
        `<circle class="mark series-${index}" cx="${cx}" cy="${y(point.accuracy * 100).toFixed(1)}" r="3.4" fill="${colour}"><title>${escapeHtml(
          `${series}${point.lambda === null ? '' : ` (λ = ${point.lambda})`} at ${(point.target * 100).toFixed(3).replace(/\.?0+$/, '')}% target: ${(point.accuracy * 100).toFixed(2)} ± ${(point.accuracyStd * 100).toFixed(2)}% accuracy at ${(point.remaining * 100).toFixed(2)}% remaining (${point.seeds} seed${point.seeds === 1 ? '' : 's'})`,
        )}</title></circle>`,
      );
    }
  });
  if (dense) {
    const py = y(dense.accuracy * 100).toFixed(1);
    marks.push(
      `<line class="reference" x1="${frame.left}" x2="${frame.right}" y1="${py}" y2="${py}" stroke="#555" stroke-dasharray="5 4"><title>${escapeHtml(`dense ${(dense.accuracy * 100).toFixed(2)}%`)}</title></line>`,
    );
  }
  return svg(
    'sweep',
    frame,
    points.length,
    axes(frame, x, y, 'remaining weights (%, log scale)', 'accuracy (%)') + marks.join(''),
    title,
  );
}

/**
 * The sweep's points as a table: series, target, remaining reached and accuracy (mean ± std), seeds.
 *
 * @example
 * ```ts
 * const html = sweepTable(sweep);
 * ```
 */
export function sweepTable(sweep: Sweep): string {
  const cell = (value: number, spread: number) =>
    `${(value * 100).toFixed(2)} ± ${(spread * 100).toFixed(2)}`;
  const rows = [...sweepLines(sweep)].flatMap(([series, line]) =>
    line.map(
      (point) =>
        `<tr><td>${escapeHtml(series)}</td><td class="number">${Number((point.target * 100).toPrecision(6))}%</td><td class="number">${point.lambda ?? '—'}</td><td class="number">${cell(point.remaining, point.remainingStd)}</td><td class="number">${cell(point.accuracy, point.accuracyStd)}</td><td class="number">${point.seeds}</td></tr>`,
    ),
  );
  return `<table><thead><tr><th>method</th><th>target</th><th>λ</th><th>remaining reached (%)</th><th>accuracy (%)</th><th>seeds</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/**
 * The legend of a sweep plot: the pruned series in drawing order (the dense line is labelled on
 * the plot itself).
 *
 * @example
 * ```ts
 * const html = sweepLegend(sweep);
 * ```
 */
export function sweepLegend(sweep: Sweep): string {
  return legend([...sweepLines(sweep).keys()].filter((series) => series !== DENSE));
}

/**
 * One self-contained HTML page for a sweep: the accuracy-against-remaining-weights plot (Fig. 2 of
 * Movement Pruning), its legend, the table of points and the files it was drawn from.
 *
 * @example
 * ```ts
 * await writeFileAtomic('fig2.html', renderSweepReport(await readSweep(files)));
 * ```
 */
export function renderSweepReport(sweep: Sweep, options: { title?: string } = {}): string {
  const title = options.title ?? 'fineprune sweep: accuracy against remaining weights';
  const files = sweep.files.map((file) => `<code>${escapeHtml(path.basename(file))}</code>`).join(', ');
  return htmlPage(
    title,
    `<p class="caption">Every run of ${files}: accuracy against the share of prunable weights kept, one line per method through the mean of its seeds at each target, ± one standard deviation (Fig. 2 of <i>Movement Pruning</i>); the dashed line is dense fine-tuning.</p>
${sweepLegend(sweep)}
${sweepPlot(sweep)}
<h2>Points</h2>
${sweepTable(sweep)}`,
  );
}
