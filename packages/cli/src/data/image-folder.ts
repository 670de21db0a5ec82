import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ErrorCodes } from '@fineprune/core';
import { type Dataset, type Split, splitValidation } from '@fineprune/datasets';
import type { RecipeImageData } from '@fineprune/recipes';
import { quoteText, readRegularFile } from '@fineprune/tensor/untrusted';
import { dataError } from './data-errors';
import { decodeImage, imageHeader, resizeBilinear, toChannels } from './image-decode';
import { DEFAULT_VALIDATION_FRACTION } from './text-data';

/**
 * The most values (examples × width × height × channels) an image folder may load: 2^28 float32
 * values, 1 GiB.
 *
 * @example
 * ```ts
 * console.log(`an image folder holds at most ${MAX_IMAGE_VALUES} values`);
 * ```
 */
export const MAX_IMAGE_VALUES = 2 ** 28;

/** Class labels are stored as bytes, as in MNIST. */
const MAX_CLASSES = 256;

/** One image file and its class. */
interface ImageEntry {
  file: string;
  label: number;
}

function ioError(file: string, error: unknown) {
  return dataError(
    { file },
    `cannot be read: ${(error as Error).message}`,
    'Check the path (relative to the recipe) and the permissions.',
    {
      code: ErrorCodes.IO_FAILED,
      cause: error,
    },
  );
}

/** Names in a directory (dot files left out), sorted by code point. */
async function listDirectory(directory: string): Promise<string[]> {
  try {
    return (await fs.readdir(directory)).filter((name) => !name.startsWith('.')).sort();
  } catch (error) {
    throw ioError(directory, error);
  }
}

/**
 * The images of a folder with one subfolder per class: class names from the subfolders (or the
 * declared labels, which every subfolder must be among), files sorted by name. Symbolic links and
 * entries that are neither folders (at the top) nor files (in a class folder) are refused.
 */
async function listImages(
  root: string,
  labels: string[] | undefined,
): Promise<{ labels: string[]; entries: ImageEntry[] }> {
  const names = await listDirectory(root);
  const classes: string[] = [];
  for (const name of names) {
    const stat = await fs.lstat(path.join(root, name)).catch((error) => {
      throw ioError(path.join(root, name), error);
    });
    if (!stat.isDirectory())
      throw dataError(
        { file: path.join(root, name) },
        `is ${stat.isSymbolicLink() ? 'a symbolic link' : 'a file'}, not a class folder: ${root} must hold one folder of images per class.`,
        'Move the images into a folder named after their class (train/cat/001.png), and keep other files out.',
      );
    classes.push(name);
  }
  const known = labels ?? classes;
  if (known.length > MAX_CLASSES)
    throw dataError(
      { file: root },
      `has ${known.length} classes; at most ${MAX_CLASSES} are supported.`,
      'Merge classes, or use a data module.',
    );
  const entries: ImageEntry[] = [];
  for (const name of classes) {
    const label = known.indexOf(name);
    if (label < 0)
      throw dataError(
        { file: path.join(root, name) },
        `is a class folder ${quoteText(name)} that is not among the labels ${known
          .slice(0, 20)
          .map((entry) => quoteText(entry))
          .join(', ')}.`,
        'Rename the folder, remove it, or add its name to data.images.labels (the validation folder may only use training classes).',
      );
    for (const file of await listDirectory(path.join(root, name))) {
      const full = path.join(root, name, file);
      const stat = await fs.lstat(full).catch((error) => {
        throw ioError(full, error);
      });
      if (!stat.isFile())
        throw dataError(
          { file: full },
          `is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a regular file'}; class folders hold image files only.`,
          'Keep only .png and .jpg files in class folders.',
        );
      entries.push({ file: full, label });
    }
  }
  if (entries.length === 0)
    throw dataError({ file: root }, 'holds no images.', 'Put PNG or JPEG images in one subfolder per class.');
  return { labels: known, entries };
}

