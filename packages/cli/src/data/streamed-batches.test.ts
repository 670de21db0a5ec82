import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { batches, PermutationDomain, seededPermutation } from '@fineprune/datasets';
import { type RecipeInput, validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import { createBertTokenizer, disposeBatch, encodeExamples } from '@fineprune/text';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { residentGrowth, temporaryDirectory, tinyRecipe, writeLines } from '../../test/support';
import { loadRunData } from '../data-sources';
import type { RunData } from '../run-data';

const tokenizer = createBertTokenizer();

/** A recipe reading `data` (a text file or an image folder), batches of `batchSize`, seed `seed`. */
function recipeOf(data: RecipeInput['data'], seed: number) {
  return validateRecipe(tinyRecipe({ seed, data }));
}

/** Every training batch of epoch `epoch`, read back as `id(row)` per example; each disposed. */
async function epochIds(
  data: RunData,
  epoch: number,
  batchSize: number,
  id: (batch: tf.Tensor, row: number) => number,
): Promise<number[]> {
  const steps = Math.floor(data.trainCount / batchSize);
  const ids: number[] = [];
  for (let step = epoch * steps; step < (epoch + 1) * steps; step++) {
    const batch = data.train.batch(step);
    const x = batch.x as tf.Tensor | Record<string, tf.Tensor>;
    const values = x instanceof tf.Tensor ? x : x.inputIds!;
    for (let row = 0; row < values.shape[0]!; row++) ids.push(id(values, row));
    disposeBatch(batch);
  }
  return ids;
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('text data streamed through the training batch source', () => {
  it('serves the batches the in-memory encoding served (same examples, order and token values)', async () => {
    const directory = temporaryDirectory();
    const texts = Array.from(
      { length: 37 },
      (_, index) => `message ${index} ${'about lunch '.repeat(index % 5)}`,
    );
    const rows = texts.map((text, index) =>
      JSON.stringify({ text, label: index % 3 === 0 ? 'spam' : 'ham' }),
    );
    writeFileSync(path.join(directory, 'train.jsonl'), `${rows.join('\n')}\n`);
    const recipe = recipeOf(
      { text: { train: 'train.jsonl', validationFraction: 0.2 }, tokenizer: { maxLength: 12 }, batchSize: 5 },
      9,
    );
    const data = await loadRunData(recipe, directory);
    // The reference: the hold-out of the previous, in-memory path (the last round(0.2 · 37) = 7 of
    // the validation-domain permutation, each part in file order), encoded whole by encodeExamples.
    const order = seededPermutation(37, 9, 0, PermutationDomain.validation);
    const trainRows = Array.from(order.slice(0, 30).sort());
    const testRows = Array.from(order.slice(30).sort());
    const example = (index: number) => ({ text: texts[index]!, label: index % 3 === 0 ? 1 : 0, source: '' });
    const reference = encodeExamples(tokenizer, trainRows.map(example), {
      maxLength: 12,
      batchSize: 5,
      seed: 9,
    });
    expect([data.trainCount, data.testCount, data.sequenceLength]).toEqual([30, 7, 12]);
    expect(data.labels).toEqual(['ham', 'spam']);
    for (let step = 0; step < 13; step++) {
      const streamed = data.train.batch(step) as ReturnType<typeof reference.batch>;
      const expected = reference.batch(step);
      expect(await streamed.x.inputIds.array()).toEqual(await expected.x.inputIds.array());
      expect(await streamed.x.attentionMask.array()).toEqual(await expected.x.attentionMask.array());
      expect(Array.from(await streamed.y.data())).toEqual(Array.from(await expected.y.data()));
      disposeBatch(streamed);
      disposeBatch(expected);
    }
    const evaluation = [...data.evaluationBatches()];
    const expectedTest = encodeExamples(tokenizer, testRows.map(example), {
      maxLength: 12,
      batchSize: 7,
      shuffle: false,
    });
    const all = expectedTest.evaluationBatches().next().value!;
    expect(evaluation).toHaveLength(1);
    expect(await (evaluation[0]!.x as typeof all.x).inputIds.array()).toEqual(await all.x.inputIds.array());
    evaluation.forEach(disposeBatch);
    disposeBatch(all);
  });

  it('shuffles by the seed, visits every example once per epoch, and leaks no tensor', async () => {
    const directory = temporaryDirectory();
    // Row i's text is the number i: one wordpiece, so the token after [CLS] names the row.
    const count = 60;
    const rows = Array.from({ length: count }, (_, index) =>
      JSON.stringify({ text: String(index), label: index % 2 }),
    );
    writeFileSync(path.join(directory, 'train.jsonl'), `${rows.join('\n')}\n`);
    writeFileSync(path.join(directory, 'dev.jsonl'), `${rows.slice(0, 4).join('\n')}\n`);
    const idOf = new Map(
      Array.from({ length: count }, (_, index) => [tokenizer.encode(String(index)).ids[1]!, index]),
    );
    expect(idOf.size).toBe(count);
    const data = async (seed: number) =>
      loadRunData(
        recipeOf(
          {
            text: { train: 'train.jsonl', validation: 'dev.jsonl' },
            tokenizer: { maxLength: 4 },
            batchSize: 10,
          },
          seed,
        ),
        directory,
      );
    const rowId = (values: tf.Tensor, row: number) =>
      idOf.get((values.arraySync() as number[][])[row]![1]!) ?? -1;
    const first = await data(1);
    const before = tf.memory().numTensors;
    const epoch0 = await epochIds(first, 0, 10, rowId);
    const epoch1 = await epochIds(first, 1, 10, rowId);
    expect(tf.memory().numTensors).toBe(before);
    const everyRow = Array.from({ length: count }, (_, index) => index);
    expect([...epoch0].sort((a, b) => a - b)).toEqual(everyRow);
    expect([...epoch1].sort((a, b) => a - b)).toEqual(everyRow);
    expect(epoch1).not.toEqual(epoch0);
    expect(await epochIds(await data(1), 0, 10, rowId)).toEqual(epoch0);
    expect(await epochIds(await data(2), 0, 10, rowId)).not.toEqual(epoch0);
  });

  it('streams a 100 MB file through the training batch source in bounded memory, whatever maxLength', async () => {
    const directory = temporaryDirectory();
    const file = path.join(directory, 'many.jsonl');
    const row = (index: number) =>
      `{"text": "${'words of a message '.repeat(12)}${index}", "label": "${index % 2 ? 'spam' : 'ham'}"}\n`;
    const count = Math.ceil((100 * 1024 * 1024) / row(0).length);
    await writeLines(file, count, row);
    const recipe = recipeOf(
      {
        text: { train: 'many.jsonl', validationFraction: 0.01 },
        tokenizer: { maxLength: 512 },
        batchSize: 64,
      },
      0,
    );
    let data: RunData | undefined;
    const before = tf.memory().numTensors;
    const { growth, error } = await residentGrowth(async () => {
      data = await loadRunData(recipe, directory);
      // 100 batches in the shuffled order: rows from all over the file, read by their offsets.
      for (let step = 0; step < 100; step++) {
        disposeBatch(data.train.batch(step));
        if (step % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
      }
    });
    expect(error).toBeUndefined();
    expect(data!.trainCount + data!.testCount).toBe(count);
    expect(tf.memory().numTensors).toBe(before);
    // Held whole, the examples would take count · 512 · 12 bytes (about 2.5 GB); kept as offsets and
    // labels they take count · 24 bytes (about 10 MB), and one batch 64 · 512 · 12 bytes.
    expect(count * 512 * 12).toBeGreaterThan(2e9);
    expect(growth).toBeLessThan(64 * 1024 * 1024);
  }, 240_000);

  it('refuses to read rows of a file that changed since it was read through', async () => {
    const directory = temporaryDirectory();
    const rows = Array.from({ length: 20 }, (_, index) =>
      JSON.stringify({ text: `t ${index}`, label: index % 2 }),
    );
    const file = path.join(directory, 'train.jsonl');
    writeFileSync(file, `${rows.join('\n')}\n`);
    const data = await loadRunData(
      recipeOf(
        {
          text: { train: 'train.jsonl', validationFraction: 0.1 },
          tokenizer: { maxLength: 4 },
          batchSize: 2,
        },
        0,
      ),
      directory,
    );
    writeFileSync(file, `${rows.slice(1).join('\n')}\n`);
    expect(() => data.train.batch(0)).toThrow(/train\.jsonl: changed since it was read through/);
  });
});

/** A PNG of one colour: (index mod 256, floor(index / 256), 0). */
function colourPng(size: number, index: number): Buffer {
  const image = new PNG({ width: size, height: size });
  for (let pixel = 0; pixel < size * size; pixel++)
    image.data.set([index % 256, Math.floor(index / 256), 0, 255], pixel * 4);
  return PNG.sync.write(image);
}

describe('image folders streamed through the training batch source', () => {
  it('serves the batches BatchSource served from the folder loaded whole (same images, order and values)', async () => {
    const directory = temporaryDirectory();
    for (const name of ['a', 'b']) mkdirSync(path.join(directory, 'train', name), { recursive: true });
    const fileOf = (index: number) => path.join(index % 2 ? 'b' : 'a', `${index}.png`);
    for (let index = 0; index < 23; index++)
      writeFileSync(path.join(directory, 'train', fileOf(index)), colourPng(3, index * 11));
    const images = { train: 'train', width: 3, height: 3, channels: 3 as const, mean: [0.5], std: [0.25] };
    const data = await loadRunData(recipeOf({ images, batchSize: 4 }, 6), directory);
    // The reference, built by hand as the previous in-memory path built it: files in class then
    // name order (code points), the last round(0.1 · 23) = 2 of the validation-domain permutation
    // held out, each part in file order, every pixel of image i ((11i mod 256)/255,
    // floor(11i/256)/255, 0) normalised to (v − 0.5)/0.25; then BatchSource of @fineprune/datasets.
    const files = Array.from({ length: 23 }, (_, index) => index).sort((a, b) =>
      fileOf(a) < fileOf(b) ? -1 : 1,
    );
    const kept = Array.from(seededPermutation(23, 6, 0, PermutationDomain.validation).slice(0, 21).sort());
    const pixels = new Float32Array(21 * 27);
    const labels = new Uint8Array(21);
    kept.forEach((at, row) => {
      const index = files[at]!;
      const colour = [((11 * index) % 256) / 255, Math.floor((11 * index) / 256) / 255, 0];
      for (let value = 0; value < 27; value++) pixels[row * 27 + value] = (colour[value % 3]! - 0.5) / 0.25;
      labels[row] = index % 2;
    });
    const reference = batches(
      { images: pixels, labels, count: 21, featureSize: 27 },
      { batchSize: 4, seed: 6 },
    );
    expect([data.trainCount, data.testCount]).toEqual([21, 2]);
    for (let step = 0; step < 12; step++) {
      const streamed = data.train.batch(step);
      const expected = reference.batch(step);
      const got = (streamed.x as tf.Tensor).dataSync();
      const want = expected.x.dataSync();
      // float32 of (v/255 − 0.5)/0.25 computed two ways: equal within 1e-6.
      for (let at = 0; at < want.length; at++) expect(Math.abs(got[at]! - want[at]!)).toBeLessThan(1e-6);
      expect(Array.from((streamed.y as tf.Tensor).dataSync())).toEqual(Array.from(expected.y.dataSync()));
      disposeBatch(streamed);
      tf.dispose([expected.x, expected.y]);
    }
  });

  it('reads thousands of files a batch at a time: bounded memory, each image once per epoch, seeded order, no leak', async () => {
    const directory = temporaryDirectory();
    const count = 3000;
    const size = 64;
    // Written by a child process: encoding 3000 PNGs here would leave freed buffers resident in this
    // process, room that the images read later could reuse without the resident size growing.
    const writer = `
      const { mkdirSync, writeFileSync } = require('node:fs');
      const path = require('node:path');
      const { PNG } = require('pngjs');
      const [directory, count, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
      for (const name of ['a', 'b', 'c']) mkdirSync(path.join(directory, 'train', name), { recursive: true });
      for (let index = 0; index < count; index++) {
        const image = new PNG({ width: size, height: size });
        for (let pixel = 0; pixel < size * size; pixel++)
          image.data.set([index % 256, Math.floor(index / 256), 0, 255], pixel * 4);
        const file = path.join(directory, 'train', ['a', 'b', 'c'][index % 3], String(index).padStart(5, '0') + '.png');
        writeFileSync(file, PNG.sync.write(image));
      }`;
    execFileSync(process.execPath, ['-e', writer, directory, String(count), String(size)], {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
    });
    const images = {
      train: 'train',
      width: size,
      height: size,
      channels: 3 as const,
      validationFraction: 0.1,
    };
    // Image i's first two values are (i mod 256)/255 and floor(i/256)/255: they name it.
    const imageId = (values: tf.Tensor, row: number) => {
      const pixel = (tf.slice(values, [row, 0], [1, 2]).dataSync() as Float32Array).map((value) =>
        Math.round(value * 255),
      );
      return pixel[0]! + 256 * pixel[1]!;
    };
    let data: RunData | undefined;
    let epoch0: number[] = [];
    const before = tf.memory().numTensors;
    const { growth, error } = await residentGrowth(async () => {
      data = await loadRunData(recipeOf({ images, batchSize: 90 }, 4), directory);
      epoch0 = await epochIds(data, 0, 90, (values, row) => tf.tidy(() => imageId(values, row)));
    });
    expect(error).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
    expect([data!.trainCount, data!.testCount, data!.featureSize]).toEqual([2700, 300, size * size * 3]);
    // 2700 training images in 30 batches of 90: each once.
    expect(new Set(epoch0).size).toBe(2700);
    // Held whole, the images would take 3000 · 64 · 64 · 3 · 4 bytes = 147 MB.
    expect(growth).toBeLessThan(64 * 1024 * 1024);
    const again = await loadRunData(recipeOf({ images, batchSize: 90 }, 4), directory);
    const other = await loadRunData(recipeOf({ images, batchSize: 90 }, 5), directory);
    const firstIds = (source: RunData) => {
      const batch = source.train.batch(0);
      const ids = Array.from({ length: 90 }, (_, row) => tf.tidy(() => imageId(batch.x as tf.Tensor, row)));
      disposeBatch(batch);
      return ids;
    };
    expect(firstIds(again)).toEqual(epoch0.slice(0, 90));
    expect(firstIds(other)).not.toEqual(epoch0.slice(0, 90));
  }, 240_000);
});
