import { describe, expect, it } from 'vitest';
import type { LayerRow } from '../run-record';
import { encoderRemainingTable } from './encoder-table';

function row(name: string, kept: number, total: number): LayerRow {
  return { name, group: 'encoder', shape: [total], kept, total, sparsity: 1 - kept / total };
}

describe('encoderRemainingTable (Fig. 6: remaining weights per layer and projection)', () => {
  it('gives each projection of each layer, each layer, and each projection over the layers (hand values)', () => {
    const rows = [
      row('layer_0/attention/query/kernel', 10, 100),
      row('layer_0/attention/key/kernel', 20, 100),
      row('layer_0/attention/value/kernel', 30, 100),
      row('layer_0/attention/output/kernel', 40, 100),
      row('layer_0/ffn/intermediate/kernel', 50, 400),
      row('layer_0/ffn/output/kernel', 150, 400),
      row('layer_1/attention/query/kernel', 30, 100),
      row('layer_1/ffn/output/kernel', 0, 400),
      row('classifier/kernel', 1, 2),
    ];
    const lines = encoderRemainingTable(rows)!.split('\n');
    // layer 0: 300 of 1200 = 25%; layer 1: 30 of 500 = 6%; Q over both layers: 40 of 200 = 20%;
    // O: 150 of 800 = 18.75%; all: 330 of 1700 = 19.41%. The classifier is not a projection.
    expect(lines[0]!.split(/\s+/)).toEqual(['remaining', 'Q', 'K', 'V', 'AO', 'I', 'O', 'layer']);
    expect(lines[2]!.trim().split(/\s+/)).toEqual([
      'layer',
      '0',
      '10.00%',
      '20.00%',
      '30.00%',
      '40.00%',
      '12.50%',
      '37.50%',
      '25.00%',
    ]);
    expect(lines[3]!.trim().split(/\s+/)).toEqual(['layer', '1', '30.00%', '0.00%', '6.00%']);
    expect(lines[4]!.trim().split(/\s+/)).toEqual([
      'all',
      'layers',
      '20.00%',
      '20.00%',
      '30.00%',
      '40.00%',
      '12.50%',
      '18.75%',
      '19.41%',
    ]);
  });

  it('is undefined for a model without encoder projections', () => {
    expect(encoderRemainingTable([row('dense_1/kernel', 3, 4)])).toBeUndefined();
  });
});

describe('the HTML report of an encoder run', () => {
  it('shows the table of remaining weights per layer and projection', async () => {
    const { renderHtmlReport } = await import('./html');
    const { sampleParameter } = await import('./samples');
    const weights = new Float32Array([0.5, -0.1]);
    const layers = [row('layer_0/attention/query/kernel', 1, 4), row('layer_0/ffn/output/kernel', 3, 4)];
    const page = renderHtmlReport([
      {
        formatVersion: 1,
        name: 'encoder',
        method: 'movement+topV/cubic',
        backend: 'cpu',
        steps: 1,
        seed: 0,
        evaluations: [{ step: 1, remaining: 0.5, accuracy: 0.5, loss: 1 }],
        lossChanges: [],
        seconds: 1,
        final: { accuracy: 0.5, loss: 1, remaining: 0.5 },
        layers,
        samples: [sampleParameter(layers[0]!.name, weights, weights, new Float32Array([1, 0]), 'learned')],
        recipe: null,
        finishedAt: '2026-01-01T00:00:00.000Z',
      },
    ]);
    expect(page).toContain('Encoder: remaining weights per layer and projection');
    // Q of layer 0: 1 of 4; O: 3 of 4; the layer: 4 of 8.
    expect(page).toMatch(/layer 0 +25\.00% +75\.00% +50\.00%/);
  });
});
