import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FinepruneError } from '@fineprune/core';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import { readSweep, sweepLines, sweepPlot, sweepTable } from '../src/report/sweep';
import { logScale } from '../src/report/svg';
import { captureIo, temporaryDirectory } from './support';

/** A result file of the movement-pruning benchmarks, as movement-fashion.ts writes its runs. */
function sweepFile(runs: unknown[], name = 'sweep.json'): string {
  const file = path.join(temporaryDirectory(), name);
  writeFileSync(file, JSON.stringify({ benchmark: 'movement-fashion', runs }));
  return file;
}

// MaP at 50% and 10% (one seed); MvP at 10% with two seeds (0.7, 0.9: mean 0.8, sample std 0.1414)
// and at 1.25%; dense at 100%. Accuracies span 60–100%, so the y extent is [58, 102] (5% padding).
const RUNS = [
  { method: 'dense', target: 1, seed: 1, accuracy: 1, remaining: 1 },
  { method: 'MaP', target: 0.5, seed: 1, accuracy: 0.8, remaining: 0.5 },
  { method: 'MaP', target: 0.1, seed: 1, accuracy: 0.6, remaining: 0.1 },
  { method: 'MvP', target: 0.1, seed: 1, accuracy: 0.7, remaining: 0.1 },
  { method: 'MvP', target: 0.1, seed: 2, accuracy: 0.9, remaining: 0.1 },
  { method: 'MvP', target: 0.0125, seed: 1, accuracy: 0.75, remaining: 0.0125 },
];

/** The points of the `d` attribute of the path of series `index`. */
function pathPoints(svg: string, index: number): Array<[number, number]> {
  const d = new RegExp(`<path class="line series-${index}" d="([^"]+)"`).exec(svg)![1]!;
  return [...d.matchAll(/[ML]([\d.]+),([\d.]+)/g)].map((match) => [Number(match[1]), Number(match[2])]);
}

