import { encoderRemainingPlot } from './encoder-figure';
import { encoderRemainingTable } from './encoder-table';
import { shrinkSection } from './shrink-report';
import { structuredSection } from './structure-report';
import { type RunRecord, totalLossChange } from '../run-record';
import {
  axes,
  defaultFrame,
  escapeHtml,
  extent,
  type Frame,
  legend,
  linearScale,
  PALETTE,
  PRUNED_GREY,
  svg,
} from './svg';

const colour = (index: number) => PALETTE[index % PALETTE.length]!;
const percent = (value: number) => `${(value * 100).toFixed(2)}%`;

/** Where a plot's data is missing: an empty frame with a note, `data-points="0"`. */
function emptyPlot(plot: string, title: string, note: string): string {
  const frame = defaultFrame();
  return svg(
    plot,
    frame,
    0,
    `<rect class="frame" x="${frame.left}" y="${frame.top}" width="${frame.right - frame.left}" height="${frame.bottom - frame.top}"/><text class="note" x="${frame.width / 2}" y="${frame.height / 2}" text-anchor="middle">${escapeHtml(note)}</text>`,
    title,
  );
}

/**
 * Remaining weights per layer (Fig. 6 of Movement Pruning): one bar per run for each prunable
 * parameter, in the order of the first run's layers.
 *
 * @example
 * ```ts
 * const svg = remainingPerLayerPlot([record, otherRecord]);
 * ```
 */
export function remainingPerLayerPlot(runs: readonly RunRecord[]): string {
  const title = 'Remaining weights per layer (%)';
  const layers = runs[0]?.layers ?? [];
  if (layers.length === 0) return emptyPlot('remaining-per-layer', title, 'no prunable parameters');
  const frame: Frame = defaultFrame(Math.max(520, 90 + layers.length * Math.max(36, runs.length * 14)), 340);
  frame.bottom = frame.height - 70;
  const y = linearScale([0, 100], [frame.bottom, frame.top]);
  const band = (frame.right - frame.left) / layers.length;
  const barWidth = Math.max(3, (band * 0.8) / runs.length);
  const marks: string[] = [];
  let points = 0;
  layers.forEach((layer, layerIndex) => {
    runs.forEach((run, runIndex) => {
      const row = run.layers.find((candidate) => candidate.name === layer.name);
      if (!row) return;
      const remaining = row.total ? (row.kept / row.total) * 100 : 0;
      const x0 = frame.left + layerIndex * band + band * 0.1 + runIndex * barWidth;
      const top = y(remaining);
      points += 1;
      marks.push(
        `<rect class="mark series-${runIndex}" x="${x0.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 1).toFixed(1)}" height="${Math.max(0.5, frame.bottom - top).toFixed(1)}" fill="${colour(runIndex)}"><title>${escapeHtml(`${run.name} ${layer.name}: ${remaining.toFixed(2)}% kept (${row.kept}/${row.total})`)}</title></rect>`,
      );
    });
    const cx = frame.left + (layerIndex + 0.5) * band;
    marks.push(
      `<text class="tick" transform="translate(${cx.toFixed(1)} ${frame.bottom + 10}) rotate(30)" text-anchor="start">${escapeHtml(layer.name)}</text>`,
    );
  });
  const axis = axes(
    frame,
    linearScale([0, 1], [frame.left, frame.right]),
    y,
    '',
    'remaining weights (%)',
    [],
  );
  return svg('remaining-per-layer', frame, points, axis + marks.join(''), title);
}

/**
 * Each weight against its score, pruned weights in grey (Fig. 4b of Movement Pruning): one chart
 * per sampled parameter of the run.
 *
 * @example
 * ```ts
 * const charts = weightsVersusScoresPlots(record).join('');
 * ```
 */
