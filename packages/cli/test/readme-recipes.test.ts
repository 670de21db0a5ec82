/**
 * The recipes of the README's "Your own data, end to end", taken from the README as they stand (by
 * their marker comments, never a copy here), given the files the README says a user provides, and
 * run through the command's own entry: `validate`, then `run --max-steps`.
 */

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileSystem } from '@fineprune/layers';
import { setBackend } from '@fineprune/tensor';
import { loadHuggingFaceDirectory } from '@fineprune/transformers/node';
import * as tfl from '@tensorflow/tfjs-layers';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import type { RunRecord } from '../src/run-record';
import { spamJsonl, tinyBertFolder } from './bert-support';
import { captureIo } from './support';

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
/** Under the package, so that a user module's `import '@tensorflow/tfjs-layers'` resolves as in a project. */
const OUTPUT = fileURLToPath(new URL('../test-output/', import.meta.url));

/** The fenced block of `language` right after `<!-- marker -->` in the README. */
function readmeBlock(marker: string, language: string): string {
  const at = README.indexOf(`<!-- ${marker} -->\n`);
  if (at < 0) throw new Error(`README.md has no <!-- ${marker} --> marker`);
  const block = new RegExp(`^<!-- [^>]+ -->\\n\`\`\`${language}\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(
    README.slice(at),
  );
  if (!block) throw new Error(`README.md: no \`\`\`${language} block right after <!-- ${marker} -->`);
  return block[1]!;
}

const projects: string[] = [];

/** A fresh project folder under test-output/, removed after the tests (its outputs are not the repository's). */
function projectDirectory(): string {
  mkdirSync(OUTPUT, { recursive: true });
  const directory = mkdtempSync(path.join(OUTPUT, 'readme-'));
  projects.push(directory);
  return directory;
}

afterAll(() => {
  for (const directory of projects) rmSync(directory, { recursive: true, force: true });
});

/** Runs `fineprune <arguments>` through the command's entry; returns its exit code and output. */
async function fineprune(...arguments_: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await main(arguments_, io);
  return { code, out: io.out(), err: io.err() };
}

/** Grey 28 × 28 PNGs: `count` per class, each class a different brightness with a little noise. */
function writeImages(folder: string, classes: readonly string[], count: number): void {
  classes.forEach((name, classIndex) => {
    mkdirSync(path.join(folder, name), { recursive: true });
    for (let index = 0; index < count; index++) {
      const image = new PNG({ width: 28, height: 28 });
      for (let pixel = 0; pixel < 28 * 28; pixel++) {
        const value = 40 + 80 * classIndex + ((pixel * 7 + index * 13) % 17);
        image.data.set([value, value, value, 255], pixel * 4);
      }
      writeFileSync(path.join(folder, name, `${index}.png`), PNG.sync.write(image));
    }
  });
}

const zeroShare = (values: ArrayLike<number>) =>
  Array.from(values).filter((value) => value === 0).length / values.length;

/** The README's quick look (`fineprune run recipe.yaml --max-steps 20`): schedules scaled to 20 steps. */
const QUICK_LOOK = '20';

beforeAll(async () => {
  await setBackend('cpu'); // for the test's own tiny BERT; the runs use the recipes' default, wasm
});

