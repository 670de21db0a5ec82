/**
 * Colours of the runs, in order; pruned weights are drawn in {@link PRUNED_GREY}.
 *
 * @example
 * ```ts
 * const colour = PALETTE[runIndex % PALETTE.length];
 * ```
 */
export const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
];
/**
 * The grey of pruned weights (Fig. 4b of Movement Pruning).
 *
 * @example
 * ```ts
 * `<circle fill="${PRUNED_GREY}" …/>`;
 * ```
 */
export const PRUNED_GREY = '#b9b9b9';

/**
 * Escapes text for HTML and SVG.
 *
 * @example
 * ```ts
 * escapeHtml('<a & b>'); // '&lt;a &amp; b&gt;'
 * ```
 */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/**
 * A linear map from a data domain to a pixel range.
 *
 * @example
 * ```ts
 * const x: Scale = linearScale([0, 1], [40, 400]);
 * ```
 */
export interface Scale {
  (value: number): number;
  domain: [number, number];
  ticks(count?: number): number[];
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

/**
 * A linear scale with "nice" ticks; a zero-width domain is widened so that it still draws.
 *
 * @example
 * ```ts
 * const x = linearScale([0, 100], [40, 400]);
 * x(50); // 220
 * ```
 */
export function linearScale(domain: [number, number], range: [number, number]): Scale {
  let [low, high] = domain;
  if (!Number.isFinite(low) || !Number.isFinite(high)) [low, high] = [0, 1];
  if (high - low < 1e-12) {
    const pad = Math.abs(low) > 0 ? Math.abs(low) * 0.1 : 1;
    low -= pad;
    high += pad;
  }
  const scale = ((value: number) =>
    range[0] + ((value - low) / (high - low)) * (range[1] - range[0])) as Scale;
  scale.domain = [low, high];
  scale.ticks = (count = 5) => {
    const step = niceStep(high - low, count);
    const ticks: number[] = [];
    for (let tick = Math.ceil(low / step) * step; tick <= high + step * 1e-9; tick += step) {
      ticks.push(Math.abs(tick) < step * 1e-9 ? 0 : Number(tick.toPrecision(12)));
    }
    return ticks;
  };
  return scale;
}

/**
 * A base-10 logarithmic scale over a positive domain, with ticks at 1, 2 and 5 of each decade
 * (only the powers of ten when that would give more than ten). A domain that is not positive and
 * finite is replaced by [1, 10]; a zero-width one is widened by a factor of 2 on each side.
 *
 * @example
 * ```ts
 * const x = logScale([1, 100], [0, 200]);
 * x(10); // 100
 * x.ticks(); // [1, 2, 5, 10, 20, 50, 100]
 * ```
 */
export function logScale(domain: [number, number], range: [number, number]): Scale {
  let [low, high] = domain;
  if (!(low > 0 && Number.isFinite(low) && high > 0 && Number.isFinite(high))) [low, high] = [1, 10];
  if (high / low < 1 + 1e-9) [low, high] = [low / 2, high * 2];
  const span = Math.log10(high) - Math.log10(low);
  const scale = ((value: number) =>
    range[0] + ((Math.log10(value) - Math.log10(low)) / span) * (range[1] - range[0])) as Scale;
  scale.domain = [low, high];
  scale.ticks = () => {
    const decades: number[] = [];
    for (let power = Math.floor(Math.log10(low)); power <= Math.ceil(Math.log10(high)); power += 1)
      decades.push(power);
    const within = (multipliers: number[]) =>
      decades
        .flatMap((power) =>
          multipliers.map((multiplier) => Number((multiplier * 10 ** power).toPrecision(12))),
        )
        .filter((tick) => tick >= low * (1 - 1e-9) && tick <= high * (1 + 1e-9));
    const fine = within([1, 2, 5]);
    return fine.length > 10 ? within([1]) : fine;
  };
  return scale;
}

/**
 * The extent of values, padded by a fraction on each side.
 *
 * @example
 * ```ts
 * extent([1, 3], 0.1); // [0.8, 3.2]
 * ```
 */
export function extent(values: readonly number[], pad = 0.05): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let low = Math.min(...finite);
  let high = Math.max(...finite);
  const span = high - low || Math.abs(high) || 1;
  low -= span * pad;
  high += span * pad;
  return [low, high];
}