export function weightsVersusScoresPlots(run: RunRecord | undefined): string[] {
  const title = (name: string, source: string) => `Weights against scores: ${name} (${source} scores)`;
  if (!run || run.samples.length === 0) {
    return [emptyPlot('weights-vs-scores', 'Weights against scores', 'no sampled parameters')];
  }
  return run.samples.slice(0, 6).map((sample) => {
    const frame = defaultFrame(420, 320);
    const x = linearScale(extent(sample.weights), [frame.left, frame.right]);
    const y = linearScale(extent(sample.scores), [frame.bottom, frame.top]);
    const pruned: string[] = [];
    const kept: string[] = [];
    sample.weights.forEach((weight, index) => {
      const dot = `<circle class="mark" cx="${x(weight).toFixed(1)}" cy="${y(sample.scores[index]!).toFixed(1)}" r="1.6"/>`;
      (sample.kept[index] ? kept : pruned).push(dot);
    });
    const content =
      axes(frame, x, y, 'weight W', `score S (${sample.scoreSource})`) +
      `<g fill="${PRUNED_GREY}" class="pruned">${pruned.join('')}</g><g fill="${colour(0)}" class="kept">${kept.join('')}</g>`;
    return svg(
      'weights-vs-scores',
      frame,
      sample.weights.length,
      content,
      title(sample.name, sample.scoreSource),
    );
  });
}

/**
 * Distribution of the kept weights of one parameter (Fig. 4a of Movement Pruning), one outline per
 * run, normalised to a density so runs of different sparsity compare.
 *
 * @example
 * ```ts
 * const svg = keptDistributionPlot([magnitudeRun, movementRun]);
 * ```
 */
export function keptDistributionPlot(runs: readonly RunRecord[]): string {
  const name = runs[0]?.samples[0]?.name;
  const title = `Distribution of the remaining weights${name ? `: ${name}` : ''}`;
  const series = runs
    .map((run, index) => ({ run, index, sample: run.samples.find((sample) => sample.name === name) }))
    .filter((entry) => entry.sample?.keptHistogram.counts.some((count) => count > 0));
  if (!name || series.length === 0) return emptyPlot('kept-weight-distribution', title, 'no kept weights');
  const frame = defaultFrame();
  const densities = series.map(({ sample }) => {
    const { edges, counts } = sample!.keptHistogram;
    const total = counts.reduce((sum, count) => sum + count, 0) || 1;
    return counts.map((count, bin) => count / total / (edges[bin + 1]! - edges[bin]! || 1));
  });
  const allEdges = series.flatMap(({ sample }) => sample!.keptHistogram.edges);
  const x = linearScale(extent(allEdges, 0), [frame.left, frame.right]);
  const y = linearScale([0, Math.max(...densities.flat()) * 1.05], [frame.bottom, frame.top]);
  let points = 0;
  const paths = series.map(({ sample, index }, seriesIndex) => {
    const { edges } = sample!.keptHistogram;
    const density = densities[seriesIndex]!;
    let d = `M${x(edges[0]!).toFixed(1)},${y(0).toFixed(1)}`;
    density.forEach((value, bin) => {
      d += `L${x(edges[bin]!).toFixed(1)},${y(value).toFixed(1)}L${x(edges[bin + 1]!).toFixed(1)},${y(value).toFixed(1)}`;
      if (value > 0) points += 1;
    });
    d += `L${x(edges.at(-1)!).toFixed(1)},${y(0).toFixed(1)}`;
    return `<path class="mark series-${index}" d="${d}" fill="${colour(index)}" fill-opacity="0.18" stroke="${colour(index)}" stroke-width="1.5"/>`;
  });
  return svg(
    'kept-weight-distribution',
    frame,
    points,
    axes(frame, x, y, 'weight value', 'density') + paths.join(''),
    title,
  );
}

/**
 * A task metric against the remaining weights across runs (Fig. 2 of Movement Pruning): every
 * evaluation of every run, joined in order of remaining weights, and the dense accuracy.
 *
 * @example
 * ```ts
 * const svg = metricVersusRemainingPlot(runs);
 * ```
 */
