import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadFashionMnist } from '@fineprune/datasets';
import { parseRecipe, RECIPE_SCHEMA_ID } from '@fineprune/recipes';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { writeFashionPngs } from './write-fashion-pngs';
import { writeSpamJsonl } from './write-spam-jsonl';

const DIRECTORY = path.dirname(fileURLToPath(import.meta.url));
const recipes = readdirSync(DIRECTORY).filter((file) => /\.ya?ml$/.test(file));

describe('the real-work examples', () => {
  it.each(recipes)('%s parses and names the published schema', (file) => {
    const recipe = parseRecipe(readFileSync(path.join(DIRECTORY, file), 'utf8'), { source: file });
    expect(recipe.$schema).toBe(RECIPE_SCHEMA_ID);
  });

  it('write-spam-jsonl writes the corpus split as {text, label} rows, ham and spam', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'real-work-'));
    const counts = writeSpamJsonl(directory);
    expect(counts).toEqual({ train: 4530, dev: 1132 });
    const rows = readFileSync(path.join(directory, 'dev.jsonl'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(rows).toHaveLength(1132);
    expect(new Set(rows.map((row) => row.label))).toEqual(new Set(['ham', 'spam']));
    expect(rows.every((row) => typeof row.text === 'string' && Object.keys(row).length === 2)).toBe(true);
  }, 60_000);

  it('write-fashion-pngs writes grey 28 × 28 PNGs whose bytes are the dataset’s, one folder per class', async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'real-work-'));
    const classes = await writeFashionPngs(directory, 12, 3);
    expect(classes).toHaveLength(10);
    expect(classes.every((name) => /^[A-Za-z0-9_-]+$/.test(name))).toBe(true);
    const dataset = await loadFashionMnist();
    const label = dataset.train.labels[0]!;
    const png = PNG.sync.read(readFileSync(path.join(directory, 'train', classes[label]!, '00000.png')));
    expect([png.width, png.height]).toEqual([28, 28]);
    const first = Array.from({ length: 784 }, (_, pixel) => png.data[pixel * 4]!);
    expect(first).toEqual(
      Array.from(dataset.train.images.subarray(0, 784), (value) => Math.round(value * 255)),
    );
    const written = classes.flatMap((name) => readdirSync(path.join(directory, 'test', name)));
    expect(written).toHaveLength(3);
  }, 60_000);
});
