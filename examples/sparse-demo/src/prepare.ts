/**
 * Writes the demo page's models and inputs (Node.js): for the MNIST MLP and for the encoder, the
 * dense export a user ships today and the compact sparse exports of the same pruned model.
 *
 *   pnpm prepare-models www/models                        # seeded models pruned by magnitude (quick)
 *   pnpm prepare-models www/models --mlp DIR --encoder DIR   # a stripped TF.js MLP and a Hugging Face encoder directory
 *
 * Files under the output folder:
 *   mlp/model.json, mlp/weights.bin        stock TF.js (float32), what tf.loadLayersModel reads
 *   mlp/float32.fpsparse, mlp/int8.fpsparse
 *   encoder/config.json, encoder/model.safetensors   the Hugging Face export (float32)
 *   encoder/float32.fpsparse, encoder/int8.fpsparse
 *   inputs.json                             16 MNIST test digits; 16 token sequences with their masks
 *   manifest.json                           what was written, with sizes
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadMnist } from '@fineprune/datasets';
import { fileSystem } from '@fineprune/layers';
import { compactBytesOfModel } from '@fineprune/sparse';
import { createRandom, setBackend } from '@fineprune/tensor';
import {
  type BertModel,
  bertBaseUncasedConfig,
  createBertModel,
  type EncoderConfig,
  exportHuggingFace,
} from '@fineprune/transformers';
import { loadHuggingFaceDirectory } from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { compactBertBytes } from './encoder-compact';

/** What {@link prepareDemoModels} wrote. */
export interface DemoManifest {
  mlp: { source: string; kept: number; files: Record<string, number> };
  encoder: {
    source: string;
    kept: number;
    task: { type: 'classification'; numLabels: number };
    files: Record<string, number>;
  };
  inputs: { digits: number; sequences: number; length: number };
}

/** The demo's default encoder when no directory is given: BERT-Tiny's shape (Turc et al. 2019) with a small vocabulary. */
const DEMO_ENCODER: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 8000,
  hiddenSize: 128,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 512,
  maxPositions: 128,
};

/** Zeroes all but the `kept` fraction of largest |w| of each rank-2 weight of a layers model. */
function pruneByMagnitude(model: tfl.LayersModel, kept: number): void {
  const pruned = model.getWeights().map((weight) =>
    tf.tidy(() => {
      if (weight.rank < 2) return tf.clone(weight);
      const magnitudes = tf.abs(weight);
      const threshold = tf.min(
        tf.topk(tf.reshape(magnitudes, [-1]), Math.max(1, Math.round(kept * weight.size))).values,
      );
      return tf.mul(weight, tf.cast(tf.greaterEqual(magnitudes, threshold), 'float32'));
    }),
  );
  model.setWeights(pruned);
  tf.dispose(pruned);
}

/** Sets the masks of a BERT model's prunable projections to their `kept` fraction of largest |w|. */
function pruneBert(model: BertModel, kept: number): void {
  for (const parameter of model.parameters()) {
    const mask = tf.tidy(() => {
      const magnitudes = tf.abs(parameter.weight);
      const threshold = tf.min(
        tf.topk(tf.reshape(magnitudes, [-1]), Math.max(1, Math.round(kept * parameter.weight.size))).values,
      );
      return tf.cast(tf.greaterEqual(magnitudes, threshold), 'float32');
    });
    parameter.mask.assign(mask);
    mask.dispose();
  }
}

/** model.json + weights.bin, as stock TF.js writes and reads them. */
async function writeTfjsModel(model: tfl.LayersModel, directory: string): Promise<Record<string, number>> {
  const files: Record<string, number> = {};
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = new Uint8Array(artifacts.weightData as ArrayBuffer);
      const json = JSON.stringify({
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      });
      writeFileSync(path.join(directory, 'model.json'), json);
      writeFileSync(path.join(directory, 'weights.bin'), weights);
      files['model.json'] = Buffer.byteLength(json);
      files['weights.bin'] = weights.length;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return files;
}

function write(
  directory: string,
  name: string,
  bytes: Uint8Array | string,
  files: Record<string, number>,
): void {
  writeFileSync(path.join(directory, name), bytes);
  files[name] = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
}

