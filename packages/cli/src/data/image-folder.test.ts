import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FinepruneError } from '@fineprune/core';
import type { RecipeImageData } from '@fineprune/recipes';
import * as jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../../test/support';
import { resizeBilinear } from './image-decode';
import { loadImageFolder } from './image-folder';

/** A PNG of `width × height` RGBA pixels given as [r, g, b] per pixel, row by row. */
function png(width: number, height: number, pixels: Array<[number, number, number]>): Buffer {
  const image = new PNG({ width, height });
  pixels.forEach(([r, g, b], index) => {
    image.data.set([r, g, b, 255], index * 4);
  });
  return PNG.sync.write(image);
}

/** A grey `size × size` PNG of one value. */
function greyPng(size: number, value: number): Buffer {
  return png(
    size,
    size,
    Array.from({ length: size * size }, () => [value, value, value]),
  );
}

/** `data.images` with the schema's defaults. */
function imageSource(train: string, overrides: Partial<RecipeImageData> = {}): RecipeImageData {
  return {
    train,
    width: 2,
    height: 2,
    channels: 1,
    resize: 'none',
    maxImageBytes: 16 * 1024 * 1024,
    ...overrides,
  };
}

/** A folder `train/<class>/<file>` from a map of class → files. */
function folder(root: string, classes: Record<string, Record<string, Buffer | string>>): string {
  for (const [name, files] of Object.entries(classes)) {
    mkdirSync(path.join(root, name), { recursive: true });
    for (const [file, bytes] of Object.entries(files)) writeFileSync(path.join(root, name, file), bytes);
  }
  return root;
}

async function rejection(promise: Promise<unknown>): Promise<FinepruneError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(FinepruneError.is(error), String(error)).toBe(true);
  return error as FinepruneError;
}

