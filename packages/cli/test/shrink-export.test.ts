import { readFileSync } from 'node:fs';
import path from 'node:path';
import { strip } from '@fineprune/layers';
import { validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinRegistry } from '../src/builtins';
import { loadRunCheckpoint } from '../src/checkpoint';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import { runRecipe } from '../src/run-recipe';
import type { RunRecord } from '../src/run-record';
import { captureIo, dataset, recipeFile, temporaryDirectory, tinyRecipe } from './support';

/** Loads model.json + its weight files with stock TF.js only (no fineprune handler). */
async function loadStock(directory: string): Promise<tfl.LayersModel> {
  const json = JSON.parse(readFileSync(path.join(directory, 'model.json'), 'utf8'));
  const manifest = json.weightsManifest as Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  const buffers = manifest.flatMap((group) =>
    group.paths.map((file) => readFileSync(path.join(directory, file))),
  );
  const bytes = new Uint8Array(buffers.reduce((sum, buffer) => sum + buffer.length, 0));
  let offset = 0;
  for (const buffer of buffers) {
    bytes.set(buffer, offset);
    offset += buffer.length;
  }
  return tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: manifest.flatMap((group) => group.weights),
      weightData: bytes.buffer,
    }),
  );
}

/** Hidden units of each Dense layer of a model, in order. */
function denseUnits(model: tfl.LayersModel): number[] {
  return model.layers
    .filter((layer) => layer.getClassName() === 'Dense')
    .map((layer) => layer.getConfig().units as number);
}

/** Max |masked − shrunk| over a batch of 32 test digits: the checkpoint's model with masks applied against `shrunk`. */
async function largestDifference(checkpoint: string, shrunk: tfl.LayersModel): Promise<number> {
  const { model, state } = await loadRunCheckpoint(checkpoint, { loss: 'sparseCategoricalCrossentropy' });
  tf.dispose(Object.values(state.tensors));
  const masked = await strip(model);
  const images = (await dataset('mnist')).test.images;
  const batch = tf.tidy(() => tf.tensor2d(images.slice(0, 32 * 784), [32, 784]));
  const difference = tf.tidy(() =>
    tf.max(tf.abs(tf.sub(masked.predict(batch) as tf.Tensor, shrunk.predict(batch) as tf.Tensor))),
  );
  const value = (await difference.data())[0]!;
  tf.dispose([batch, difference]);
  masked.dispose();
  model.dispose();
  return value;
}

/** Neuron pruning of the 784-32-16-10 MLP: unit movement scores, Top-v per layer, cubic to half the neurons. */
function neuronRecipe(extra: { export?: Record<string, unknown>; model?: { builtin: string } } = {}) {
  return tinyRecipe({
    name: 'neurons',
    model: extra.model ?? { builtin: 'mlp-784-32-16-10' },
    training: {
      steps: 12,
      optimizer: { type: 'adam', learningRate: 0.01 },
      scoreOptimizer: { type: 'adam', learningRate: 0.01 },
      evaluateEvery: 6,
    },
    pruning: [
      {
        name: 'mlp',
        scores: { id: 'unitMovement', options: { init: { type: 'magnitude' } } },
        mask: { id: 'unitTopV', options: { scope: 'local' } },
        schedule: {
          id: 'cubic',
          options: { finalSparsity: 0.5, totalSteps: 12, warmupSteps: 2, cooldownSteps: 2, interval: 2 },
        },
      },
    ],
    ...(extra.export ? { export: extra.export } : {}),
  });
}