async function prepareMlp(directory: string, from: string | undefined, kept: number) {
  let model: tfl.LayersModel;
  if (from) model = await tfl.loadLayersModel(fileSystem(from));
  else {
    const random = createRandom(7);
    model = tfl.sequential({
      layers: [300, 100, 10].map((units, index) =>
        tfl.layers.dense({
          units,
          activation: index < 2 ? 'relu' : 'linear',
          kernelInitializer: tfl.initializers.glorotUniform({ seed: random.nextUint32() }),
          ...(index === 0 ? { inputShape: [784] } : {}),
        }),
      ),
    });
    pruneByMagnitude(model, kept);
  }
  mkdirSync(directory, { recursive: true });
  const files = await writeTfjsModel(model, directory);
  for (const values of ['float32', 'int8'] as const)
    write(directory, `${values}.fpsparse`, await compactBytesOfModel(model, { values }), files);
  model.dispose();
  return {
    source: from ?? `seeded 784-300-100-10, ${kept * 100}% of each kernel kept by magnitude`,
    kept,
    files,
  };
}

async function prepareEncoder(directory: string, from: string | undefined, kept: number) {
  const task = { type: 'classification', numLabels: 2 } as const;
  let model: BertModel;
  if (from) model = (await loadHuggingFaceDirectory(from, { task })).model;
  else {
    model = createBertModel({ config: DEMO_ENCODER, task, seed: 5 });
    pruneBert(model, kept);
  }
  mkdirSync(directory, { recursive: true });
  const files: Record<string, number> = {};
  const { safetensors, config } = await exportHuggingFace(model);
  write(directory, 'model.safetensors', safetensors, files);
  write(directory, 'config.json', JSON.stringify(config), files);
  for (const values of ['float32', 'int8'] as const)
    write(directory, `${values}.fpsparse`, await compactBertBytes(model, { values }), files);
  const vocabulary = model.config.vocabSize;
  model.dispose();
  return {
    source:
      from ??
      `seeded BERT-Tiny shape (vocabulary 8,000), ${kept * 100}% of each projection kept by magnitude`,
    kept,
    task,
    files,
    vocabulary,
  };
}

/** 16 MNIST test digits and 16 token sequences of 64 (with padding) for the page. */
async function writeInputs(directory: string, vocabulary: number) {
  const mnist = await loadMnist();
  const digits = Array.from(mnist.test.images.subarray(0, 16 * 784));
  const random = createRandom(11);
  const length = 64;
  const ids: number[][] = [];
  const masks: number[][] = [];
  for (let row = 0; row < 16; row += 1) {
    const used = 8 + Math.floor(random.next() * (length - 8));
    ids.push(
      Array.from({ length }, (_, at) =>
        at === 0 ? 101 % vocabulary : at < used ? 1000 + Math.floor(random.next() * (vocabulary - 1000)) : 0,
      ),
    );
    masks.push(Array.from({ length }, (_, at) => (at < used ? 1 : 0)));
  }
  writeFileSync(path.join(directory, 'inputs.json'), JSON.stringify({ digits, ids, masks }));
  return { digits: 16, sequences: 16, length };
}

/**
 * Writes the demo's models and inputs under `directory` (see the file's header).
 *
 * @example
 * ```ts
 * const manifest = await prepareDemoModels('www/models');
 * ```
 */
export async function prepareDemoModels(
  directory: string,
  options: { mlp?: string; encoder?: string; mlpKept?: number; encoderKept?: number } = {},
): Promise<DemoManifest> {
  await setBackend('cpu');
  const mlp = await prepareMlp(path.join(directory, 'mlp'), options.mlp, options.mlpKept ?? 0.1);
  const { vocabulary, ...encoder } = await prepareEncoder(
    path.join(directory, 'encoder'),
    options.encoder,
    options.encoderKept ?? 0.03,
  );
  const manifest: DemoManifest = { mlp, encoder, inputs: await writeInputs(directory, vocabulary) };
  writeFileSync(path.join(directory, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return manifest;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { mlp: { type: 'string' }, encoder: { type: 'string' } },
  });
  prepareDemoModels(positionals[0] ?? 'www/models', {
    ...(values.mlp ? { mlp: values.mlp } : {}),
    ...(values.encoder ? { encoder: values.encoder } : {}),
  }).then(
    (manifest) => console.log(JSON.stringify(manifest, null, 2)),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
