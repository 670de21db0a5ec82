import { type PrunableModel, type Pruner, unitReport } from '@fineprune/core';
import type { Recipe } from '@fineprune/recipes';
import { readFloat32 } from '@fineprune/tensor/select';
import type { BlockPattern, RunRecord, UnitRow } from '../run-record';
import { escapeHtml, PALETTE, svg } from './svg';

/** The most cells a block picture has along each side (larger matrices are downsampled). */
export const MAX_PATTERN_CELLS = 48;
/** The most block pictures a report draws (the first pruned-by-block parameters). */
const MAX_PATTERNS = 8;
const PICTURE_SIZE = 288;

/**
 * Remaining units per structure of a model that lists `structures()`; none otherwise.
 *
 * @example
 * ```ts
 * const units = await unitRows(prunable); // [{ name: 'dense_1/neurons', kind: 'neuron', count: 300, kept: 75 }]
 * ```
 */
export async function unitRows(prunable: PrunableModel): Promise<UnitRow[]> {
  if (typeof prunable.structures !== 'function') return [];
  return unitReport(prunable.structures(), prunable.parameters());
}

/**
 * Downsamples a mask for the block picture: the last two axes (a position is kept when any
 * leading-axis entry is) in cells of ⌈rows / maxCells⌉ × ⌈cols / maxCells⌉ entries, each the
 * fraction of its entries kept (3 decimals).
 *
 * @example
 * ```ts
 * blockPattern('fc/kernel', mask, [784, 300]); // 48 × 43 cells of 17 × 7 entries
 * ```
 */
export function blockPattern(
  name: string,
  mask: Float32Array,
  shape: readonly number[],
  maxCells = MAX_PATTERN_CELLS,
): BlockPattern {
  const [height, width] = shape.slice(-2) as [number, number];
  const leading = mask.length / (height * width);
  const cellRows = Math.ceil(height / maxCells);
  const cellCols = Math.ceil(width / maxCells);
  const gridRows = Math.ceil(height / cellRows);
  const gridCols = Math.ceil(width / cellCols);
  const kept = new Float64Array(gridRows * gridCols);
  const counts = new Float64Array(gridRows * gridCols);
  for (let row = 0; row < height; row += 1) {
    for (let column = 0; column < width; column += 1) {
      let any = 0;
      for (let tap = 0; tap < leading && any === 0; tap += 1)
        any = mask[(tap * height + row) * width + column] !== 0 ? 1 : 0;
      const cell = Math.floor(row / cellRows) * gridCols + Math.floor(column / cellCols);
      kept[cell]! += any;
      counts[cell]! += 1;
    }
  }
  return {
    name,
    shape: [...shape],
    cellRows,
    cellCols,
    gridRows,
    gridCols,
    kept: Array.from(kept, (value, cell) => Math.round((value / counts[cell]!) * 1000) / 1000),
  };
}

/** The names of the recipe's pruning groups that prune by blocks (a `block` mask or `blockMovement` scores). */
function blockGroups(recipe: Recipe): Set<string> {
  const names = new Set<string>();
  recipe.pruning.forEach((group, index) => {
    // The group names of resolvePlugins (@fineprune/recipes).
    const name = group.name ?? (recipe.pruning.length === 1 ? 'default' : `group${index}`);
    if (group.mask.id === 'block' || group.scores.id === 'blockMovement') names.add(name);
  });
  return names;
}

/**
 * The block pictures of a run: one per parameter of rank ≥ 2 pruned by a group with a `block` mask
 * or `blockMovement` scores (at most 8).
 *
 * @example
 * ```ts
 * const patterns = await blockPatterns(recipe, pruner);
 * ```
 */
export async function blockPatterns(recipe: Recipe, pruner: Pruner): Promise<BlockPattern[]> {
  const groups = blockGroups(recipe);
  const patterns: BlockPattern[] = [];
  for (const { group, parameter } of pruner.pruned()) {
    if (!groups.has(group) || parameter.shape.length < 2 || patterns.length >= MAX_PATTERNS) continue;
    patterns.push(blockPattern(parameter.name, await readFloat32(parameter.mask), parameter.shape));
  }
  return patterns;
}

