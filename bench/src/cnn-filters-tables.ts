/**
 * The Markdown table of the CNN filter-pruning benchmark (`cnn-filters.ts`) from its result file:
 * per method and share of removed filters, the filters kept, test accuracy (mean ± std over the
 * seeds) and its drop from the run of the same method and seed with no filter removed (the same
 * training), the shrunk model's weight file against the dense one,
 * and the measured speed-ups (inference at batch 1 and 16, one training step), each the mean over
 * the seeds of the per-run median-block ratio (fastest-block ratio in brackets).
 *
 *   cd bench && npx tsx --conditions=source src/cnn-filters-tables.ts [results/cnn-filters.json]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mean, RESULTS_DIR, runIfScript, std } from './harness';

interface Timing {
  speedUp: number;
  bestSpeedUp: number;
  denseMs: number;
  shrunkMs: number;
}

interface Run {
  seed: number;
  method: string;
  filterSparsity: number;
  structures: Array<{ name: string; count: number; kept: number }>;
  accuracy: number;
  maskedAccuracy: number;
  sizeRatio: number;
  weightBytes: number;
  inference: { batch1: Timing; batch16: Timing };
  trainingStep: Timing;
}

interface Result {
  dense: Array<{ seed: number; accuracy: number; weightBytes: number }>;
  runs: Run[];
}

const percent = (values: number[]) =>
  `${(mean(values) * 100).toFixed(2)} ± ${(std(values) * 100).toFixed(2)}`;
/** Mean over the seeds of the median-block speed-up, and of the fastest-block speed-up in brackets. */
const times = (timings: Timing[]) =>
  `×${mean(timings.map((timing) => timing.speedUp)).toFixed(2)} (×${mean(timings.map((timing) => timing.bestSpeedUp)).toFixed(2)})`;

/**
 * The table as Markdown lines.
 *
 * @example
 * ```ts
 * console.log(cnnFiltersTable(JSON.parse(readFileSync('results/cnn-filters.json', 'utf8'))).join('\n'));
 * ```
 */
export function cnnFiltersTable(result: Result): string[] {
  const dense = result.dense;
  const lines = [
    '| method | filters removed | conv1 / conv2 filters kept | accuracy % (mean ± std) | drop from the 0% run (points) | weights file | speed-up batch 1 | speed-up batch 16 | training step speed-up | seeds |',
    '|---|---|---|---|---|---|---|---|---|---|',
    `| dense, before the extra epoch | — | 16 / 32 | ${percent(dense.map((run) => run.accuracy))} | — | ${(mean(dense.map((run) => run.weightBytes)) / 1024).toFixed(0)} KiB | — | — | — | ${dense.length} |`,
  ];
  /** The accuracy of the 0% run of the same method and seed: the same training, nothing removed. */
  const reference = (run: Run) =>
    result.runs.find(
      (other) => other.method === run.method && other.seed === run.seed && other.filterSparsity === 0,
    )?.accuracy ?? Number.NaN;
  const keys = [...new Set(result.runs.map((run) => `${run.method}|${run.filterSparsity}`))];
  for (const key of keys) {
    const runs = result.runs.filter((run) => `${run.method}|${run.filterSparsity}` === key);
    const first = runs[0]!;
    const kept = first.structures
      .filter((entry) => entry.name.endsWith('/filters'))
      .map((entry) => entry.kept)
      .join(' / ');
    lines.push(
      `| ${first.method} | ${first.filterSparsity * 100}% | ${kept} | ${percent(runs.map((run) => run.accuracy))} | ${(mean(runs.map((run) => reference(run) - run.accuracy)) * 100).toFixed(2)} | ${(mean(runs.map((run) => run.sizeRatio)) * 100).toFixed(1)}% (${(mean(runs.map((run) => run.weightBytes)) / 1024).toFixed(0)} KiB) | ${times(runs.map((run) => run.inference.batch1))} | ${times(runs.map((run) => run.inference.batch16))} | ${times(runs.map((run) => run.trainingStep))} | ${runs.length} |`,
    );
  }
  return lines;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const path = argv[0] ?? join(RESULTS_DIR, 'cnn-filters.json');
  console.log(cnnFiltersTable(JSON.parse(readFileSync(path, 'utf8')) as Result).join('\n'));
}

runIfScript(import.meta.url, main);
