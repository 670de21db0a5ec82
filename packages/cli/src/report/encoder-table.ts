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
  const cells = new Map<string, Count>();
  const layerIndices = new Set<number>();
  for (const row of layers) {
    const match = ENCODER_KERNEL.exec(row.name);
    if (!match) continue;
    const layer = Number(match[1]);
    layerIndices.add(layer);
    cells.set(`${layer}|${match[2]}`, { kept: row.kept, total: row.total });
  }
  if (layerIndices.size === 0) return undefined;
  const sum = (entries: Array<Count | undefined>): Count => {
    const all: Count = { kept: 0, total: 0 };
    for (const entry of entries) {
      all.kept += entry?.kept ?? 0;
      all.total += entry?.total ?? 0;
    }
    return all;
  };
  const ordered = [...layerIndices].sort((a, b) => a - b);
  const rows = ordered.map((layer) => {
    const entries = PROJECTIONS.map(([, name]) => cells.get(`${layer}|${name}`));
    const all = sum(entries);
    return [
      `layer ${layer}`,
      ...entries.map((entry) => (entry ? percent(entry.kept, entry.total) : '')),
      percent(all.kept, all.total),
    ];
  });
  const columns = PROJECTIONS.map(([, name]) => sum(ordered.map((layer) => cells.get(`${layer}|${name}`))));
  const everything = sum(columns);
  rows.push([
    'all layers',
    ...columns.map((entry) => percent(entry.kept, entry.total)),
    percent(everything.kept, everything.total),
  ]);
  return textTable(['remaining', ...PROJECTIONS.map(([short]) => short), 'layer'], rows, 1);
}