/** A pattern read from an untrusted run.json is drawn only when its sizes and values add up. */
function drawable(pattern: BlockPattern): boolean {
  const whole = (value: unknown, limit: number) =>
    Number.isInteger(value) && (value as number) >= 1 && (value as number) <= limit;
  return (
    whole(pattern?.gridRows, MAX_PATTERN_CELLS) &&
    whole(pattern.gridCols, MAX_PATTERN_CELLS) &&
    Array.isArray(pattern.kept) &&
    pattern.kept.length === pattern.gridRows * pattern.gridCols &&
    pattern.kept.every((value) => typeof value === 'number' && value >= 0 && value <= 1)
  );
}

/**
 * The block pattern of one weight matrix as an inline SVG of at most 288 × 288 pixels plus margins:
 * one square per cell, coloured by the fraction of its entries kept (white: all pruned), rows
 * (inputs) down, columns (outputs) across. `data-points` is the number of cells with any kept entry.
 *
 * @example
 * ```ts
 * const picture = blockPatternSvg(record.blockPatterns![0]!);
 * ```
 */
export function blockPatternSvg(pattern: BlockPattern): string {
  const title = `Block mask of ${pattern.name} [${(pattern.shape ?? []).join(', ')}]`;
  const cell = Math.max(2, Math.floor(PICTURE_SIZE / Math.max(pattern.gridRows, pattern.gridCols)));
  const frame = {
    width: pattern.gridCols * cell + 20,
    height: pattern.gridRows * cell + 20,
    left: 10,
    right: pattern.gridCols * cell + 10,
    top: 10,
    bottom: pattern.gridRows * cell + 10,
  };
  const cells: string[] = [];
  pattern.kept.forEach((kept, index) => {
    if (kept === 0) return;
    const row = Math.floor(index / pattern.gridCols);
    const column = index % pattern.gridCols;
    const rows = `${row * pattern.cellRows}–${(row + 1) * pattern.cellRows - 1}`;
    const columns = `${column * pattern.cellCols}–${(column + 1) * pattern.cellCols - 1}`;
    cells.push(
      `<rect class="mark cell" data-row="${row}" data-col="${column}" data-kept="${kept}" x="${10 + column * cell}" y="${10 + row * cell}" width="${cell}" height="${cell}" fill="${PALETTE[0]}" fill-opacity="${kept}"><title>rows ${rows}, columns ${columns}: ${(kept * 100).toFixed(1)}% kept</title></rect>`,
    );
  });
  const background = `<rect class="frame" x="10" y="10" width="${pattern.gridCols * cell}" height="${pattern.gridRows * cell}" fill="#fff"/>`;
  return svg('block-pattern', frame, cells.length, background + cells.join(''), title);
}

/**
 * The report's section on structured pruning: remaining units per structure (neurons, filters,
 * heads) and the block pictures; '' for runs with neither.
 *
 * @example
 * ```ts
 * const html = structuredSection(record);
 * ```
 */
export function structuredSection(run: RunRecord): string {
  const units = Array.isArray(run.units) ? run.units : [];
  const patterns = (Array.isArray(run.blockPatterns) ? run.blockPatterns : []).filter(drawable);
  const parts: string[] = [];
  if (units.length > 0) {
    const rows = units
      .map((row) => {
        const share = row.count > 0 ? `${((row.kept / row.count) * 100).toFixed(1)}%` : '';
        return `<tr><td>${escapeHtml(String(row.name))}</td><td>${escapeHtml(String(row.kind))}</td><td class="number">${Number(row.kept)}</td><td class="number">${Number(row.count)}</td><td class="number">${share}</td></tr>`;
      })
      .join('');
    parts.push(
      `<h2>Remaining units</h2><p class="caption">Neurons, filters and heads that something still reads, per structure of the model; <code>shrink</code> removes the others.</p><table data-table="units"><thead><tr><th>structure</th><th>kind</th><th>kept</th><th>total</th><th>remaining</th></tr></thead><tbody>${rows}</tbody></table>`,
    );
  }
  if (patterns.length > 0)
    parts.push(
      `<h2>Block patterns</h2><p class="caption">The mask of each matrix pruned by blocks, inputs down and outputs across, downsampled to at most ${MAX_PATTERN_CELLS} × ${MAX_PATTERN_CELLS} cells; the shade of a cell is the share of its weights kept.</p><div class="grid-plots">${patterns.map(blockPatternSvg).join('')}</div>`,
    );
  return parts.join('\n');
}
