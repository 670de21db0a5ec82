import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ErrorCodes } from '@fineprune/core';
import { BatchOrder } from '@fineprune/datasets';
import type { Recipe, RecipeImageData } from '@fineprune/recipes';
import { quoteText, readRegularFile } from '@fineprune/tensor/untrusted';
import * as tf from '@tensorflow/tfjs-core';
import { type LazyExamples, lazyRunData, type RunData } from '../run-data';
import { dataError } from './data-errors';
import { readRegularFileSync } from './file-ranges';
import { decodeImage, imageHeader, resizeBilinear, toChannels } from './image-decode';
import { DEFAULT_VALIDATION_FRACTION, holdOut } from './text-data';

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

/** What is kept of a folder's images: the path and label of each, in file order. */
export interface ImageFiles {
  files: string[];
  labels: Int32Array;
}

/**
 * An image folder read through: the class names, and the training and evaluation images (paths and
 * labels only).
 *
 * @example
 * ```ts
 * const folder: ImageFolder = await loadImageFolder(recipe.data.images!, { baseDirectory: '.', seed: 0 });
 * folder.train.files.length; // number of training images
 * ```
 */
export interface ImageFolder {
  labels: string[];
  train: ImageFiles;
  test: ImageFiles;
}

const SIZE_FIX = 'Keep images under data.images.maxImageBytes (raise it for large photos).';