describe('shrinking exports', () => {
  let runDirectory: string;
  let record: RunRecord;

  beforeAll(async () => {
    await setBackend('cpu');
    runDirectory = temporaryDirectory();
    const outcome = await runRecipe({
      recipe: validateRecipe(neuronRecipe({ export: { shrink: true } })),
      baseDirectory: runDirectory,
      registry: builtinRegistry(),
      outputDirectory: runDirectory,
      dataset: await dataset('mnist'),
    });
    expect(outcome.status).toBe('completed');
    record = JSON.parse(readFileSync(path.join(runDirectory, 'run.json'), 'utf8'));
  }, 120_000);

  it('a recipe with export.shrink writes the smaller model, which gives the masked outputs', async () => {
    const shrunk = await loadStock(path.join(runDirectory, 'model'));
    // Half of 32 and of 16 hidden neurons kept by Top-v (local); the output layer is never cut.
    expect(denseUnits(shrunk)).toEqual([16, 8, 10]);
    expect(record.shrink!.structures.map(({ count, kept }) => [count, kept])).toEqual([
      [32, 16],
      [16, 8],
    ]);
    expect(record.shrink!.skipped).toHaveLength(1);
    // 784·16 + 16 + 16·8 + 8 + 8·10 + 10 parameters after, 784·32 + 32 + 32·16 + 16 + 16·10 + 10 before.
    expect(record.shrink!.parametersAfter).toBe(784 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10);
    expect(record.shrink!.parametersBefore).toBe(784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10);
    expect(record.shrink!.bytesAfter).toBe(4 * shrunk.countParams());
    expect(readFileSync(path.join(runDirectory, 'report.html'), 'utf8')).toContain('data-table="shrink"');
    expect(await largestDifference(path.join(runDirectory, 'checkpoint'), shrunk)).toBeLessThanOrEqual(1e-5);
    shrunk.dispose();
  }, 60_000);

  it('fineprune export --shrink writes the same smaller model and says what each structure kept', async () => {
    const out = temporaryDirectory();
    const io = captureIo();
    expect(
      await main(['export', runDirectory, '--out', out, '--shrink', '--json'], io),
      io.out() + io.err(),
    ).toBe(ExitCodes.OK);
    const summary = JSON.parse(io.out());
    expect(summary.shrink.structures).toEqual(record.shrink!.structures);
    const shrunk = await loadStock(out);
    expect(denseUnits(shrunk)).toEqual([16, 8, 10]);
    expect(await largestDifference(path.join(runDirectory, 'checkpoint'), shrunk)).toBeLessThanOrEqual(1e-5);
    shrunk.dispose();
    const text = captureIo();
    expect(
      await main(
        ['export', runDirectory, '--out', temporaryDirectory(), '--shrink', '--format', 'sparse'],
        text,
      ),
    ).toBe(ExitCodes.OK);
    expect(text.out()).toMatch(/neurons\): kept 16 of 32/);
  }, 60_000);

  it('refuses shrink where nothing can be removed, and a sparse file of a shrunk BERT, naming why', async () => {
    // A single Dense layer is the model's output: structures() is empty.
    const outputDirectory = temporaryDirectory();
    const refused = runRecipe({
      // Magnitude + Top-v over weights (tinyRecipe's) runs on it; only the shrink is refused, before training.
      recipe: validateRecipe(tinyRecipe({ model: { builtin: 'mlp-784-10' }, export: { shrink: true } })),
      baseDirectory: outputDirectory,
      registry: builtinRegistry(),
      outputDirectory,
      dataset: await dataset('mnist'),
    });
    await expect(refused).rejects.toMatchObject({
      code: 'INVALID_RECIPE',
      details: { path: 'export.shrink' },
    });
    const io = captureIo();
    const recipe = recipeFile({ ...neuronRecipe(), export: { shrink: true, strip: false } });
    expect(await main(['validate', recipe], io)).toBe(ExitCodes.INVALID_RECIPE);
    expect(io.err()).toMatch(/export\.shrink/);
    const bert = captureIo();
    const sparseBert = recipeFile({
      ...neuronRecipe(),
      model: { huggingFace: './bert' },
      export: { shrink: true, format: 'sparse' },
    });
    expect(await main(['validate', sparseBert], bert)).toBe(ExitCodes.INVALID_RECIPE);
    expect(bert.err()).toMatch(/export\.shrink.*Hugging Face layout/);
  }, 60_000);
});
