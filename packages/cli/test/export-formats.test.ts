import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileSystem } from '@fineprune/layers';
import { validateRecipe } from '@fineprune/recipes';
import { loadSparseLayersModel, quantizeArtifacts, readCompactFile } from '@fineprune/sparse';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import { builtinModel } from '../src/models';
import { runRecipe } from '../src/run-recipe';
import { captureIo, dataset, temporaryDirectory, tinyRecipe } from './support';

/** Runs the tiny recipe (784-16-10 pruned to 80%) from a model, into a fresh directory. */
async function run(
  model: NonNullable<Parameters<typeof tinyRecipe>[0]>['model'] = { builtin: 'mlp-784-16-10' },
) {
  const directory = temporaryDirectory();
  const outcome = await runRecipe({
    recipe: validateRecipe(tinyRecipe({ model })),
    baseDirectory: directory,
    outputDirectory: directory,
    dataset: await dataset('mnist'),
  });
  expect(outcome.status).toBe('completed');
  return directory;
}

async function exported(argv: string[]) {
  const io = captureIo();
  const code = await main(['export', ...argv, '--json'], io);
  return { code, result: code === 0 ? JSON.parse(io.out()) : undefined, err: io.err() };
}

describe('fineprune export --format … --values …', () => {
  let runDirectory: string;
  beforeAll(async () => {
    await setBackend('cpu');
    runDirectory = await run();
  });

  it('writes a compact sparse export that loads with the sparse kernels and equals the tfjs export', async () => {
    const out = temporaryDirectory();
    const tfjs = await exported([runDirectory, '--out', path.join(out, 'tfjs')]);
    const sparse = await exported([runDirectory, '--out', path.join(out, 'sparse'), '--format', 'sparse']);
    expect(tfjs.code).toBe(ExitCodes.OK);
    expect(sparse.code).toBe(ExitCodes.OK);
    expect(sparse.result).toMatchObject({
      format: 'sparse',
      values: 'float32',
      files: [path.join(out, 'sparse', 'model.fpsparse')],
    });
    expect(sparse.result.bytes).toBe(statSync(path.join(out, 'sparse', 'model.fpsparse')).size);
    // 80% of the kernels pruned: float32 with one-byte gaps is about 3× smaller than the tfjs export.
    expect(sparse.result.bytes * 2.5).toBeLessThan(tfjs.result.bytes);
    expect(sparse.result.sparsity).toBeCloseTo(tfjs.result.sparsity, 10);
    const stock = await tfl.loadLayersModel(fileSystem(path.join(out, 'tfjs')));
    const bytes = new Uint8Array(readFileSync(path.join(out, 'sparse', 'model.fpsparse')));
    const sparseModel = await loadSparseLayersModel(bytes, { mode: 'sparse' });
    const x = tf.randomUniform([5, 784], 0, 1, 'float32', 4);
    const [expected, actual] = [stock.predict(x) as tf.Tensor, sparseModel.predict(x)];
    const scale = tf.max(tf.abs(expected)).dataSync()[0]!;
    expect(tf.max(tf.abs(tf.sub(expected, actual))).dataSync()[0]).toBeLessThanOrEqual(1e-6 * scale);
    tf.dispose([x, expected, actual]);
    stock.dispose();
    sparseModel.dispose();
    const int8 = await exported([
      runDirectory,
      '--out',
      path.join(out, 'int8'),
      '--format',
      'sparse',
      '--values',
      'int8',
    ]);
    expect(int8.result.bytes).toBeLessThan(sparse.result.bytes);
  });

  it("writes TF.js's quantized forms that stock tf.loadLayersModel reads", async () => {
    const out = temporaryDirectory();
    for (const values of ['float16', 'uint8', 'uint16']) {
      const { code, result } = await exported([
        runDirectory,
        '--out',
        path.join(out, values),
        '--values',
        values,
      ]);
      expect(code).toBe(ExitCodes.OK);
      const json = JSON.parse(readFileSync(path.join(out, values, 'model.json'), 'utf8'));
      expect(
        json.weightsManifest[0].weights.map((w: { quantization: { dtype: string } }) => w.quantization.dtype),
      ).toEqual([values, values, values, values]);
      const model = await tfl.loadLayersModel(fileSystem(path.join(out, values)));
      expect(model.layers.length).toBe(2);
      model.dispose();
      expect(result.bytes).toBeLessThan(result.referenceBytes);
    }
  });

  it('refuses values the format cannot store (exit 2)', async () => {
    const io = captureIo();
    expect(await main(['export', runDirectory, '--out', temporaryDirectory(), '--values', 'int8'], io)).toBe(
      ExitCodes.USAGE,
    );
    expect(io.err()).toContain('--values int8 does not fit --format tfjs');
    expect(
      (
        await exported([
          runDirectory,
          '--out',
          temporaryDirectory(),
          '--format',
          'sparse',
          '--values',
          'uint8',
        ])
      ).code,
    ).toBe(ExitCodes.USAGE);
  });

  it('never replaces a file that is not a compact export, nor writes beside a checkpoint', async () => {
    const out = temporaryDirectory();
    writeFileSync(path.join(out, 'model.fpsparse'), 'my notes');
    const refused = await exported([runDirectory, '--out', out, '--format', 'sparse']);
    expect(refused.code).toBe(ExitCodes.IO);
    expect(refused.err).toContain('is not a compact export');
    expect(readFileSync(path.join(out, 'model.fpsparse'), 'utf8')).toBe('my notes');
    const checkpoint = await exported([
      runDirectory,
      '--out',
      path.join(runDirectory, 'checkpoint'),
      '--format',
      'sparse',
    ]);
    expect(checkpoint.code).toBe(ExitCodes.IO);
    // An earlier compact export is replaced.
    const again = temporaryDirectory();
    expect((await exported([runDirectory, '--out', again, '--format', 'sparse'])).code).toBe(ExitCodes.OK);
    expect(
      (await exported([runDirectory, '--out', again, '--format', 'sparse', '--values', 'int8'])).code,
    ).toBe(ExitCodes.OK);
    expect((await readCompactFile(path.join(again, 'model.fpsparse'))).header.tensors[0]!.values).toBe(
      'int8',
    );
  });

  it('a run from a uint8 model exports uint8 by default, and refuses a larger float32 export unless asked', async () => {
    // The source: the 784-16-10 MLP saved with TF.js uint8 quantization, as a converter would.
    const sourceDirectory = path.join(temporaryDirectory(), 'uint8-model');
    const model = builtinModel('mlp-784-16-10', 3);
    const inner = fileSystem(sourceDirectory);
    await model.save({ save: (artifacts) => inner.save!(quantizeArtifacts(artifacts, 'uint8')) });
    model.dispose();
    const sourceBytes = [
      'model.json',
      ...JSON.parse(readFileSync(path.join(sourceDirectory, 'model.json'), 'utf8')).weightsManifest[0].paths,
    ]
      .map((file: string) => statSync(path.join(sourceDirectory, file)).size)
      .reduce((a: number, b: number) => a + b, 0);
    const quantizedRun = await run({ path: sourceDirectory });
    // The run's own export (<out>/model) keeps the source's uint8.
    const runExport = JSON.parse(readFileSync(path.join(quantizedRun, 'model', 'model.json'), 'utf8'));
    expect(runExport.weightsManifest[0].weights[0].quantization.dtype).toBe('uint8');
    const byDefault = await exported([quantizedRun, '--out', temporaryDirectory()]);
    expect(byDefault.result).toMatchObject({ format: 'tfjs', values: 'uint8' });
    // The reference is the source's topology and stored weights (model.json also carries hashes).
    expect(byDefault.result.referenceBytes).toBeLessThan(sourceBytes);
    expect(byDefault.result.referenceBytes).toBeGreaterThan(sourceBytes / 2);
    const larger = await exported([quantizedRun, '--out', temporaryDirectory(), '--values', 'float32']);
    expect(larger.code).toBe(ExitCodes.IO);
    expect(larger.err).toMatch(/LARGER_THAN_SOURCE[\s\S]*--allow-larger/);
    const allowed = await exported([
      quantizedRun,
      '--out',
      temporaryDirectory(),
      '--values',
      'float32',
      '--allow-larger',
    ]);
    expect(allowed.code).toBe(ExitCodes.OK);
    expect(allowed.result.bytes).toBeGreaterThan(allowed.result.referenceBytes);
  });
});

