import { describe, expect, it } from 'vitest';
import { findAll, parseSvg, plotMarkup } from '../../test/parse-svg';
import type { LayerRow, RunRecord } from '../run-record';
import { encoderRemainingPlot } from './encoder-figure';
import { renderHtmlReport } from './html';

const NAMES = {
  Q: 'attention/query',
  K: 'attention/key',
  V: 'attention/value',
  AO: 'attention/output',
  I: 'ffn/intermediate',
  O: 'ffn/output',
} as const;

function row(name: string, kept: number, total: number): LayerRow {
  return { name, group: 'encoder', shape: [total], kept, total, sparsity: 1 - kept / total };
}

/**
 * Three layers, kept counts chosen by hand: layer l, projection p (0…5) keeps (l + 1)·(p + 1) of
 * 40 (the feed-forward ones of 160), so the lowest layer is the sparsest here.
 */
function encoderRows(): LayerRow[] {
  const rows: LayerRow[] = [];
  for (const layer of [0, 1, 2])
    Object.values(NAMES).forEach((name, index) => {
      const total = name.startsWith('ffn') ? 160 : 40;
      rows.push(row(`layer_${layer}/${name}/kernel`, (layer + 1) * (index + 1), total));
    });
  rows.push(row('classifier/kernel', 1, 2));
  return rows;
}

function record(name: string, layers: LayerRow[]): RunRecord {
  return {
    formatVersion: 1,
    name,
    method: 'movement+topV/cubic',
    backend: 'cpu',
    steps: 1,
    seed: 0,
    evaluations: [{ step: 1, remaining: 0.1, accuracy: 0.5, loss: 1 }],
    lossChanges: [],
    seconds: 1,
    final: { accuracy: 0.5, loss: 1, remaining: 0.1 },
    layers,
    samples: [],
    recipe: null,
    finishedAt: '2026-01-01T00:00:00.000Z',
  };
}

describe('Fig. 6 as a picture: remaining weights per layer × projection', () => {
  it('draws one bar per layer × projection whose data and height match the report’s rows', () => {
    const layers = encoderRows();
    const name = 'bert <script>alert("x")</script> & co';
    const page = renderHtmlReport([record(name, layers)]);
    const markup = plotMarkup(page, 'encoder-remaining')!;
    expect(markup).toBeDefined();
    expect(markup).not.toContain('<script');
    const chart = parseSvg(markup);
    // The run's name reaches the title escaped, and reads back as written.
    expect(findAll(chart, (element) => element.name === 'title')[0]!.text).toBe(
      `Remaining weights per layer and projection: ${name}`,
    );
    const bars = findAll(chart, (element) => element.name === 'rect' && element.attributes.class === 'mark');
    expect(bars).toHaveLength(18);
    expect(chart.attributes['data-points']).toBe('18');
    // The plot spans 0–100% over 320 − 46 − 34 = 240 pixels.
    const [top, bottom] = [34, 320 - 46];
    const seen = new Set<string>();
    for (const bar of bars) {
      const { 'data-layer': layer, 'data-projection': projection } = bar.attributes;
      const source = layers.find(
        (candidate) => candidate.name === `layer_${layer}/${NAMES[projection as keyof typeof NAMES]}/kernel`,
      )!;
      expect(source, `${layer} ${projection}`).toBeDefined();
      seen.add(`${layer} ${projection}`);
      const remaining = (source.kept / source.total) * 100;
      expect(Number(bar.attributes['data-kept'])).toBe(source.kept);
      expect(Number(bar.attributes['data-total'])).toBe(source.total);
      expect(Number(bar.attributes['data-remaining'])).toBeCloseTo(remaining, 10);
      expect(Number(bar.attributes.height)).toBeCloseTo(((bottom - top) * remaining) / 100, 2);
      expect(Number(bar.attributes.y) + Number(bar.attributes.height)).toBeCloseTo(bottom, 2);
      expect(bar.children[0]!.text).toBe(
        `layer ${layer} ${projection}: ${remaining.toFixed(2)}% kept (${source.kept}/${source.total})`,
      );
    }
    expect(seen.size).toBe(18);
    // By hand: layer 2's V keeps 3·3 = 9 of 40 = 22.5%, layer 0's I keeps 5 of 160 = 3.125%.
    const bar = (layer: number, projection: string) =>
      bars.find(
        (candidate) =>
          candidate.attributes['data-layer'] === String(layer) &&
          candidate.attributes['data-projection'] === projection,
      )!;
    expect(Number(bar(2, 'V').attributes['data-remaining'])).toBe(22.5);
    expect(Number(bar(0, 'I').attributes['data-remaining'])).toBe(3.125);
  });

  it('is left out for a model without encoder projections', () => {
    expect(encoderRemainingPlot([row('dense_1/kernel', 3, 4)], 'mlp')).toBe('');
    const page = renderHtmlReport([record('mlp', [row('dense_1/kernel', 3, 4)])]);
    expect(plotMarkup(page, 'encoder-remaining')).toBeUndefined();
  });
});
