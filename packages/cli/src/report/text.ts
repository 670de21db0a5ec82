import type { LayerRow, ParameterSample } from '../run-record';

const BLOCKS = ' ▁▂▃▄▅▆▇█';

/**
 * A plain-text table: a header, a rule, the rows; the first `leftColumns` columns left-aligned, the
 * others right-aligned.
 *
 * @example
 * ```ts
 * textTable(['name', 'bytes'], [['w', '48']], 1);
 * ```
 */
export function textTable(header: string[], rows: string[][], leftColumns: number): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const format = (row: string[]) =>
    row
      .map((cell, column) =>
        column < leftColumns ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!),
      )
      .join('  ');
  return [format(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(format)].join(
    '\n',
  );
}

/**
 * The per-layer table of a report: parameter, shape, kept, total, sparsity, with a total row.
 *
 * @example
 * ```ts
 * console.log(layerTable(summary.layers));
 * ```
 */
export function layerTable(layers: readonly LayerRow[]): string {
  const rows = layers.map((row) => [
    row.name,
    `[${row.shape.join(', ')}]`,
    String(row.kept),
    String(row.total),
    `${(row.sparsity * 100).toFixed(2)}%`,
  ]);
  const kept = layers.reduce((sum, row) => sum + row.kept, 0);
  const total = layers.reduce((sum, row) => sum + row.total, 0);
  rows.push([
    'total',
    '',
    String(kept),
    String(total),
    `${(total ? (1 - kept / total) * 100 : 0).toFixed(2)}%`,
  ]);
  return textTable(['parameter', 'shape', 'kept', 'total', 'sparsity'], rows, 2);
}

/**
 * A one-line histogram of the kept weights of each parameter (block characters, one per bin), with
 * the value range: magnitude pruning shows a gap around 0.
 *
 * @example
 * ```ts
 * console.log(keptHistograms(summary.samples));
 * ```
 */
export function keptHistograms(samples: readonly ParameterSample[]): string {
  const width = Math.max(0, ...samples.map((sample) => sample.name.length));
  return samples
    .map((sample) => {
      const { counts, edges } = sample.keptHistogram;
      const peak = Math.max(1, ...counts);
      const bars = counts
        .map((count) => BLOCKS[count === 0 ? 0 : Math.max(1, Math.round((count / peak) * 8))])
        .join('');
      return `${sample.name.padEnd(width)}  ${edges[0]!.toFixed(3).padStart(7)} ${bars} ${edges.at(-1)!.toFixed(3)}`;
    })
    .join('\n');
}
