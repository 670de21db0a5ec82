/**
 * Fig. 6 of Movement Pruning as a picture: an encoder's remaining weights per layer and projection,
 * one group of bars per layer, one bar per projection (Q, K, V, attention output, intermediate,
 * output), inline SVG.
 */

import type { LayerRow } from '../run-record';
import { ENCODER_PROJECTIONS, encoderRemaining } from './encoder-table';
import { axes, defaultFrame, escapeHtml, type Frame, linearScale, PALETTE, svg } from './svg';

/** Pixels per bar, and between layer groups. */
const BAR = 11;
const GROUP_GAP = 14;

/** The colour of a projection's bars. */
function projectionColour(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

/** The projections' legend, inside the chart above the plot area. */
function projectionLegend(frame: Frame): string {
  return ENCODER_PROJECTIONS.map((projection, index) => {
    const x = frame.left + index * 44;
    return `<rect x="${x}" y="8" width="10" height="10" fill="${projectionColour(index)}"/><text class="tick" x="${x + 14}" y="17">${escapeHtml(projection)}</text>`;
  }).join('');
}

/**
 * The remaining weights of an encoder per layer × projection (Fig. 6 of Movement Pruning) as inline
 * SVG: one bar per projection of each layer, its height the share kept. Each bar is a
 * `rect.mark` with `data-layer`, `data-projection`, `data-kept`, `data-total` and `data-remaining`
 * (percent) and a title; `''` when the run has no encoder projections.
 *
 * @param layers - the run's layer rows (`layer_<i>/attention/query/kernel`, …)
 * @param runName - named in the chart's title
 * @returns the SVG, or ''
 *
 * @example
 * ```ts
 * const figure = encoderRemainingPlot(record.layers, record.name);
 * ```
 */
export function encoderRemainingPlot(layers: readonly LayerRow[], runName: string): string {
  const encoder = encoderRemaining(layers);
  if (encoder === undefined) return '';
  const group = ENCODER_PROJECTIONS.length * BAR + GROUP_GAP;
  const frame = defaultFrame(Math.max(520, 90 + encoder.layers.length * group), 320);
  frame.top = 34;
  const y = linearScale([0, 100], [frame.bottom, frame.top]);
  const marks: string[] = [];
  encoder.layers.forEach((layer, layerIndex) => {
    const x0 = frame.left + GROUP_GAP / 2 + layerIndex * group;
    ENCODER_PROJECTIONS.forEach((projection, index) => {
      const cell = encoder.cells.find((entry) => entry.layer === layer && entry.projection === projection);
      if (cell === undefined) return;
      const remaining = cell.total === 0 ? 0 : (cell.kept / cell.total) * 100;
      const top = y(remaining);
      marks.push(
        `<rect class="mark" data-layer="${layer}" data-projection="${projection}" data-kept="${cell.kept}" data-total="${cell.total}" data-remaining="${remaining}" x="${(x0 + index * BAR).toFixed(1)}" y="${top.toFixed(2)}" width="${BAR - 1}" height="${(frame.bottom - top).toFixed(2)}" fill="${projectionColour(index)}"><title>${escapeHtml(`layer ${layer} ${projection}: ${remaining.toFixed(2)}% kept (${cell.kept}/${cell.total})`)}</title></rect>`,
      );
    });
    marks.push(
      `<text class="tick" x="${(x0 + (ENCODER_PROJECTIONS.length * BAR) / 2).toFixed(1)}" y="${frame.bottom + 16}" text-anchor="middle">${layer}</text>`,
    );
  });
  const axis = axes(
    frame,
    linearScale([0, 1], [frame.left, frame.right]),
    y,
    'layer',
    'remaining weights (%)',
    [],
  );
  return svg(
    'encoder-remaining',
    frame,
    encoder.cells.length,
    axis + projectionLegend(frame) + marks.join(''),
    `Remaining weights per layer and projection: ${runName}`,
  );
}