describe('loadImageFolder', () => {
  it('reads classes from subfolders (sorted), grey values in [0, 1], then (value − mean) / std', async () => {
    const directory = temporaryDirectory();
    const train = folder(path.join(directory, 'train'), {
      cat: {
        'a.png': png(2, 2, [
          [255, 255, 255],
          [0, 0, 0],
          [51, 51, 51],
          [255, 0, 0],
        ]),
      },
      bird: { 'b.png': greyPng(2, 102) },
    });
    folder(path.join(directory, 'dev'), {
      cat: { 'c.png': greyPng(2, 0) },
      bird: { 'd.png': greyPng(2, 255) },
    });
    const dataset = await loadImageFolder(
      imageSource(path.basename(train), { validation: 'dev', mean: [0.5], std: [0.25] }),
      { baseDirectory: directory, seed: 0 },
    );
    expect(dataset.labelNames).toEqual(['bird', 'cat']);
    expect(dataset.classes).toBe(2);
    expect(dataset.train.count).toBe(2);
    expect(Array.from(dataset.train.labels)).toEqual([0, 1]);
    // bird: 102/255 = 0.4 → (0.4 − 0.5)/0.25 = −0.4. cat: 1 → 2, 0 → −2, 0.2 → −1.2, red: the
    // BT.601 luma 0.299 → (0.299 − 0.5)/0.25 = −0.804.
    const expected = [-0.4, -0.4, -0.4, -0.4, 2, -2, -1.2, -0.804];
    Array.from(dataset.train.images).forEach((value, index) => {
      expect(value).toBeCloseTo(expected[index]!, 5);
    });
    // The validation folder: bird (label 0) 255 → 2, cat 0 → −2.
    expect(Array.from(dataset.test.images)).toEqual([2, 2, 2, 2, -2, -2, -2, -2]);
  });

  it('reads JPEG as well as PNG, and resamples another size with resize: bilinear', async () => {
    const directory = temporaryDirectory();
    const rgba = Buffer.alloc(4 * 4 * 4, 200);
    const jpg = Buffer.from(jpeg.encode({ data: rgba, width: 4, height: 4 }, 100).data);
    folder(directory, { a: { 'x.jpg': jpg, 'y.png': greyPng(2, 10) }, b: { 'z.png': greyPng(2, 20) } });
    const dataset = await loadImageFolder(
      imageSource('.', { resize: 'bilinear', validationFraction: 0.34 }),
      {
        baseDirectory: directory,
        seed: 1,
      },
    );
    expect(dataset.train.count + dataset.test.count).toBe(3);
    // A uniform 4 × 4 image stays uniform when resampled: JPEG at quality 100 keeps 200 within 2.
    const all = [...dataset.train.images, ...dataset.test.images];
    expect(all.filter((value) => Math.abs(value - 200 / 255) < 2 / 255)).toHaveLength(4);
  });

  it('resamples bilinearly with half-pixel centres (hand-derived 2 × 2 → 4 × 4 row)', () => {
    // Output x maps to (x + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25 → clamped 0, 0.25, 0.75, 1.
    const out = resizeBilinear(Float32Array.from([0, 1, 0, 1]), 2, 2, 1, 4, 4);
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 0.25, 0.75, 1]);
  });

  it.each([
    [
      'a non-image file in a class folder',
      { cat: { 'a.png': greyPng(2, 1), 'notes.txt': 'not an image' } },
      'cat/notes.txt',
      /is not a PNG or JPEG image/,
    ],
    [
      'an image of the wrong size',
      { cat: { 'a.png': greyPng(2, 1), 'big.png': greyPng(3, 1) } },
      'cat/big.png',
      /is 3 × 3 pixels; the recipe reads 2 × 2/,
    ],
    [
      'a truncated PNG',
      { cat: { 'a.png': greyPng(2, 1), 'cut.png': greyPng(2, 1).subarray(0, 40) } },
      'cat/cut.png',
      /cannot be decoded as PNG|is not a PNG/,
    ],
    [
      'a PNG header declaring 100,000 × 100,000 pixels',
      {
        cat: {
          'huge.png': (() => {
            const bytes = Buffer.from(greyPng(2, 1));
            bytes.writeUInt32BE(100_000, 16);
            bytes.writeUInt32BE(100_000, 20);
            return bytes;
          })(),
        },
      },
      'cat/huge.png',
      /is 100000 × 100000 pixels/,
    ],
    [
      'a file beside the class folders',
      { cat: { 'a.png': greyPng(2, 1) }, '.': { 'stray.png': greyPng(2, 1) } },
      'stray.png',
      /not a class folder/,
    ],
  ])('refuses %s with INVALID_DATA naming the file', async (_label, classes, file, message) => {
    const directory = temporaryDirectory();
    folder(directory, classes);
    const error = await rejection(loadImageFolder(imageSource('.'), { baseDirectory: directory, seed: 0 }));
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toContain(path.join(directory, file));
    expect(error.message).toMatch(message);
    expect(error.details).toMatchObject({ file: path.join(directory, file) });
  });

  it('refuses an empty folder, a symbolic link, an oversized file and a validation class the training data lacks', async () => {
    const empty = temporaryDirectory();
    expect(
      (await rejection(loadImageFolder(imageSource('.'), { baseDirectory: empty, seed: 0 }))).message,
    ).toMatch(/holds no images/);

    const linked = temporaryDirectory();
    folder(linked, { cat: { 'a.png': greyPng(2, 1) } });
    symlinkSync('/dev/zero', path.join(linked, 'cat', 'zero.png'));
    const link = await rejection(loadImageFolder(imageSource('.'), { baseDirectory: linked, seed: 0 }));
    expect(link.message).toContain(`${path.join(linked, 'cat', 'zero.png')}: is a symbolic link`);

    // With resize: bilinear the size is no error, but the decoder is never asked for 10^10 pixels.
    const huge = temporaryDirectory();
    const bytes = Buffer.from(greyPng(2, 1));
    bytes.writeUInt32BE(100_000, 16);
    bytes.writeUInt32BE(100_000, 20);
    folder(huge, { cat: { 'huge.png': bytes } });
    const declared = await rejection(
      loadImageFolder(imageSource('.', { resize: 'bilinear' }), { baseDirectory: huge, seed: 0 }),
    );
    expect(declared.message).toContain(
      `${path.join(huge, 'cat', 'huge.png')}: declares a 100000 × 100000 image`,
    );

    const large = temporaryDirectory();
    folder(large, { cat: { 'a.png': Buffer.alloc(200) } });
    const tooLarge = await rejection(
      loadImageFolder(imageSource('.', { maxImageBytes: 100 }), { baseDirectory: large, seed: 0 }),
    );
    expect(tooLarge.code).toBe('INVALID_DATA');
    expect(tooLarge.message).toContain('a.png');

    const split = temporaryDirectory();
    folder(path.join(split, 'train'), { cat: { 'a.png': greyPng(2, 1) }, dog: { 'b.png': greyPng(2, 1) } });
    folder(path.join(split, 'dev'), { cow: { 'c.png': greyPng(2, 1) } });
    const unknown = await rejection(
      loadImageFolder(imageSource('train', { validation: 'dev' }), { baseDirectory: split, seed: 0 }),
    );
    expect(unknown.message).toContain(
      `${path.join(split, 'dev', 'cow')}: is a class folder "cow" that is not among`,
    );
  });
});