describe('the README recipes, written by hand from the README alone', () => {
  it('BERT on JSONL files: validate says valid, run exits 0, the Hugging Face export loads back, F1 is reported', async () => {
    const directory = projectDirectory();
    writeFileSync(path.join(directory, 'recipe.yaml'), readmeBlock('readme-recipe: bert-text', 'yaml'));
    // What the README tells the user to provide: bert/{config.json, model.safetensors, vocab.txt}
    // (128 positions, for the recipe's maxLength) and data/{train,dev}.jsonl of text + label.
    await tinyBertFolder(directory, 2, { hiddenSize: 8, intermediateSize: 16 }, 128);
    mkdirSync(path.join(directory, 'data'));
    spamJsonl(path.join(directory, 'data'), 'train.jsonl', 48);
    spamJsonl(path.join(directory, 'data'), 'dev.jsonl', 16);
    const recipe = path.join(directory, 'recipe.yaml');

    const validate = await fineprune('validate', recipe);
    expect(validate.err).toBe('');
    expect(validate.code).toBe(ExitCodes.OK);
    expect(validate.out).toMatch(
      /recipe\.yaml: valid \(data\.text: 48 training and 16 validation examples, labels ham, spam\)/,
    );

    const run = await fineprune('run', recipe, '--max-steps', QUICK_LOOK);
    expect(run.code, run.err).toBe(ExitCodes.OK);
    const out = path.join(directory, 'out', 'my-bert-mvp');
    const record = JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8')) as RunRecord;
    expect(record.steps).toBe(20);
    // metrics: [accuracy, f1] — every evaluation carries F1 in [0, 1], and the final one too.
    expect(record.evaluations.length).toBeGreaterThan(0);
    for (const point of record.evaluations) {
      expect(point.f1).toBeGreaterThanOrEqual(0);
      expect(point.f1).toBeLessThanOrEqual(1);
    }
    expect(record.final.f1).toBe(record.evaluations.at(-1)!.f1);
    // finalSparsity 0.9 over the 12 projections (local Top-v): 10% of the weights remain.
    expect(record.final.remaining).toBeCloseTo(0.1, 2);
    // keepBest: { metric: f1 }
    expect(JSON.parse(readFileSync(path.join(out, 'best.json'), 'utf8')).metric).toBe('f1');
    // export: { format: huggingface } loads back, its masks applied: 90% of each projection is zero
    // (8 × 8 = 64 weights; Top-v keeps round(0.1 · 64) = 6, so 58 / 64 = 0.906 are zero).
    const { model } = await loadHuggingFaceDirectory(path.join(out, 'model'));
    const query = model
      .parameters()
      .find((parameter) => parameter.name === 'layer_0/attention/query/kernel')!;
    expect(zeroShare(await query.weight.data())).toBeCloseTo(0.9, 1);
    model.dispose();
  }, 180_000);

  it('a CNN module on an image folder: validate says valid, run exits 0, the TF.js export loads back with 10% of its kernels', async () => {
    const directory = projectDirectory();
    writeFileSync(path.join(directory, 'recipe.yaml'), readmeBlock('readme-recipe: cnn-images', 'yaml'));
    // What the README tells the user to provide: my-cnn.mjs (the README's module) and
    // images/{train,test}/<class>/*.png, 28 × 28, three classes for the module's three outputs.
    writeFileSync(path.join(directory, 'my-cnn.mjs'), readmeBlock('readme-module: my-cnn.mjs', 'js'));
    const classes = ['bird', 'cat', 'dog'];
    writeImages(path.join(directory, 'images', 'train'), classes, 4);
    writeImages(path.join(directory, 'images', 'test'), classes, 2);
    const recipe = path.join(directory, 'recipe.yaml');
    // 12 training images cannot make a batch of 32: validate says so, as run would, before training.
    const tooFew = await fineprune('validate', recipe);
    expect(tooFew.code).toBe(ExitCodes.INVALID_RECIPE);
    expect(tooFew.err).toMatch(/data\.batchSize 32 is larger than the 12 training examples/);
    writeImages(path.join(directory, 'images', 'train'), classes, 12);

    const validate = await fineprune('validate', recipe);
    expect(validate.err).toBe('');
    expect(validate.code).toBe(ExitCodes.OK);
    expect(validate.out).toMatch(/recipe\.yaml: valid \(data\.images: 36 training and 6 validation examples/);

    const run = await fineprune('run', recipe, '--max-steps', QUICK_LOOK);
    expect(run.code, run.err).toBe(ExitCodes.OK);
    const out = path.join(directory, 'out', 'my-cnn');
    const record = JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8')) as RunRecord;
    expect(record.evaluations.length).toBeGreaterThan(0);
    for (const point of record.evaluations) {
      expect(point.macroF1).toBeGreaterThanOrEqual(0);
      expect(point.macroF1).toBeLessThanOrEqual(1);
    }
    expect(existsSync(path.join(out, 'best.json'))).toBe(true);
    // export: { format: tfjs } — stock TF.js loads it; global Top-v kept 10% of the three kernels
    // (3·3·1·8 + 3·3·8·16 + 400·3 = 2,424 weights: 242 kept, 2,182 zero).
    const model = await tfl.loadLayersModel(fileSystem(path.join(out, 'model')));
    expect(model.outputs[0]!.shape).toEqual([null, 3]);
    const kernels = model.weights.filter((weight) => /\/kernel(_\d+)?$/.test(weight.name));
    expect(
      kernels.map((kernel) => kernel.name),
      model.weights.map((weight) => weight.name).join(),
    ).toHaveLength(3);
    const values = (await Promise.all(kernels.map((kernel) => kernel.read().data()))).flatMap((data) =>
      Array.from(data),
    );
    expect(values).toHaveLength(2424);
    expect(values.filter((value) => value === 0)).toHaveLength(2182);
    model.dispose();
  }, 180_000);
});