export function metricVersusRemainingPlot(runs: readonly RunRecord[]): string {
  const title = 'Accuracy (%) against remaining weights (%)';
  const series = runs.map((run) => {
    const points = [...run.evaluations];
    if (run.dense)
      points.push({ step: run.dense.step, remaining: 1, accuracy: run.dense.accuracy, loss: run.dense.loss });
    return points
      .filter((point) => Number.isFinite(point.accuracy))
      .sort((left, right) => left.remaining - right.remaining);
  });
  const all = series.flat();
  if (all.length === 0) return emptyPlot('metric-vs-remaining', title, 'no evaluations');
  const frame = defaultFrame();
  const x = linearScale(extent(all.map((point) => point.remaining * 100)), [frame.left, frame.right]);
  const y = linearScale(extent(all.map((point) => point.accuracy * 100)), [frame.bottom, frame.top]);
  const marks: string[] = [];
  series.forEach((points, index) => {
    if (points.length > 1) {
      const d = points
        .map(
          (point, at) =>
            `${at ? 'L' : 'M'}${x(point.remaining * 100).toFixed(1)},${y(point.accuracy * 100).toFixed(1)}`,
        )
        .join('');
      marks.push(
        `<path class="line series-${index}" d="${d}" fill="none" stroke="${colour(index)}" stroke-width="1.5"/>`,
      );
    }
    for (const point of points) {
      marks.push(
        `<circle class="mark series-${index}" cx="${x(point.remaining * 100).toFixed(1)}" cy="${y(point.accuracy * 100).toFixed(1)}" r="3.2" fill="${colour(index)}"><title>${escapeHtml(`${runs[index]!.name} step ${point.step}: ${percent(point.accuracy)} at ${percent(point.remaining)} remaining`)}</title></circle>`,
      );
    }
  });
  const dense = runs.find((run) => run.dense)?.dense;
  if (dense) {
    const py = y(dense.accuracy * 100).toFixed(1);
    marks.push(
      `<line class="reference" x1="${frame.left}" x2="${frame.right}" y1="${py}" y2="${py}" stroke="#555" stroke-dasharray="5 4"><title>dense ${percent(dense.accuracy)}</title></line>`,
    );
  }
  return svg(
    'metric-vs-remaining',
    frame,
    all.length,
    axes(frame, x, y, 'remaining weights (%)', 'test accuracy (%)') + marks.join(''),
    title,
  );
}

/**
 * Spearman's rank correlation of two equally long lists (average ranks for ties).
 *
 * @example
 * ```ts
 * spearmanRho([1, 2, 3], [10, 20, 30]); // 1
 * ```
 */
export function spearmanRho(left: readonly number[], right: readonly number[]): number {
  const rank = (values: readonly number[]) => {
    const order = values.map((value, index) => ({ value, index })).sort((a, b) => a.value - b.value);
    const ranks = new Array<number>(values.length);
    for (let start = 0; start < order.length; ) {
      let end = start;
      while (end + 1 < order.length && order[end + 1]!.value === order[start]!.value) end += 1;
      for (let at = start; at <= end; at++) ranks[order[at]!.index] = (start + end) / 2;
      start = end + 1;
    }
    return ranks;
  };
  const a = rank(left);
  const b = rank(right);
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const ma = mean(a);
  const mb = mean(b);
  let covariance = 0;
  let va = 0;
  let vb = 0;
  for (let index = 0; index < a.length; index++) {
    covariance += (a[index]! - ma) * (b[index]! - mb);
    va += (a[index]! - ma) ** 2;
    vb += (b[index]! - mb) ** 2;
  }
  return va && vb ? covariance / Math.sqrt(va * vb) : Number.NaN;
}

/**
 * ΔL(θ, Δθ) against the validation error gap after fine-tuning (Fig. 3 of *Revisiting Loss
 * Modelling*): one point per run that measured both (pruning ΔL at its mask updates, and the dense
 * accuracy before pruning), with Spearman's ρ over the points.
 *
 * @example
 * ```ts
 * const svg = lossChangeVersusGapPlot(stagedRuns);
 * ```
 */