/** Checks, decodes, resizes and normalises the bytes of one image into `target`. */
function imageValues(bytes: Uint8Array, file: string, source: RecipeImageData, target: Float32Array): void {
  const header = imageHeader(bytes);
  if (
    header &&
    source.resize === 'none' &&
    (header.width !== source.width || header.height !== source.height)
  ) {
    throw dataError(
      { file },
      `is ${header.width} × ${header.height} pixels; the recipe reads ${source.width} × ${source.height}.`,
      'Resize the images, set data.images.width and height to their size, or set data.images.resize: bilinear.',
      { details: { width: header.width, height: header.height } },
    );
  }
  const { width, height, rgba } = decodeImage(bytes, file);
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

/**
 * Reads one folder through, one image in memory at a time: every image checked and decoded (so a
 * bad file fails before training, not in the middle of it), and only its path and label kept.
 */
async function readFolder(root: string, source: RecipeImageData, labels: string[] | undefined) {
  const listed = await listImages(root, labels);
  const scratch = new Float32Array(source.width * source.height * source.channels);
  for (const entry of listed.entries) {
    const bytes = await readRegularFile(entry.file, {
      maxBytes: source.maxImageBytes,
      what: 'the image',
      code: ErrorCodes.INVALID_DATA,
      fix: SIZE_FIX,
    });
    imageValues(bytes, entry.file, source, scratch);
  }
  const files: ImageFiles = {
    files: listed.entries.map((entry) => entry.file),
    labels: Int32Array.from(listed.entries, (entry) => entry.label),
  };
  return { labels: listed.labels, files };
}

/** The images at `indices` (sorted), as {@link ImageFiles}. */
function pickImages(images: ImageFiles, indices: Int32Array): ImageFiles {
  return {
    files: Array.from(indices, (index) => images.files[index]!),
    labels: Int32Array.from(indices, (index) => images.labels[index]!),
  };
}

/**
 * Reads an image-classification folder through without keeping its pixels: every image checked
 * (a regular file under `maxImageBytes`, a PNG or JPEG by its bytes, the declared size unless
 * `resize: bilinear`) and decoded once, one at a time; kept are the class names and each image's
 * path and label. The evaluation images are the `validation` folder's, or a seeded hold-out of the
 * training images (the one `splitValidation` of `@fineprune/datasets` makes).
 *
 * @param source - the recipe's `data.images`
 * @param options - the recipe's directory (paths are relative to it) and the seed of the hold-out
 * @throws FinepruneError `INVALID_DATA` naming the file for a non-image file, an image of the wrong
 *   size, an undecodable image, a stray file or an unknown class folder; `IO_FAILED` for unreadable folders
 *
 * @example
 * ```ts
 * const folder = await loadImageFolder(recipe.data.images!, { baseDirectory: '.', seed: 0 });
 * folder.labels; // ['bird', 'cat']
 * ```
 */
export async function loadImageFolder(
  source: RecipeImageData,
  options: { baseDirectory: string; seed: number },
): Promise<ImageFolder> {
  const root = path.resolve(options.baseDirectory, source.train);
  const train = await readFolder(root, source, source.labels);
  if (source.validation !== undefined) {
    const validation = await readFolder(
      path.resolve(options.baseDirectory, source.validation),
      source,
      train.labels,
    );
    return { labels: train.labels, train: train.files, test: validation.files };
  }
  const split = holdOut(
    train.files.files.length,
    source.validationFraction ?? DEFAULT_VALIDATION_FRACTION,
    options.seed,
    root,
    'data.images',
  );
  return {
    labels: train.labels,
    train: pickImages(train.files, split.train),
    test: pickImages(train.files, split.validation),
  };
}

/**
 * The images at some indices as a batch, read and decoded now: `x` float32 `[b, width · height ·
 * channels]`, `y` int32 labels `[b]` (the batches of `@fineprune/datasets`).
 *
 * @example
 * ```ts
 * const { x, y } = imageBatch(folder.train, Int32Array.of(0, 1), recipe.data.images!);
 * ```
 */
export function imageBatch(
  images: ImageFiles,
  indices: Int32Array,
  source: RecipeImageData,
): { x: tf.Tensor2D; y: tf.Tensor1D } {
  const featureSize = source.width * source.height * source.channels;
  const values = new Float32Array(indices.length * featureSize);
  indices.forEach((index, row) => {
    const file = images.files[index]!;
    const bytes = readRegularFileSync(file, { maxBytes: source.maxImageBytes, fix: SIZE_FIX });
    imageValues(bytes, file, source, values.subarray(row * featureSize, (row + 1) * featureSize));
  });
  return {
    x: tf.tensor2d(values, [indices.length, featureSize], 'float32'),
    y: tf.tensor1d(
      Int32Array.from(indices, (index) => images.labels[index]!),
      'int32',
    ),
  };
}

/**
 * Run data from an image folder, streamed: the folder is read through once
 * ({@link loadImageFolder}), then each batch's images are read and decoded when the batch is made,
 * in the seeded order of `BatchSource` (`BatchOrder` of `@fineprune/datasets`). Memory holds one
 * batch and each image's path, whatever the number or size of the images.
 *
 * @throws FinepruneError as {@link loadImageFolder}; `INVALID_RECIPE` when `data.batchSize`
 *   exceeds the training images
 *
 * @example
 * ```ts
 * const data = await imageRunData(recipe, recipe.data.images!, '.');
 * ```
 */
export async function imageRunData(
  recipe: Recipe,
  source: RecipeImageData,
  baseDirectory: string,
): Promise<RunData> {
  const folder = await loadImageFolder(source, { baseDirectory, seed: recipe.seed });
  const lazy = (images: ImageFiles): LazyExamples => ({
    count: images.files.length,
    batch: (indices) => imageBatch(images, indices, source),
  });
  return lazyRunData(
    recipe,
    {
      kind: 'features',
      name: path.basename(source.train),
      classes: folder.labels.length,
      labels: folder.labels,
      featureSize: source.width * source.height * source.channels,
    },
    {
      train: lazy(folder.train),
      test: lazy(folder.test),
      order: (count) => new BatchOrder(count, { batchSize: recipe.data.batchSize, seed: recipe.seed }),
      evaluationSize: recipe.data.evaluationBatchSize ?? 1000,
      measureSize: 256,
      measureLimit: 100,
    },
  );
}
