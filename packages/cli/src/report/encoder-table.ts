import type { LayerRow } from '../run-record';
import { textTable } from './text';

/** The prunable projections of a BERT layer, in the order of Fig. 6 of Movement Pruning. */
const PROJECTIONS = [
  ['Q', 'attention/query'],
  ['K', 'attention/key'],
  ['V', 'attention/value'],
  ['AO', 'attention/output'],
  ['I', 'ffn/intermediate'],
  ['O', 'ffn/output'],
] as const;

const ENCODER_KERNEL =
  /^layer_(\d+)\/(attention\/(?:query|key|value|output)|ffn\/(?:intermediate|output))\/kernel$/;

/** Kept and total weights. */
interface Count {
  kept: number;
  total: number;
}

function percent(kept: number, total: number): string {
  return total === 0 ? '' : `${((kept / total) * 100).toFixed(2)}%`;
}

/**
 * The kept and total weights of one projection of one encoder layer.
 *
 * @example
 * ```ts
 * const cell: EncoderCell = { layer: 0, projection: 'Q', kept: 10, total: 100 };
 * ```
 */
export interface EncoderCell extends Count {
  layer: number;
  /** Q, K, V, AO (attention output), I (intermediate) or O (output). */
  projection: (typeof PROJECTIONS)[number][0];
}

/**
 * The short names of an encoder layer's projections, in the order of Fig. 6 of Movement Pruning.
 *
 * @example
 * ```ts
 * ENCODER_PROJECTIONS; // ['Q', 'K', 'V', 'AO', 'I', 'O']
 * ```
 */
export const ENCODER_PROJECTIONS: ReadonlyArray<EncoderCell['projection']> = PROJECTIONS.map(
  ([short]) => short,
);

/**
 * The encoder projections among a run's layer rows (`layer_<i>/attention/query/kernel`, …): the
 * layer indices in order and one cell per projection found. Undefined when there is none.
 *
 * @example
 * ```ts
 * const encoder = encoderRemaining(record.layers);
 * for (const cell of encoder?.cells ?? []) console.log(cell.layer, cell.projection, cell.kept / cell.total);
 * ```
 */
export function encoderRemaining(
  layers: readonly LayerRow[],
): { layers: number[]; cells: EncoderCell[] } | undefined {
  const cells: EncoderCell[] = [];
  for (const row of layers) {
    const match = ENCODER_KERNEL.exec(row.name);
    if (!match) continue;
    const projection = PROJECTIONS.find(([, name]) => name === match[2])![0];
    cells.push({ layer: Number(match[1]), projection, kept: row.kept, total: row.total });
  }
  if (cells.length === 0) return undefined;
  return { layers: [...new Set(cells.map((cell) => cell.layer))].sort((a, b) => a - b), cells };
}

/**
 * Remaining weights of an encoder per layer and per projection (Fig. 6 of Movement Pruning): one
 * row per layer, one column per projection (Q, K, V, attention output, intermediate, output) and
 * the layer's share; a last row per projection over all layers. Undefined when no parameter is a
 * BERT projection kernel (`layer_<i>/attention/query/kernel`, …).
 *
 * @example
 * ```ts
 * const table = encoderRemainingTable(record.layers);
 * if (table) console.log(table);
 * ```
 */
export function encoderRemainingTable(layers: readonly LayerRow[]): string | undefined {
  const encoder = encoderRemaining(layers);
  if (encoder === undefined) return undefined;
  const cell = (layer: number, projection: string) =>
    encoder.cells.find((entry) => entry.layer === layer && entry.projection === projection);
  const sum = (entries: Array<Count | undefined>): Count => {
    const all: Count = { kept: 0, total: 0 };
    for (const entry of entries) {
      all.kept += entry?.kept ?? 0;
      all.total += entry?.total ?? 0;
    }
    return all;
  };
  const ordered = encoder.layers;
  const rows = ordered.map((layer) => {
    const entries = ENCODER_PROJECTIONS.map((projection) => cell(layer, projection));
    const all = sum(entries);
    return [
      `layer ${layer}`,
      ...entries.map((entry) => (entry ? percent(entry.kept, entry.total) : '')),
      percent(all.kept, all.total),
    ];
  });
  const columns = ENCODER_PROJECTIONS.map((projection) =>
    sum(ordered.map((layer) => cell(layer, projection))),
  );
  const everything = sum(columns);
  rows.push([
    'all layers',
    ...columns.map((entry) => percent(entry.kept, entry.total)),
    percent(everything.kept, everything.total),
  ]);
  return textTable(['remaining', ...ENCODER_PROJECTIONS, 'layer'], rows, 1);
}