export function lossChangeVersusGapPlot(runs: readonly RunRecord[]): string {
  const title = 'ΔL(θ, Δθ) against the validation error gap after fine-tuning';
  const points = runs
    .map((run, index) => ({
      run,
      index,
      deltaLoss: totalLossChange(run.lossChanges),
      gap: run.dense ? (run.dense.accuracy - run.final.accuracy) * 100 : Number.NaN,
    }))
    .filter(
      (point) =>
        point.run.lossChanges.length > 0 && Number.isFinite(point.gap) && Number.isFinite(point.deltaLoss),
    );
  if (points.length === 0)
    return emptyPlot('loss-change-vs-gap', title, 'no run measured ΔL and a dense baseline');
  const frame = defaultFrame();
  const x = linearScale(extent(points.map((point) => point.deltaLoss)), [frame.left, frame.right]);
  const y = linearScale(extent(points.map((point) => point.gap)), [frame.bottom, frame.top]);
  const marks = points.map(
    (point) =>
      `<circle class="mark series-${point.index}" cx="${x(point.deltaLoss).toFixed(1)}" cy="${y(point.gap).toFixed(1)}" r="4.5" fill="${colour(point.index)}"><title>${escapeHtml(`${point.run.name}: ΔL ${point.deltaLoss.toFixed(4)}, gap ${point.gap.toFixed(2)} points`)}</title></circle>`,
  );
  const rho =
    points.length >= 3
      ? spearmanRho(
          points.map((point) => point.deltaLoss),
          points.map((point) => point.gap),
        )
      : Number.NaN;
  if (Number.isFinite(rho)) {
    marks.push(
      `<text class="note" x="${frame.right}" y="${frame.top - 8}" text-anchor="end">Spearman ρ = ${rho.toFixed(2)} (${points.length} runs)</text>`,
    );
  }
  return svg(
    'loss-change-vs-gap',
    frame,
    points.length,
    axes(
      frame,
      x,
      y,
      'ΔL(θ, Δθ) summed over mask updates',
      'validation error gap after fine-tuning (points)',
    ) + marks.join(''),
    title,
  );
}

