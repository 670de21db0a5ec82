import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import { runRecipe } from '../src/run-recipe';
import { captureIo, dataset, temporaryDirectory, tinyRecipe } from './support';

const io = captureIo;

/** Every file of a directory with its bytes, to show that nothing changed. */
function snapshot(directory: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(directory).map((file) => [file, readFileSync(path.join(directory, file)).toString('base64')]),
  );
}

describe('fineprune export never overwrites what it should not, and refuses tampered checkpoints', () => {
  let run: string;
  let checkpoint: string;

  beforeAll(async () => {
    await setBackend('cpu');
    run = temporaryDirectory();
    const outcome = await runRecipe({
      recipe: validateRecipe(tinyRecipe()),
      baseDirectory: run,
      outputDirectory: run,
      dataset: await dataset('mnist'),
    });
    expect(outcome.status).toBe('completed');
    checkpoint = path.join(run, 'checkpoint');
  });

  it('refuses --out RUN/checkpoint (exit 4): the checkpoint stays byte for byte and still reports', async () => {
    const before = snapshot(checkpoint);
    const result = io();
    expect(await main(['export', run, '--out', checkpoint], result)).toBe(ExitCodes.IO);
    expect(result.err()).toMatch(/error \[IO_FAILED\]: --out .* is the checkpoint being exported/);
    expect(snapshot(checkpoint)).toEqual(before);
    expect(await main(['report', run, '--json'], io())).toBe(ExitCodes.OK);
  });

  it('refuses --out RUN itself, and --out a folder holding another checkpoint or a file that is not a model', async () => {
    const result = io();
    expect(await main(['export', run, '--out', run], result)).toBe(ExitCodes.IO);
    expect(result.err()).toMatch(/is a run output directory/);
    expect(existsSync(path.join(run, 'model.json'))).toBe(false);

    const otherCheckpoint = path.join(temporaryDirectory(), 'checkpoint');
    cpSync(checkpoint, otherCheckpoint, { recursive: true });
    const before = snapshot(otherCheckpoint);
    const over = io();
    expect(await main(['export', run, '--out', otherCheckpoint], over)).toBe(ExitCodes.IO);
    expect(over.err()).toMatch(
      /holds a fineprune checkpoint; saving a plain layers model \(an export\) there/,
    );
    expect(snapshot(otherCheckpoint)).toEqual(before);

    const notes = temporaryDirectory();
    writeFileSync(path.join(notes, 'model.json'), 'my notes');
    expect(await main(['export', run, '--out', notes], io())).toBe(ExitCodes.IO);
    expect(readFileSync(path.join(notes, 'model.json'), 'utf8')).toBe('my notes');
  });

  it('exports again over its own export, keeping the files fineprune did not write', async () => {
    const out = path.join(temporaryDirectory(), 'model');
    expect(await main(['export', run, '--out', out], io())).toBe(ExitCodes.OK);
    writeFileSync(path.join(out, 'README.txt'), 'mine');
    expect(await main(['export', run, '--out', out], io())).toBe(ExitCodes.OK);
    const files = readdirSync(out).sort();
    expect(files.filter((file) => file.endsWith('.bin'))).toHaveLength(1);
    expect(files).toContain('README.txt');
  });

  it('refuses a flipped byte or an edited step, naming the file and the entry (exit 4)', async () => {
    const flipped = path.join(temporaryDirectory(), 'checkpoint');
    cpSync(checkpoint, flipped, { recursive: true });
    const bin = readdirSync(flipped).find((file) => file.endsWith('.bin'))!;
    const bytes = readFileSync(path.join(flipped, bin));
    bytes[9] = bytes[9]! ^ 0x20; // inside the first weight, dense_1/kernel
    writeFileSync(path.join(flipped, bin), bytes);
    for (const command of ['export', 'report'] as const) {
      const result = io();
      const argv =
        command === 'export'
          ? ['export', flipped, '--out', path.join(temporaryDirectory(), 'm')]
          : ['report', flipped];
      expect(await main(argv, result), command).toBe(ExitCodes.IO);
      expect(result.err(), command).toContain(
        `The bytes of the weight "dense_1/kernel" in ${path.join(flipped, bin)}`,
      );
    }
    const edited = path.join(temporaryDirectory(), 'checkpoint');
    cpSync(checkpoint, edited, { recursive: true });
    const modelJson = path.join(edited, 'model.json');
    writeFileSync(modelJson, readFileSync(modelJson, 'utf8').replace('"step":12', '"step":11'));
    const result = io();
    expect(await main(['export', edited, '--out', path.join(temporaryDirectory(), 'm')], result)).toBe(
      ExitCodes.IO,
    );
    expect(result.err()).toMatch(
      /error \[CHECKPOINT_CORRUPT\]: .*model\.json does not match its content hash/,
    );
  });

  it('exports a version-1 checkpoint (no hashes) only with --allow-unverified', async () => {
    const old = path.join(temporaryDirectory(), 'checkpoint');
    cpSync(checkpoint, old, { recursive: true });
    const modelJson = path.join(old, 'model.json');
    const json = JSON.parse(readFileSync(modelJson, 'utf8'));
    delete json.finepruneIntegrity;
    json.userDefinedMetadata.fineprune.formatVersion = 1;
    writeFileSync(modelJson, JSON.stringify(json));
    const refused = io();
    expect(await main(['export', old, '--out', path.join(temporaryDirectory(), 'm')], refused)).toBe(
      ExitCodes.IO,
    );
    expect(refused.err()).toMatch(/version-1 checkpoint/);
    const out = path.join(temporaryDirectory(), 'm');
    expect(await main(['export', old, '--out', out, '--allow-unverified'], io())).toBe(ExitCodes.OK);
    expect(existsSync(path.join(out, 'model.json'))).toBe(true);
  });

  it('never replaces a checkpoint with the final export of a run whose checkpoint.directory is <out>/model', async () => {
    const directory = temporaryDirectory();
    const recipe = validateRecipe(tinyRecipe({ checkpoint: { every: 6, directory: 'out/model' } }));
    const outcome = await runRecipe({
      recipe,
      baseDirectory: directory,
      outputDirectory: path.join(directory, 'out'),
      dataset: await dataset('mnist'),
    }).then(
      (value) => value,
      (error: unknown) => error,
    );
    // Refused at the end (by the library) or up front (by the run); either way a typed error.
    expect((outcome as { code?: string }).code).toMatch(/^(IO_FAILED|INVALID_RECIPE|INVALID_ARGUMENT)$/);
    const model = path.join(directory, 'out', 'model');
    if (existsSync(path.join(model, 'model.json'))) {
      const json = JSON.parse(readFileSync(path.join(model, 'model.json'), 'utf8'));
      expect(json.userDefinedMetadata.fineprune).toBeDefined(); // still the checkpoint, not an export
    }
  });

  it('refuses a report or export of a checkpoint whose mask holds NaN, −1 or 2, naming the entry', async () => {
    const { fileSystem } = await import('@fineprune/layers');
    const tf = await import('@tensorflow/tfjs-core');
    for (const bad of [Number.NaN, -1, 2]) {
      const artifacts = await fileSystem(checkpoint).load!();
      const tensors = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
      const mask = tensors['fineprune/mask/dense_2/kernel']!;
      const values = Float32Array.from(mask.dataSync());
      values[4] = bad;
      tensors['fineprune/mask/dense_2/kernel'] = tf.tensor(values, mask.shape);
      mask.dispose();
      const encoded = await tf.io.encodeWeights(tensors);
      tf.dispose(Object.values(tensors));
      const target = path.join(temporaryDirectory(), 'checkpoint');
      mkdirSync(target);
      await fileSystem(target).save!({ ...artifacts, weightSpecs: encoded.specs, weightData: encoded.data });
      const result = io();
      expect(await main(['report', target], result), String(bad)).toBe(ExitCodes.IO);
      expect(result.err(), String(bad)).toContain(
        `holds ${bad} at index 4 of "fineprune/mask/dense_2/kernel"`,
      );
    }
  });
});
