import * as tf from '@tensorflow/tfjs-core';
import { createPrunableParameter } from '@fineprune/core';
import { block } from '@fineprune/masks';
import { createRandom, setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../run-record';
import { renderHtmlReport } from './html';
import { blockPattern, blockPatternSvg, structuredSection } from './structure-report';

interface Element {
  name: string;
  attributes: Record<string, string>;
  children: Element[];
}

/** A strict little XML parser for the SVG the report writes: throws on any unbalanced tag. */
function parseXml(text: string): Element {
  const root: Element = { name: '#root', attributes: {}, children: [] };
  const stack = [root];
  const tag = /<(\/?)([\w:-]+)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>|([^<]+)/gy;
  let consumed = 0;
  for (let match = tag.exec(text); match !== null; match = tag.exec(text)) {
    consumed = tag.lastIndex;
    const [, closing, name, attributeText, selfClosing, textContent] = match;
    if (textContent !== undefined) continue;
    if (closing) {
      const open = stack.pop()!;
      if (open.name !== name) throw new Error(`</${name}> closes <${open.name}>`);
      continue;
    }
    const attributes = Object.fromEntries(
      [...attributeText!.matchAll(/([\w:-]+)="([^"]*)"/g)].map(([, key, value]) => [key!, value!]),
    );
    const element: Element = { name: name!, attributes, children: [] };
    stack.at(-1)!.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (consumed !== text.length) throw new Error(`unparsed text at ${consumed}`);
  if (stack.length !== 1) throw new Error(`<${stack.at(-1)!.name}> is not closed`);
  return root;
}

function descendants(element: Element, name: string): Element[] {
  return element.children.flatMap((child) => [
    ...(child.name === name ? [child] : []),
    ...descendants(child, name),
  ]);
}

/** The cells of a block picture read back from its SVG, as a gridRows × gridCols array. */
function cellsOf(picture: string, gridRows: number, gridCols: number): number[][] {
  const [root] = parseXml(picture).children;
  expect(root!.name).toBe('svg');
  const grid = Array.from({ length: gridRows }, () => new Array<number>(gridCols).fill(0));
  for (const cell of descendants(root!, 'rect').filter((rect) => rect.attributes.class === 'mark cell'))
    grid[Number(cell.attributes['data-row'])]![Number(cell.attributes['data-col'])] = Number(
      cell.attributes['fill-opacity'],
    );
  return grid;
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('block pattern pictures', () => {
  it('draws a real block mask cell for cell, constant on every 8 × 8 block, and parses as SVG', async () => {
    const weight = createPrunableParameter({
      name: 'fc/kernel',
      group: 'fc',
      kind: 'dense',
      weight: tf.variable(tf.zeros([40, 24])),
    });
    const scores = tf.randomUniform([40, 24], 0, 1, 'float32', 18);
    const context = { step: 0, model: {} as never, random: createRandom(1) };
    const [mask] = await block({ rows: 8, cols: 8 }).compute([{ parameter: weight, scores }], 0.6, context);
    const values = (await mask!.data()) as Float32Array;
    const pattern = blockPattern('fc/kernel', values, [40, 24]);
    expect([pattern.cellRows, pattern.cellCols, pattern.gridRows, pattern.gridCols]).toEqual([1, 1, 40, 24]);
    const picture = blockPatternSvg(pattern);
    const grid = cellsOf(picture, 40, 24);
    for (let row = 0; row < 40; row += 1)
      for (let column = 0; column < 24; column += 1) {
        expect(grid[row]![column]).toBe(values[row * 24 + column]);
        expect(grid[row]![column]).toBe(grid[row - (row % 8)]![column - (column % 8)]);
      }
    // 15 blocks, 15 − round(9) = 6 kept, of 64 entries each.
    expect(picture).toContain(`data-points="${6 * 64}"`);
    const [root] = parseXml(picture).children;
    expect(Number(root!.attributes.width)).toBeLessThanOrEqual(288 + 20);
    tf.dispose([mask!, scores, weight.weight, weight.mask]);
  });

  it('downsamples large matrices to a bounded picture of kept fractions, taps pooled', () => {
    // [2, 100, 60]: tap 0 keeps rows 0–49, tap 1 keeps columns 0–29 — a position is kept when either is.
    const mask = new Float32Array(2 * 100 * 60);
    for (let row = 0; row < 100; row += 1)
      for (let column = 0; column < 60; column += 1) {
        mask[row * 60 + column] = row < 50 ? 1 : 0;
        mask[6000 + row * 60 + column] = column < 30 ? 1 : 0;
      }
    const pattern = blockPattern('conv/kernel', mask, [2, 100, 60], 20);
    // Cells of ⌈100/20⌉ × ⌈60/20⌉ = 5 × 3 entries: a grid of 20 × 20.
    expect([pattern.cellRows, pattern.cellCols, pattern.gridRows, pattern.gridCols]).toEqual([5, 3, 20, 20]);
    const grid = cellsOf(blockPatternSvg(pattern), 20, 20);
    const expected = (row: number, column: number) => (row < 10 || column < 10 ? 1 : 0);
    expect(grid).toEqual(
      Array.from({ length: 20 }, (_, row) =>
        Array.from({ length: 20 }, (_, column) => expected(row, column)),
      ),
    );
    // A cell across a boundary holds the fraction: rows 0–6 of 7 in cells of 7 → 4/7 kept.
    const uneven = blockPattern(
      'w',
      Float32Array.from({ length: 7 }, (_, row) => (row < 4 ? 1 : 0)),
      [7, 1],
      1,
    );
    expect(uneven.kept).toEqual([0.571]);
  });
});

describe('the structured section of the HTML report', () => {
  const base = {
    formatVersion: 1,
    name: 'units',
    method: 'unitMovement+unitTopV/cubic',
    backend: 'cpu',
    steps: 1,
    seed: 0,
    evaluations: [],
    lossChanges: [],
    seconds: 1,
    final: { accuracy: 0.9, loss: 0.3, remaining: 0.25 },
    layers: [],
    samples: [],
    recipe: null,
    finishedAt: '2026-12-07T00:00:00.000Z',
  } satisfies RunRecord;

  it('lists the remaining units per structure, escaped, and draws the block patterns', () => {
    const pattern = blockPattern('fc/kernel', Float32Array.of(1, 0, 0, 1), [2, 2]);
    const page = renderHtmlReport([
      {
        ...base,
        units: [
          { name: 'dense_1/neurons', kind: 'neuron', count: 300, kept: 75 },
          { name: '<conv>', kind: 'filter', count: 32, kept: 8 },
        ],
        blockPatterns: [pattern],
      },
    ]);
    expect(page).toContain(
      '<td>dense_1/neurons</td><td>neuron</td><td class="number">75</td><td class="number">300</td><td class="number">25.0%</td>',
    );
    expect(page).toContain('&lt;conv&gt;');
    expect(page).toContain('data-plot="block-pattern"');
    expect(structuredSection(base)).toBe('');
  });

  it('skips block patterns from a run.json whose sizes do not add up', () => {
    const broken = {
      name: 'x',
      shape: [2, 2],
      cellRows: 1,
      cellCols: 1,
      gridRows: 2,
      gridCols: 2,
      kept: [1, 2, 0],
    };
    const huge = { ...broken, gridRows: 1e6, gridCols: 1e6, kept: [] };
    expect(structuredSection({ ...base, blockPatterns: [broken, huge] })).toBe('');
  });
});