function layerTable(run: RunRecord): string {
  const rows = run.layers
    .map(
      (row) =>
        `<tr><td>${escapeHtml(row.name)}</td><td>[${row.shape.join(', ')}]</td><td class="number">${row.kept}</td><td class="number">${row.total}</td><td class="number">${percent(row.sparsity)}</td></tr>`,
    )
    .join('');
  const kept = run.layers.reduce((sum, row) => sum + row.kept, 0);
  const total = run.layers.reduce((sum, row) => sum + row.total, 0);
  return `<table><thead><tr><th>parameter</th><th>shape</th><th>kept</th><th>total</th><th>sparsity</th></tr></thead><tbody>${rows}<tr class="total"><td>total</td><td></td><td class="number">${kept}</td><td class="number">${total}</td><td class="number">${percent(total ? 1 - kept / total : 0)}</td></tr></tbody></table>`;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1120px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 6px}p.caption{color:#555;margin:2px 0 8px;max-width:860px}
.grid-plots{display:flex;flex-wrap:wrap;gap:12px}svg{background:#fff;border:1px solid #e3e3e3;border-radius:4px;max-width:100%;height:auto}
svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#999}svg .tick{font-size:10px;fill:#555}svg .label{font-size:12px;fill:#333}svg .note{font-size:12px;fill:#777}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}td.number{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:600}
.legend{display:flex;flex-wrap:wrap;gap:6px;margin:6px 0}.legend-item{display:inline-flex;align-items:center;gap:6px;font:12px system-ui;background:#f6f6f6;border:1px solid #ddd;border-radius:12px;padding:2px 10px;cursor:pointer}
.legend-item.off{opacity:.35}.swatch{width:10px;height:10px;border-radius:50%;display:inline-block}.summary td{border:none;padding:1px 12px 1px 0}
.hidden-series{display:none}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:8px 20px}.card h2{margin-top:18px}`;

const SCRIPT = `
(function(){
  var plots=document.querySelectorAll('svg[data-plot]');
  var summary={};
  plots.forEach(function(plot){
    var id=plot.getAttribute('data-plot');
    var marks=plot.querySelectorAll('.mark').length;
    summary[id]=(summary[id]||0)+marks;
  });
  document.documentElement.setAttribute('data-rendered',JSON.stringify(summary));
  document.querySelectorAll('button.legend-item').forEach(function(button){
    button.addEventListener('click',function(){
      var series=button.getAttribute('data-series');
      var off=button.classList.toggle('off');
      document.querySelectorAll('.series-'+series).forEach(function(node){node.classList.toggle('hidden-series',off);});
    });
  });
})();`;

/**
 * Options of {@link renderHtmlReport}.
 *
 * @example
 * ```ts
 * renderHtmlReport(runs, { title: 'MNIST, 90% sparsity' } satisfies HtmlReportOptions);
 * ```
 */
export interface HtmlReportOptions {
  title?: string;
}

/** An encoder's remaining weights per layer and projection (Fig. 6), as a chart and a table; '' for other models. */
function encoderSection(run: RunRecord): string {
  const table = encoderRemainingTable(run.layers);
  return table
    ? `<h2>Encoder: remaining weights per layer and projection</h2>
<p class="caption">Q, K, V and the attention output (AO), the intermediate (I) and output (O) feed-forward matrices of each layer (Fig. 6 of <i>Movement Pruning</i>: its global first-order methods keep the lowest layers denser than the highest).</p>
${encoderRemainingPlot(run.layers, run.name)}
<pre>${escapeHtml(table)}</pre>`
    : '';
}

/**
 * One self-contained HTML page (inline SVG, CSS and script; no network) with the papers' plots for
 * a run, compared with other runs: remaining weights per layer (Fig. 6 of Movement Pruning),
 * weights against scores with pruned weights in grey (Fig. 4b), the distribution of the kept
 * weights (Fig. 4a), accuracy against remaining weights across runs (Fig. 2), and ΔL against the
 * gap after fine-tuning (Fig. 3 of Revisiting Loss Modelling). The first run is the one detailed.
 *
 * @example
 * ```ts
 * await writeFile('report.html', renderHtmlReport([record, ...otherRuns]));
 * ```
 */
export function renderHtmlReport(runs: readonly RunRecord[], options: HtmlReportOptions = {}): string {
  const run = runs[0];
  const title = options.title ?? (run ? `fineprune report: ${run.name}` : 'fineprune report');
  const labels = runs.map((entry) => `${entry.name} (${entry.method})`);
  const summary = run
    ? `<table class="summary"><tr><td>method</td><td>${escapeHtml(run.method)}</td></tr><tr><td>steps</td><td>${run.steps} (seed ${run.seed}, ${escapeHtml(run.backend)})</td></tr><tr><td>remaining weights</td><td>${percent(run.final.remaining)}</td></tr><tr><td>test accuracy</td><td>${percent(run.final.accuracy)}${run.dense ? ` (dense ${percent(run.dense.accuracy)})` : ''}</td></tr><tr><td>ΔL over mask updates</td><td>${run.lossChanges.length ? totalLossChange(run.lossChanges).toFixed(4) : '—'}</td></tr><tr><td>training time</td><td>${run.seconds.toFixed(1)} s</td></tr></table>`
    : '<p>No run.</p>';
  return htmlPage(
    title,
    `${summary}
${legend(labels)}
<div class="cards">
<section class="card"><h2>Remaining weights per layer</h2>
<p class="caption">Share of each matrix kept at the end of the run (Fig. 6 of <i>Movement Pruning</i>). Global methods allocate sparsity unevenly across layers.</p>
${remainingPerLayerPlot(runs)}</section>
<section class="card"><h2>Accuracy against remaining weights</h2>
<p class="caption">Test accuracy at every evaluation of every run against the share of weights kept (Fig. 2 of <i>Movement Pruning</i>); the dashed line is the dense model.</p>
${metricVersusRemainingPlot(runs)}</section>
<section class="card"><h2>Distribution of the remaining weights</h2>
<p class="caption">Density of the kept weights of one matrix (Fig. 4a of <i>Movement Pruning</i>): magnitude pruning leaves two clusters away from 0, movement pruning a smoother spread.</p>
${keptDistributionPlot(runs)}</section>
<section class="card"><h2>ΔL against the gap after fine-tuning</h2>
<p class="caption">For staged criteria: the loss change caused by pruning, ΔL(θ, Δθ), summed over the run's mask updates, against the validation error gap to the dense model after fine-tuning, one point per run (Fig. 3 of <i>Revisiting Loss Modelling for Unstructured Pruning</i>).</p>
${lossChangeVersusGapPlot(runs)}</section>
</div>
<h2>Weights against scores</h2>
<p class="caption">Each sampled weight of the first run against its importance score; pruned weights in grey (Fig. 4b of <i>Movement Pruning</i>).</p>
<div class="grid-plots">${weightsVersusScoresPlots(run).join('')}</div>
${run ? `<h2>Layers</h2>${layerTable(run)}${encoderSection(run)}${structuredSection(run)}${shrinkSection(run)}` : ''}`,
  );
}

/**
 * A self-contained HTML page (inline CSS and script, no network; the content security policy
 * forbids any other source) with a heading; the script makes legend buttons toggle their series
 * and records the marks drawn per plot in `data-rendered`.
 *
 * @example
 * ```ts
 * const page = htmlPage('Sweep', sweepPlot(sweep));
 * ```
 */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
<script>${SCRIPT}</script>
</body></html>
`;
}
