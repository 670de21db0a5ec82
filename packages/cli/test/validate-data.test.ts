import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RecipeInput } from '@fineprune/recipes';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import { captureIo, recipeFile, temporaryDirectory, tinyRecipe } from './support';

/** A grey `size × size` PNG. */
function greyPng(size: number): Buffer {
  const image = new PNG({ width: size, height: size });
  image.data.fill(128);
  return PNG.sync.write(image);
}

/** `fineprune validate <recipe> [--json]` on a recipe written into `directory`. */
async function validate(directory: string, data: RecipeInput['data'], json = true) {
  const io = captureIo();
  const file = recipeFile(tinyRecipe({ data }), 'recipe.yaml', directory);
  const exitCode = await main(['validate', file, ...(json ? ['--json'] : [])], io);
  const last = io.out().trim().split('\n').at(-1)!;
  return { exitCode, io, event: json ? (JSON.parse(last) as Record<string, unknown>) : undefined };
}

const GOOD_ROWS = Array.from({ length: 20 }, (_, index) =>
  JSON.stringify({ text: `message ${index}`, label: index % 2 ? 'spam' : 'ham' }),
);

describe('fineprune validate reads the data files through (every row, every image)', () => {
  it('reports the examples of a good text file on each side of the split and its labels', async () => {
    const directory = temporaryDirectory();
    writeFileSync(path.join(directory, 'train.jsonl'), `${GOOD_ROWS.join('\n')}\n`);
    const { exitCode, io } = await validate(
      directory,
      { text: { train: 'train.jsonl' }, batchSize: 2 },
      false,
    );
    expect(exitCode).toBe(ExitCodes.OK);
    // 20 rows, a tenth held out: 18 and 2.
    expect(io.out()).toBe(
      `${path.join(directory, 'recipe.yaml')}: valid (data.text: 18 training and 2 validation examples, labels ham, spam)\n`,
    );
  });

  it.each([
    [
      'a malformed JSONL row',
      'train.jsonl',
      [...GOOD_ROWS.slice(0, 6), '{"text": "cut', ...GOOD_ROWS.slice(6)].join('\n'),
      {},
      7,
      /is not valid JSON/,
    ],
    [
      'a row without its label, deep in the file',
      'train.jsonl',
      [...GOOD_ROWS, '{"text": "no label"}'].join('\n'),
      {},
      21,
      /has no field "label"/,
    ],
    [
      'an unknown label',
      'train.csv',
      'text,label\na,ham\nb,spam\nc,eggs\n',
      { labels: ['ham', 'spam'] },
      4,
      /has the label "eggs"/,
    ],
  ])(
    'fails on %s with INVALID_DATA naming the file and line (exit 4)',
    async (_label, name, text, extra, line, message) => {
      const directory = temporaryDirectory();
      writeFileSync(path.join(directory, name), text);
      const { exitCode, event } = await validate(directory, {
        text: { train: name, ...extra },
        batchSize: 2,
      });
      expect(exitCode).toBe(ExitCodes.IO);
      expect(event).toMatchObject({
        code: 'INVALID_DATA',
        details: { file: path.join(directory, name), line },
      });
      expect(event!.message).toMatch(message);
      expect(event!.message).toContain(`${path.join(directory, name)} line ${line}: `);
    },
  );

  it.each([
    ['a non-image file', { 'notes.txt': 'not an image' }, 'notes.txt', /is not a PNG or JPEG image/],
    [
      'an image of the wrong size',
      { 'big.png': greyPng(3) },
      'big.png',
      /is 3 × 3 pixels; the recipe reads 2 × 2/,
    ],
  ])('fails on an image folder holding %s, naming the file (exit 4)', async (_label, files, bad, message) => {
    const directory = temporaryDirectory();
    for (const name of ['cat', 'dog']) {
      mkdirSync(path.join(directory, 'train', name), { recursive: true });
      for (let index = 0; index < 5; index++)
        writeFileSync(path.join(directory, 'train', name, `${index}.png`), greyPng(2));
    }
    for (const [name, bytes] of Object.entries(files))
      writeFileSync(path.join(directory, 'train', 'dog', name), bytes);
    const images = { train: 'train', width: 2, height: 2, channels: 1 as const };
    const { exitCode, event } = await validate(directory, { images, batchSize: 2 });
    expect(exitCode).toBe(ExitCodes.IO);
    expect(event).toMatchObject({
      code: 'INVALID_DATA',
      details: { file: path.join(directory, 'train', 'dog', bad) },
    });
    expect(event!.message).toMatch(message);
  });
});
