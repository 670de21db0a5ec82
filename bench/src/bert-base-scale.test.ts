import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { keptCountFor } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { bertBaseUncasedConfig, type EncoderConfig, huggingFaceNames } from '@fineprune/transformers';
import { loadHuggingFaceDirectory } from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScalePipeline, writeRandomCheckpoint } from './bert-base-scale';

/** The BERT-base pipeline at a tiny shape: 2 layers, hidden 16, 2 heads, intermediate 32. */
const tiny: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 50,
  hiddenSize: 16,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 32,
  maxPositions: 16,
};

describe('bert-base-scale pipeline at a tiny shape (wasm)', () => {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'fineprune-scale-test-'));

  beforeAll(async () => {
    await setBackend('wasm');
  });

  afterAll(() => {
    fs.rmSync(directory, { recursive: true, force: true });
  });

  it('writes a Hugging Face checkpoint that imports whole (every tensor of the layout loaded)', async () => {
    const source = path.join(directory, 'import');
    await writeRandomCheckpoint(tiny, source);
    const { model, report } = await loadHuggingFaceDirectory(source);
    const task = { type: 'classification', numLabels: 2 } as const;
    expect(report.loaded).toEqual(huggingFaceNames(tiny, task).map((entry) => entry.huggingFaceName));
    expect(report.missing).toEqual([]);
    expect(report.unexpected).toEqual([]);
    // Random normal(0, 0.02) matrices, LayerNorm γ = 1: the query kernel's spread and a γ.
    const query = model.variables().find((entry) => entry.name === 'layer_0/attention/query/kernel')!;
    const std = Math.sqrt((await tf.moments(query.variable).variance.data())[0]!);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    const gamma = model.variables().find((entry) => entry.name === 'layer_0/ffn/layer_norm/gamma')!;
    expect(Array.from(await gamma.variable.data())).toEqual(new Array(16).fill(1));
    model.dispose();
  });

  it('fine-prunes, selects the global sparsity, checkpoints and reloads bit for bit, without leaks', async () => {
    const before = tf.memory().numTensors;
    const result = (await runScalePipeline({
      config: tiny,
      batch: 2,
      length: 8,
      steps: 3,
      sparsity: 0.75,
      directory: path.join(directory, 'run'),
      reloadInChild: false,
    })) as Record<string, unknown>;
    const model = result.model as Record<string, number>;
    // Hand count: prunable 2 layers × (4·16² + 2·16·32) = 4096; all weights (50 + 16 + 2)·16 + 2·16
    // (embeddings) + 2 × (4·(16² + 16) + 2·16·32 + 32 + 16 + 4·16) (layers) + 16² + 16 + 16·2 + 2
    // (pooler, classifier) = 1120 + 4448 + 306 = 5874; trainable: all but the 1120 of the embeddings.
    expect(model.prunableWeights).toBe(4096);
    expect(model.weights).toBe(5874);
    expect(model.trainableWeights).toBe(5874 - 1120);
    expect(model.scores).toBe(4096);
    // 4 × (weights + scores + weight grads + score grads + Adam m, v of weights and scores).
    expect(result.analyticBytes).toBe(4 * (5874 + 4096 + 4754 + 4096 + 2 * 4754 + 2 * 4096));
    const mask = result.mask as Record<string, number>;
    expect(mask.kept).toBe(keptCountFor(4096, 0.75));
    expect(result.tensorsLeakedAfterFirstStep).toBe(0);
    const reload = result.reload as Record<string, unknown>;
    expect(reload.step).toBe(3);
    expect(reload.bitForBit).toBe(true);
    expect((result.losses as number[]).every(Number.isFinite)).toBe(true);
    expect(result.peakRssOverAnalytic).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  });
});