describe('fineprune report: sizes', () => {
  it('prints a size line for runs and checkpoints, and reports a compact export', async () => {
    await setBackend('cpu');
    const runDirectory = await run();
    const text = captureIo();
    expect(await main(['report', runDirectory], text)).toBe(ExitCodes.OK);
    expect(text.out()).toMatch(
      /size: [\d.]+ MB as TF\.js float32 \(gzip [\d.]+ MB, [\d.]+×\); compact sparse export: float32 [\d.]+ MB \([\d.]+×\), float16 [\d.]+ MB \([\d.]+×\), int8 [\d.]+ MB \([\d.]+×\)/,
    );
    const json = captureIo();
    expect(await main(['report', path.join(runDirectory, 'checkpoint'), '--json'], json)).toBe(ExitCodes.OK);
    const { sizes } = JSON.parse(json.out());
    // 784·16 + 16 + 16·10 + 10 weights as float32, plus the topology.
    expect(sizes.tfjs).toBeGreaterThan(4 * (784 * 16 + 16 + 160 + 10));
    expect(sizes.compact.int8).toBeLessThan(sizes.compact.float16);
    expect(sizes.compact.float16).toBeLessThan(sizes.compact.float32);
    expect(sizes.compact.float32).toBeLessThan(sizes.tfjs);
    const out = temporaryDirectory();
    const written = await exported([runDirectory, '--out', out, '--format', 'sparse', '--values', 'int8']);
    expect(written.code, written.err).toBe(0);
    const compact = captureIo();
    expect(await main(['report', out], compact), compact.err()).toBe(ExitCodes.OK);
    expect(compact.out()).toMatch(/dense_1\/kernel\s+\[784, 16\]\s+bitmap\s+int8/);
    expect(compact.out()).toMatch(/size: \d+ bytes \(layers-model compact sparse export\)/);
    const compactJson = captureIo();
    expect(await main(['report', path.join(out, 'model.fpsparse'), '--json'], compactJson)).toBe(
      ExitCodes.OK,
    );
    const compactReport = JSON.parse(compactJson.out());
    expect(compactReport.kind).toBe('compact');
    // The report's estimate encodes the topology alone; the export's header also names TF.js's
    // version (generatedBy, format): a few dozen bytes apart.
    expect(Math.abs(compactReport.bytes - sizes.compact.int8)).toBeLessThanOrEqual(200);
  });
});