describe('sweep report (Fig. 2 of Movement Pruning)', () => {
  it('maps a log scale by decades, with 1-2-5 ticks', () => {
    const x = logScale([1, 100], [0, 200]);
    expect(x(10)).toBeCloseTo(100, 10);
    expect(x(1)).toBeCloseTo(0, 10);
    expect(x(100)).toBeCloseTo(200, 10);
    expect(x.ticks()).toEqual([1, 2, 5, 10, 20, 50, 100]);
    // Four decades would give 13 ticks: only the powers of ten.
    expect(logScale([0.01, 100], [0, 1]).ticks()).toEqual([0.01, 0.1, 1, 10, 100]);
  });

  it('averages the seeds of each method and target, lines in decreasing remaining weights', async () => {
    const lines = sweepLines(await readSweep([sweepFile(RUNS)]));
    expect([...lines.keys()]).toEqual(['dense', 'MaP', 'MvP']);
    const mvp = lines.get('MvP')!;
    expect(mvp.map((point) => point.target)).toEqual([0.1, 0.0125]);
    expect(mvp[0]!.accuracy).toBeCloseTo(0.8, 12);
    expect(mvp[0]!.accuracyStd).toBeCloseTo(Math.SQRT2 / 10, 12); // √(((0.1)² + (0.1)²) / 1)
    expect(mvp[0]!.seeds).toBe(2);
    expect(lines.get('MaP')!.map((point) => point.remaining)).toEqual([0.5, 0.1]);
  });

  it('keeps runs of one target at two λ apart (SMvP and L0: λ, not the target, sets what they keep)', async () => {
    const lines = sweepLines(
      await readSweep([
        sweepFile([
          { method: 'L0', target: 0.03, seed: 1, lambda: 3e-5, accuracy: 0.87, remaining: 0.05 },
          { method: 'L0', target: 0.03, seed: 2, lambda: 3e-5, accuracy: 0.85, remaining: 0.06 },
          { method: 'L0', target: 0.03, seed: 1, lambda: 4.5e-5, accuracy: 0.83, remaining: 0.02 },
        ]),
      ]),
    );
    const points = lines.get('L0')!;
    expect(points.map((point) => [point.lambda, point.seeds])).toEqual([
      [3e-5, 2],
      [4.5e-5, 1],
    ]);
    expect(points[0]!.remaining).toBeCloseTo(0.055, 12);
    expect(points[0]!.accuracy).toBeCloseTo(0.86, 12);
  });

  it('draws SMvP and L0 at one target and two λ from two files as four points, each λ shown in full', async () => {
    // The Brown 3% rows of bench/README.md, shortened: SMvP at λ 1.66e-4 (two seeds: 3.1% and 2.9%
    // kept, mean 3.0%) and 1.97e-4 (2.4%); L0 at λ 4.7e-5 (2.7%) and 3e-5 (5.5%). The second file
    // repeats seed 1 of each method and target at the other λ: another run, not a duplicate.
    const first = sweepFile(
      [
        { method: 'SMvP', target: 0.03, seed: 1, lambda: 1.66e-4, accuracy: 0.28, remaining: 0.031 },
        { method: 'SMvP', target: 0.03, seed: 2, lambda: 1.66e-4, accuracy: 0.26, remaining: 0.029 },
        { method: 'L0', target: 0.03, seed: 1, lambda: 4.7e-5, accuracy: 0.25, remaining: 0.027 },
      ],
      'table.json',
    );
    const second = sweepFile(
      [
        { method: 'SMvP', target: 0.03, seed: 1, lambda: 1.97e-4, accuracy: 0.27, remaining: 0.024 },
        { method: 'L0', target: 0.03, seed: 1, lambda: 3e-5, accuracy: 0.265, remaining: 0.055 },
      ],
      'calibration.json',
    );
    const sweep = await readSweep([first, second]);
    expect(sweep.runs).toHaveLength(5);
    const lines = sweepLines(sweep);
    // Each line in decreasing remaining weights, one point per λ.
    expect(lines.get('SMvP')!.map((point) => [point.lambda, point.seeds])).toEqual([
      [1.66e-4, 2],
      [1.97e-4, 1],
    ]);
    expect(lines.get('SMvP')![0]!.remaining).toBeCloseTo(0.03, 12);
    expect(lines.get('SMvP')![0]!.accuracy).toBeCloseTo(0.27, 12);
    expect(lines.get('SMvP')![0]!.remainingStd).toBeCloseTo(Math.SQRT2 / 1000, 12); // √((0.001² + 0.001²) / 1)
    expect(lines.get('L0')!.map((point) => [point.lambda, point.remaining])).toEqual([
      [3e-5, 0.055],
      [4.7e-5, 0.027],
    ]);
    const plot = sweepPlot(sweep);
    expect(plot).toContain('data-points="4"');
    expect(pathPoints(plot, 0)).toHaveLength(2); // SMvP, the first series read
    expect(pathPoints(plot, 1)).toHaveLength(2);
    // The points' titles and the table name λ as the runs used it, not rounded.
    for (const lambda of ['0.000166', '0.000197', '0.000047', '0.00003'])
      expect(plot).toContain(`(λ = ${lambda})`);
    const table = sweepTable(sweep);
    expect(table).toContain('<td class="number">0.000197</td>');
    expect(table).toContain('<td class="number">0.000047</td>');
    expect(table.match(/<tr><td>SMvP<\/td><td class="number">3%<\/td>/g)).toHaveLength(2);
  });

  it('draws one line per method through the means, remaining weights on a log axis', async () => {
    const plot = sweepPlot(await readSweep([sweepFile(RUNS)]));
    // Frame 620 × 380: x from 62 to 604, y from 334 (bottom) to 28. The x domain is
    // [1.25 / 1.25, 100] = [1, 100], so 10% sits half-way: 62 + 542 / 2 = 333.
    // y maps [58, 102] onto [334, 28]: 80% → 334 − (22 / 44) · 306 = 181; 60% → 320.09.
    expect(plot).toContain('data-plot="sweep"');
    expect(plot).toContain('data-points="4"'); // MaP 2, MvP 2; dense is the reference line
    expect(pathPoints(plot, 0)).toEqual([
      [Number((62 + Math.log10(50) * 271).toFixed(1)), 181],
      [333, 320.1],
    ]);
    const mvp = pathPoints(plot, 1);
    expect(mvp[0]).toEqual([333, 181]); // the mean of 70% and 90%
    expect(mvp[1]![0]).toBeCloseTo(62 + Math.log10(1.25) * 271, 1);
    // The spread bar at 10% spans 80 ± 14.142 points: y from 82.65 to 279.35.
    expect(plot).toMatch(/<line class="spread series-1" x1="333.0" x2="333.0" y1="279.4" y2="82.6"/);
    // Dense: the dashed line at 100% → 334 − (42 / 44) · 306 = 41.9.
    expect(plot).toMatch(/<line class="reference" x1="62" x2="604" y1="41.9" y2="41.9"/);
    expect(plot.match(/<path class="line/g)).toHaveLength(2);
  });

  it('refuses files that are not sweeps, naming the file and the entry', async () => {
    const codeOf = async (file: string) => {
      const error = await readSweep([file]).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(FinepruneError.is(error)).toBe(true);
      return { code: (error as FinepruneError).code, message: (error as FinepruneError).message };
    };
    const badAccuracy = sweepFile([RUNS[1], { ...RUNS[2], accuracy: 1.5 }], 'bad-accuracy.json');
    const accuracy = await codeOf(badAccuracy);
    expect(accuracy.code).toBe('INVALID_DATA');
    expect(accuracy.message).toContain(
      'bad-accuracy.json: runs[1].accuracy must be a number in [0, 1], got 1.5.',
    );
    expect((await codeOf(sweepFile([{ ...RUNS[1], method: 'x'.repeat(65) }]))).message).toMatch(
      /runs\[0\]\.method must be a name of 1–64 characters/,
    );
    expect((await codeOf(sweepFile([]))).message).toMatch(/"runs" is empty/);
    expect((await codeOf(sweepFile([{ ...RUNS[1], lambda: -1 }]))).message).toMatch(
      /runs\[0\]\.lambda must be a finite number ≥ 0/,
    );
    const notJson = path.join(temporaryDirectory(), 'broken.json');
    writeFileSync(notJson, '{"runs": [');
    expect((await codeOf(notJson)).code).toBe('INVALID_DATA');
    expect((await codeOf(path.join(temporaryDirectory(), 'missing.json'))).code).toBe('IO_FAILED');
  });

  it('fineprune report <sweep.json> --compare … --html draws every file, runs of both kept once', async () => {
    const first = sweepFile(RUNS.slice(0, 3), 'first.json');
    // The second file repeats MaP at 10% seed 1 with another accuracy: the first file's run wins.
    const second = sweepFile([{ ...RUNS[2], accuracy: 0.1 }, ...RUNS.slice(3)], 'second.json');
    const html = path.join(temporaryDirectory(), 'fig2.html');
    const io = captureIo();
    expect(await main(['report', first, '--compare', second, '--html', html, '--json'], io)).toBe(
      ExitCodes.OK,
    );
    const printed = JSON.parse(io.out()) as {
      kind: string;
      lines: Record<string, Array<{ accuracy: number }>>;
    };
    expect(printed.kind).toBe('sweep');
    expect(printed.lines.MaP!.map((point) => point.accuracy)).toEqual([0.8, 0.6]);
    const page = await readFile(html, 'utf8');
    expect(page).toContain('data-plot="sweep"');
    expect(page).toContain('data-points="4"');
    expect(page).not.toMatch(/(src|href)=["']?https?:/);
    expect(page).toContain('<code>first.json</code>, <code>second.json</code>');
    const bad = captureIo();
    expect(await main(['report', sweepFile([{ method: 'MaP' }], 'no-accuracy.json')], bad)).not.toBe(
      ExitCodes.OK,
    );
    expect(bad.err()).toMatch(/no-accuracy\.json: runs\[0\]\.remaining must be a number in \[0, 1\]/);
  });
});
