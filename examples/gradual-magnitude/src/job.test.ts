import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Pruner, adam } from '@fineprune/core';
import { batches, loadMnist, type Dataset } from '@fineprune/datasets';
import { fileSystem, fromLayersModel, loadCheckpoint, saveCheckpoint } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { cubic } from '@fineprune/schedulers';
import { magnitude } from '@fineprune/scores';
import { setBackend } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp, runGradualMagnitude } from './job';

let mnist: Dataset;
const directories: string[] = [];
function temporaryDirectory(): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'fineprune-job-'));
  directories.push(directory);
  return directory;
}

beforeAll(async () => {
  mnist = await loadMnist();
});
afterAll(() => {
  for (const directory of directories) rmSync(directory, { recursive: true, force: true });
});

/** Serves a directory on 127.0.0.1 so that stock tf.loadLayersModel can fetch it over HTTP. */
async function serve(directory: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    try {
      const file = path.join(directory, path.basename(new URL(request.url!, 'http://x').pathname));
      response.end(readFileSync(file));
    } catch {
      response.statusCode = 404;
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/model.json`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('the main job on a shortened schedule', () => {
  it('prunes to exactly 90% with global magnitude pruning, stays accurate, and saves a model stock TF.js loads', async () => {
    const output = temporaryDirectory();
    const result = await runGradualMagnitude({
      backend: 'wasm',
      dataset: mnist,
      trainLimit: 6000,
      epochs: 4,
      warmupEpochs: 1,
      cooldownEpochs: 1,
      interval: 20,
      outputDirectory: output,
    });
    // 266,200 prunable weights; 90% → keep 266,200 − round(0.9 × 266,200) = 26,620.
    expect(result.report.total).toBe(784 * 300 + 300 * 100 + 100 * 10);
    expect(result.report.kept).toBe(26_620);
    // 4 epochs on 6,000 examples: a dense MLP reaches ~94%; the bound leaves room for noise.
    expect(result.denseAccuracy).toBeGreaterThan(0.9);
    expect(result.prunedAccuracy).toBeGreaterThan(0.9);

    const server = await serve(output);
    try {
      const loaded = await tfl.loadLayersModel(server.url);
      const kernels = loaded.layers.map((layer) => layer.getWeights()[0]!);
      const zeros = kernels.reduce(
        (sum, kernel) => sum + tf.tidy(() => tf.sum(tf.cast(tf.equal(kernel, 0), 'int32')).dataSync()[0]!),
        0,
      );
      expect(zeros).toBeGreaterThanOrEqual(result.report.total - result.report.kept);
      const x = tf.tensor2d(mnist.test.images.subarray(0, 1000 * 784), [1000, 784]);
      const labels = tf.tensor1d(mnist.test.labels.subarray(0, 1000), 'int32');
      const accuracy = tf.tidy(
        () =>
          tf
            .mean(tf.cast(tf.equal(tf.argMax(loaded.predict(x) as tf.Tensor, -1), labels), 'float32'))
            .dataSync()[0]!,
      );
      expect(accuracy).toBeGreaterThan(0.9);
      tf.dispose([x, labels]);
      loaded.dispose();
    } finally {
      await server.close();
    }
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`resume on ${backend} with the real plugins`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('save in mid-pruning → load → continue gives the same masks as an uninterrupted run', async () => {
      const subset = {
        ...mnist.train,
        count: 2000,
        images: mnist.train.images.subarray(0, 2000 * 784),
        labels: mnist.train.labels.subarray(0, 2000),
      };
      const source = batches(subset, { batchSize: 50, seed: 9 });
      const totalSteps = 60;
      const makePruner = (model: ReturnType<typeof fromLayersModel>) =>
        new Pruner({
          model,
          scores: magnitude(),
          mask: topV({ scope: 'global' }),
          schedule: cubic({
            finalSparsity: 0.9,
            totalSteps,
            warmupSteps: 10,
            cooldownSteps: 10,
            interval: 5,
          }),
          optimizers: { weights: adam({ learningRate: 1e-3 }) },
        });
      const finish = async (model: ReturnType<typeof fromLayersModel>, pruner: Pruner) => {
        await pruner.run({ data: source, untilStep: totalSteps });
        const masks = model.parameters().map((parameter) => Array.from(parameter.mask.dataSync()));
        const weights = model.parameters().map((parameter) => Array.from(parameter.weight.dataSync()));
        pruner.dispose();
        model.dispose();
        return { masks, weights };
      };

      const straightModel = fromLayersModel(buildMlp(5), {
        loss: 'sparseCategoricalCrossentropy',
        fromLogits: true,
      });
      const straight = await finish(straightModel, makePruner(straightModel));

      const firstModel = fromLayersModel(buildMlp(5), {
        loss: 'sparseCategoricalCrossentropy',
        fromLogits: true,
      });
      const firstPruner = makePruner(firstModel);
      await firstPruner.run({ data: source, untilStep: 27 }); // in the middle of the cubic ramp
      const directory = temporaryDirectory();
      await saveCheckpoint(firstModel, firstPruner, fileSystem(directory));
      firstPruner.dispose();
      firstModel.dispose();

      const { model: resumedModel, state } = await loadCheckpoint(fileSystem(directory), {
        loss: 'sparseCategoricalCrossentropy',
        fromLogits: true,
      });
      const resumedPruner = makePruner(resumedModel);
      resumedPruner.loadState(state);
      tf.dispose(Object.values(state.tensors));
      expect(resumedPruner.step).toBe(27);
      const resumed = await finish(resumedModel, resumedPruner);

      expect(resumed.masks).toEqual(straight.masks);
      expect(resumed.weights).toEqual(straight.weights);
      // Two full runs on the cpu backend: ~40 s on a quiet 2-core machine, past 120 s when the
      // machine is shared, so this test gets more than the suite's default limit.
    }, 360_000);
  });
}