/** Reads, checks, decodes, resizes and normalises one image into `target`. */
async function readImage(entry: ImageEntry, source: RecipeImageData, target: Float32Array): Promise<void> {
  const bytes = await readRegularFile(entry.file, {
    maxBytes: source.maxImageBytes,
    what: 'the image',
    code: ErrorCodes.INVALID_DATA,
    fix: 'Keep images under data.images.maxImageBytes (raise it for large photos).',
  });
  const header = imageHeader(bytes);
  if (
    header &&
    source.resize === 'none' &&
    (header.width !== source.width || header.height !== source.height)
  ) {
    throw dataError(
      { file: entry.file },
      `is ${header.width} × ${header.height} pixels; the recipe reads ${source.width} × ${source.height}.`,
      'Resize the images, set data.images.width and height to their size, or set data.images.resize: bilinear.',
      { details: { width: header.width, height: header.height } },
    );
  }
  const { width, height, rgba } = decodeImage(bytes, entry.file);
  let values = toChannels(rgba, width * height, source.channels);
  if (width !== source.width || height !== source.height)
    values = resizeBilinear(values, height, width, source.channels, source.height, source.width);
  const channels = source.channels;
  for (let at = 0; at < values.length; at++) {
    const channel = at % channels;
    const mean = source.mean?.[channel] ?? source.mean?.[0] ?? 0;
    const std = source.std?.[channel] ?? source.std?.[0] ?? 1;
    target[at] = (values[at]! - mean) / std;
  }
}

async function loadSplit(root: string, source: RecipeImageData, labels: string[] | undefined) {
  const listed = await listImages(root, labels);
  const featureSize = source.width * source.height * source.channels;
  if (listed.entries.length * featureSize > MAX_IMAGE_VALUES) {
    throw dataError(
      { file: root },
      `holds ${listed.entries.length} images of ${featureSize} values: more than the ${MAX_IMAGE_VALUES} values (1 GiB) an image folder may load.`,
      'Use smaller images (data.images.width/height), fewer images, or a data module that streams them.',
    );
  }
  const images = new Float32Array(listed.entries.length * featureSize);
  const labelBytes = new Uint8Array(listed.entries.length);
  for (const [index, entry] of listed.entries.entries()) {
    await readImage(entry, source, images.subarray(index * featureSize, (index + 1) * featureSize));
    labelBytes[index] = entry.label;
  }
  const split: Split = { images, labels: labelBytes, count: listed.entries.length, featureSize };
  return { labels: listed.labels, split };
}

/**
 * Loads an image-classification folder as a `Dataset` of `@fineprune/datasets`: every image checked
 * (a regular file under `maxImageBytes`, a PNG or JPEG by its bytes, the declared size unless
 * `resize: bilinear`), decoded, turned into `channels` values in [0, 1] per pixel, then
 * `(value − mean) / std` per channel. The evaluation split is the `validation` folder, or a seeded
 * hold-out of the training images.
 *
 * @param source - the recipe's `data.images`
 * @param options - the recipe's directory (paths are relative to it) and the seed of the hold-out
 * @throws FinepruneError `INVALID_DATA` naming the file for a non-image file, an image of the wrong
 *   size, an undecodable image, a stray file or an unknown class folder; `IO_FAILED` for unreadable folders
 *
 * @example
 * ```ts
 * const dataset = await loadImageFolder(recipe.data.images!, { baseDirectory: '.', seed: 0 });
 * dataset.train.featureSize; // width × height × channels
 * ```
 */
export async function loadImageFolder(
  source: RecipeImageData,
  options: { baseDirectory: string; seed: number },
): Promise<Dataset> {
  const train = await loadSplit(path.resolve(options.baseDirectory, source.train), source, source.labels);
  let test: Split;
  let trainSplit = train.split;
  if (source.validation !== undefined) {
    test = (await loadSplit(path.resolve(options.baseDirectory, source.validation), source, train.labels))
      .split;
  } else {
    const held = Math.round((source.validationFraction ?? DEFAULT_VALIDATION_FRACTION) * train.split.count);
    if (held < 1 || held >= train.split.count)
      throw dataError(
        { file: path.resolve(options.baseDirectory, source.train) },
        `holds ${train.split.count} images: holding out ${source.validationFraction ?? DEFAULT_VALIDATION_FRACTION} of them leaves an empty split.`,
        'Give more images, another data.images.validationFraction, or a data.images.validation folder.',
      );
    const parts = splitValidation(train.split, held, options.seed);
    trainSplit = parts.train;
    test = parts.validation;
  }
  return {
    name: path.basename(source.train),
    train: trainSplit,
    test,
    classes: train.labels.length,
    inputShape: [trainSplit.featureSize],
    imageShape: [source.height, source.width],
    labelNames: train.labels,
  };
}
