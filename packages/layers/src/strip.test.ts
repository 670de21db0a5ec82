import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setBackend } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSystem } from './file-system';
import { fromLayersModel } from './from-layers-model';
import { maskedWeights, saveStripped, strip } from './strip';
import { BACKENDS, expectClose, expectNoLeak, maskHalf, mlp, release } from './test-support';

/** Serves the files of `directory` on 127.0.0.1 at a random port. */
async function serve(directory: string): Promise<{ url: string; server: Server }> {
  const server = createServer(async (request, response) => {
    try {
      const name = decodeURIComponent(new URL(request.url ?? '/', 'http://localhost').pathname.slice(1));
      if (name.includes('/') || name.includes('..')) throw new Error('bad path');
      const body = await readFile(join(directory, name));
      response.writeHead(200, {
        'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      });
      response.end(body);
    } catch {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, server };
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fineprune-strip-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

for (const backend of BACKENDS) {
  describe(`strip on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('returns a plain model with W ⊙ M that predicts like the pruned model', async () => {
      const model = mlp(31);
      const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
      for (const parameter of prunable.parameters()) maskHalf(parameter.mask, 5);
      const x = tf.randomNormal([5, 8], 0, 1, 'float32', 12);
      await expectNoLeak(async () => {
        const plain = await strip(prunable);
        expect(plain).not.toBe(model);
        expect(plain.layers.map((layer) => layer.name)).toEqual(['fc1', 'fc2', 'out']);
        expect(Object.hasOwn(plain.layers[0]!, 'call')).toBe(false);
        const expected = model.predict(x) as tf.Tensor;
        const actual = plain.predict(x) as tf.Tensor;
        await expectClose(actual, expected, 1e-6);
        // Kernels hold +0 exactly where the mask is 0; biases are copied unchanged.
        const kernel = await plain.layers[0]!.getWeights()[0]!.data();
        const mask = await prunable.parameter('fc1/kernel').mask.data();
        const raw = await prunable.parameter('fc1/kernel').weight.data();
        for (let index = 0; index < mask.length; index += 1) {
          expect(Object.is(kernel[index], mask[index] === 0 ? 0 : raw[index])).toBe(true);
        }
        expect(Array.from(await plain.layers[0]!.getWeights()[1]!.data())).toEqual(
          Array.from(await model.layers[0]!.getWeights()[1]!.data()),
        );
        // The pruned model keeps its raw weights.
        expect(Array.from(await prunable.parameter('fc1/kernel').weight.data())).toEqual(Array.from(raw));
        tf.dispose([expected, actual]);
        plain.dispose();
      });
      const weights = maskedWeights(prunable);
      expect(weights.map(({ name }) => name)).toEqual([
        'fc1/kernel',
        'fc1/bias',
        'fc2/kernel',
        'fc2/bias',
        'out/kernel',
        'out/bias',
      ]);
      tf.dispose(weights.map(({ tensor }) => tensor));
      x.dispose();
      release(prunable);
    });

    it('saves a stripped model that stock TF.js loads over HTTP and predicts identically', async () => {
      const model = mlp(32, { outputActivation: 'softmax' });
      const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
      for (const parameter of prunable.parameters()) maskHalf(parameter.mask, 6);
      const directory = join(root, `stripped-${backend}`);
      await saveStripped(prunable, fileSystem(directory));

      const { url, server } = await serve(directory);
      try {
        const loaded = await tfl.loadLayersModel(`${url}/model.json`);
        const x = tf.randomNormal([7, 8], 0, 1, 'float32', 13);
        const expected = model.predict(x) as tf.Tensor;
        const actual = loaded.predict(x) as tf.Tensor;
        await expectClose(actual, expected, 1e-6);
        for (const [index, parameter] of prunable.parameters().entries()) {
          const loadedKernel = await loaded.layers[index]!.getWeights()[0]!.data();
          const mask = await parameter.mask.data();
          const zeros = Array.from(mask).filter((value) => value === 0).length;
          expect(zeros).toBeGreaterThan(0);
          expect(Array.from(mask).every((value, entry) => value !== 0 || loadedKernel[entry] === 0)).toBe(
            true,
          );
        }
        // The same directory also loads through the fileSystem handler.
        const again = await tfl.loadLayersModel(fileSystem(directory));
        const viaFiles = again.predict(x) as tf.Tensor;
        await expectClose(viaFiles, expected, 1e-6);
        tf.dispose([x, expected, actual, viaFiles]);
        loaded.dispose();
        again.dispose();
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
      release(prunable);
    });

    it('strips Conv2D, DepthwiseConv2D and Embedding models', async () => {
      const input = tfl.input({ shape: [5, 5, 3] });
      const conv = tfl.layers.conv2d({
        filters: 4,
        kernelSize: 3,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
      });
      const depthwise = tfl.layers.depthwiseConv2d({
        kernelSize: 2,
        depthwiseInitializer: tfl.initializers.glorotUniform({ seed: 2 }),
      });
      const output = tfl.layers
        .dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: 3 }) })
        .apply(tfl.layers.flatten().apply(depthwise.apply(conv.apply(input)))) as tfl.SymbolicTensor;
      const convModel = tfl.model({ inputs: input, outputs: output });
      const embeddingModel = tfl.sequential({
        layers: [
          tfl.layers.embedding({
            inputDim: 10,
            outputDim: 3,
            inputLength: 4,
            embeddingsInitializer: tfl.initializers.randomNormal({ seed: 4 }),
          }),
          tfl.layers.flatten(),
          tfl.layers.dense({ units: 2, kernelInitializer: tfl.initializers.glorotUniform({ seed: 5 }) }),
        ],
      });
      const cases: Array<[tfl.LayersModel, tf.Tensor]> = [
        [convModel, tf.randomNormal([2, 5, 5, 3], 0, 1, 'float32', 14)],
        [
          embeddingModel,
          tf.tensor2d(
            [
              [1, 2, 3, 9],
              [0, 0, 5, 6],
            ],
            [2, 4],
            'int32',
          ),
        ],
      ];
      for (const [model, x] of cases) {
        const prunable = fromLayersModel(model, { loss: 'meanSquaredError' });
        expect(prunable.parameters()).toHaveLength(model === convModel ? 3 : 2);
        for (const parameter of prunable.parameters()) maskHalf(parameter.mask, 7);
        const plain = await strip(prunable);
        const expected = model.predict(x) as tf.Tensor;
        const actual = plain.predict(x) as tf.Tensor;
        await expectClose(actual, expected, 1e-6);
        tf.dispose([x, expected, actual]);
        plain.dispose();
        release(prunable);
      }
    });
  });
}