function formatTick(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e4 || magnitude < 1e-3) return value.toExponential(0);
  return String(Number(value.toPrecision(4)));
}

/**
 * The plot area of a chart.
 *
 * @example
 * ```ts
 * const frame: Frame = defaultFrame(520, 320);
 * ```
 */
export interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/**
 * The default frame: 520 × 320 with room for axis labels.
 *
 * @example
 * ```ts
 * const frame = defaultFrame();
 * ```
 */
export function defaultFrame(width = 520, height = 320): Frame {
  return { width, height, left: 62, right: width - 16, top: 28, bottom: height - 46 };
}

/**
 * Axes, grid lines, tick labels and axis titles.
 *
 * @example
 * ```ts
 * axes(frame, x, y, 'remaining weights (%)', 'accuracy (%)');
 * ```
 */
export function axes(
  frame: Frame,
  x: Scale,
  y: Scale,
  xLabel: string,
  yLabel: string,
  xTicks?: number[],
): string {
  const parts: string[] = [];
  for (const tick of y.ticks(5)) {
    const py = y(tick).toFixed(1);
    parts.push(
      `<line class="grid" x1="${frame.left}" x2="${frame.right}" y1="${py}" y2="${py}"/>`,
      `<text class="tick" x="${frame.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${formatTick(tick)}</text>`,
    );
  }
  for (const tick of xTicks ?? x.ticks(6)) {
    const px = x(tick).toFixed(1);
    parts.push(
      `<line class="grid" x1="${px}" x2="${px}" y1="${frame.top}" y2="${frame.bottom}"/>`,
      `<text class="tick" x="${px}" y="${frame.bottom + 16}" text-anchor="middle">${formatTick(tick)}</text>`,
    );
  }
  parts.push(
    `<rect class="frame" x="${frame.left}" y="${frame.top}" width="${frame.right - frame.left}" height="${frame.bottom - frame.top}"/>`,
    `<text class="label" x="${(frame.left + frame.right) / 2}" y="${frame.height - 8}" text-anchor="middle">${escapeHtml(xLabel)}</text>`,
    `<text class="label" transform="translate(14 ${(frame.top + frame.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(yLabel)}</text>`,
  );
  return parts.join('');
}

/**
 * Wraps chart content in an `<svg>` tagged with its plot id and number of data marks; the report
 * test reads these attributes.
 *
 * @example
 * ```ts
 * svg('metric-vs-remaining', frame, 12, content, 'Accuracy against remaining weights');
 * ```
 */
export function svg(plot: string, frame: Frame, points: number, content: string, title: string): string {
  return `<svg data-plot="${plot}" data-points="${points}" viewBox="0 0 ${frame.width} ${frame.height}" width="${frame.width}" height="${frame.height}" role="img" aria-label="${escapeHtml(title)}" xmlns="http://www.w3.org/2000/svg"><title>${escapeHtml(title)}</title>${content}</svg>`;
}

/**
 * A legend row per series.
 *
 * @example
 * ```ts
 * legend(['magnitude', 'movement']);
 * ```
 */
export function legend(
  labels: readonly string[],
  extra: Array<{ label: string; colour: string }> = [],
): string {
  const items = labels.map(
    (label, index) =>
      `<button type="button" class="legend-item" data-series="${index}"><span class="swatch" style="background:${PALETTE[index % PALETTE.length]}"></span>${escapeHtml(label)}</button>`,
  );
  for (const item of extra) {
    items.push(
      `<span class="legend-item"><span class="swatch" style="background:${item.colour}"></span>${escapeHtml(item.label)}</span>`,
    );
  }
  return `<div class="legend">${items.join('')}</div>`;
}
