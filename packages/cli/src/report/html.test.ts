import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../run-record';
import { lossChangeVersusGapPlot, renderHtmlReport, spearmanRho } from './html';
import { histogram, sampleParameter } from './samples';
import { escapeHtml, linearScale } from './svg';

function record(name: string, deltaLoss: number, accuracy: number): RunRecord {
  const weights = new Float32Array([0.5, -0.1, 0.02, -0.7]);
  const mask = new Float32Array([1, 0, 0, 1]);
  return {
    formatVersion: 1,
    name,
    method: 'magnitude+topV/cubic',
    backend: 'cpu',
    steps: 10,
    seed: 0,
    dense: { step: 2, accuracy: 0.9, loss: 0.3 },
    evaluations: [{ step: 10, remaining: 0.5, accuracy, loss: 0.4 }],
    lossChanges: [{ step: 3, group: 'default', target: 0.5, before: 0.3, after: 0.3 + deltaLoss }],
    seconds: 1,
    final: { accuracy, loss: 0.4, remaining: 0.5 },
    layers: [{ name: 'dense_1/kernel', group: 'dense_1', shape: [2, 2], total: 4, kept: 2, sparsity: 0.5 }],
    samples: [sampleParameter('dense_1/kernel', weights, weights.map(Math.abs), mask, 'magnitude')],
    recipe: null,
    finishedAt: '2026-01-01T00:00:00.000Z',
  };
}

describe('HTML report', () => {
  it('computes Spearman ρ with ties', () => {
    expect(spearmanRho([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1, 12);
    expect(spearmanRho([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    expect(spearmanRho([1, 1, 2], [1, 2, 3])).toBeCloseTo(0.8660254, 6);
  });

  it('plots ΔL against the gap with one point per run and ρ', () => {
    const plot = lossChangeVersusGapPlot([
      record('a', 0.1, 0.8),
      record('b', 0.2, 0.7),
      record('c', 0.3, 0.75),
    ]);
    expect(plot).toContain('data-points="3"');
    expect(plot).toContain('Spearman ρ = 0.50');
    expect(lossChangeVersusGapPlot([{ ...record('a', 0.1, 0.8), lossChanges: [] }])).toContain(
      'data-points="0"',
    );
  });

  it('is one self-contained page: no external resource, names escaped', () => {
    const page = renderHtmlReport([record('<run & co>', 0.1, 0.8)]);
    expect(page).not.toMatch(/(src|href)=["']?https?:/);
    expect(page).toContain("default-src 'none'");
    expect(page).toContain('&lt;run &amp; co&gt;');
    for (const plot of [
      'remaining-per-layer',
      'metric-vs-remaining',
      'weights-vs-scores',
      'kept-weight-distribution',
      'loss-change-vs-gap',
    ]) {
      expect(page).toContain(`data-plot="${plot}"`);
    }
  });

  it('bins values and scales with nice ticks', () => {
    expect(histogram([0, 0.5, 1], 2, 0, 1)).toEqual({ edges: [0, 0.5, 1], counts: [1, 2] });
    expect(linearScale([0, 10], [0, 100]).ticks(5)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(escapeHtml(`"a'`)).toBe('&quot;a&#39;');
  });
});
