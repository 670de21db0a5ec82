import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { checkStructures, parameterMasksFromUnits, structuresOf } from '@fineprune/core';
import { rejectionOf } from '@fineprune/core/testing';
import { readSafetensors } from '@fineprune/safetensors';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportHuggingFace } from './checkpoint';
import { bertBaseUncasedConfig, type EncoderConfig } from './config';
import type { BertTask } from './layout';
import { type BertModel, createBertModel } from './model';
import { loadHuggingFaceDirectory, saveHuggingFaceDirectory } from './node';
import { shrinkBertModel } from './shrink';

/** Hidden 8, four heads of 2 dimensions, feed-forward 6, three layers. */
const config: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 13,
  hiddenSize: 8,
  numLayers: 3,
  numHeads: 4,
  intermediateSize: 6,
  maxPositions: 8,
  initializerRange: 0.5,
};

function batch() {
  return {
    inputIds: tf.tensor2d(
      [
        [2, 5, 7, 12, 0],
        [3, 1, 4, 9, 0],
      ],
      undefined,
      'int32',
    ),
    tokenTypeIds: tf.tensor2d(
      [
        [0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
      ],
      undefined,
      'int32',
    ),
    attentionMask: tf.tensor2d(
      [
        [1, 1, 1, 1, 0],
        [1, 1, 1, 1, 0],
      ],
      undefined,
      'int32',
    ),
  };
}

/** The model's outputs on the fixed batch, flattened. */
function outputsOf(model: BertModel): Float32Array {
  return tf.tidy(() => {
    const outputs = [model.forward(batch(), { training: false })].flat() as tf.Tensor[];
    return tf.concat(outputs.map((output) => tf.reshape(output, [-1]))).dataSync() as Float32Array;
  });
}

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((worst, value, index) => Math.max(worst, Math.abs(value - b[index]!)), 0);
}

/** Unit masks by structure name (the units left out keep 1). */
const unitMasks: Record<string, number[]> = {
  'layer_0/attention/heads': [1, 0, 1, 0],
  'layer_0/ffn/neurons': [1, 1, 0, 1, 0, 1],
  'layer_1/attention/heads': [0, 0, 0, 0],
  'layer_1/ffn/neurons': [0, 1, 0, 0, 0, 0],
  'layer_2/attention/heads': [0, 1, 1, 1],
  'layer_2/ffn/neurons': [0, 0, 0, 0, 0, 0],
};

/**
 * Prunes whole units of `model` (every member of each unit masked, as a unit mask does), then one
 * weight in five of every projection, so the kept units hold unstructured zeros as well.
 */
function pruneUnits(model: BertModel, masks: Record<string, number[]>): void {
  const structures = structuresOf(model, model.parameters());
  tf.tidy(() => {
    const units = structures.map((structure) =>
      tf.tensor1d(masks[structure.name] ?? new Array(structure.count).fill(1)),
    );
    const fromUnits = parameterMasksFromUnits(structures, units, model.parameters());
    model.parameters().forEach((parameter, index) => {
      const scattered = Array.from({ length: parameter.size }, (_, entry) => (entry % 5 === 3 ? 0 : 1));
      parameter.mask.assign(tf.mul(fromUnits[index]!, tf.tensor(scattered, [...parameter.shape])));
    });
  });
}

function shapeOf(model: BertModel, name: string): number[] | undefined {
  return model.variables().find((entry) => entry.name === name)?.variable.shape;
}

const tasks: BertTask[] = [{ type: 'classification', numLabels: 3 }, { type: 'span' }];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`encoder structures and shrink on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('lists heads (Q, K, V columns and attention-output rows) and neurons of every layer', () => {
      const model = createBertModel({ config, task: tasks[0]!, seed: 3 });
      const structures = model.structures!();
      checkStructures(structures, model.parameters());
      expect(structures.map((structure) => `${structure.name}:${structure.kind}:${structure.count}`)).toEqual(
        [
          'layer_0/attention/heads:head:4',
          'layer_0/ffn/neurons:neuron:6',
          'layer_1/attention/heads:head:4',
          'layer_1/ffn/neurons:neuron:6',
          'layer_2/attention/heads:head:4',
          'layer_2/ffn/neurons:neuron:6',
        ],
      );
      // Removing head 1 of layer 0 zeroes columns 2–3 of Q, K, V and rows 2–3 of the output kernel.
      const layer0 = structuresOf(
        model,
        model.parameters().filter((parameter) => parameter.group === 'layer_0'),
      );
      const masks = tf.tidy(() =>
        parameterMasksFromUnits(
          layer0,
          [tf.tensor1d([1, 0, 1, 1]), tf.ones([6])],
          model.parameters().filter((parameter) => parameter.group === 'layer_0'),
        ).map((mask) => mask.arraySync() as number[][]),
      );
      const [query, key, value, output, intermediate] = masks;
      for (const projection of [query!, key!, value!]) {
        for (const row of projection) expect(row).toEqual([1, 1, 0, 0, 1, 1, 1, 1]);
      }
      expect(output!.map((row) => row.every((entry) => entry === row[0]) && row[0])).toEqual([
        1, 1, 0, 0, 1, 1, 1, 1,
      ]);
      expect(intermediate!.flat().every((entry) => entry === 1)).toBe(true);
      model.dispose();
    });

    for (const task of tasks) {
      it(`gives a ${task.type} model that is smaller and computes the same outputs (≤ 1e-5)`, async () => {
        const model = createBertModel({ config, task, seed: 5 });
        const dense = outputsOf(model);
        pruneUnits(model, unitMasks);
        const masked = outputsOf(model);
        // The pruning changes the outputs, so agreeing with the masked model means something.
        expect(maxAbsDifference(dense, masked)).toBeGreaterThan(1e-3);
        const before = tf.memory().numTensors;
        const { model: small, report } = await shrinkBertModel(model);
        expect(small.config.prunedHeads).toEqual([[1, 3], [0, 1, 2, 3], [0]]);
        expect(small.config.intermediateSizes).toEqual([4, 1, 1]);
        expect(shapeOf(small, 'layer_0/attention/query/kernel')).toEqual([8, 4]);
        expect(shapeOf(small, 'layer_0/attention/output/kernel')).toEqual([4, 8]);
        expect(shapeOf(small, 'layer_0/ffn/intermediate/kernel')).toEqual([8, 4]);
        expect(shapeOf(small, 'layer_1/attention/query/kernel')).toBeUndefined();
        expect(shapeOf(small, 'layer_1/attention/output/bias')).toEqual([8]);
        expect(shapeOf(small, 'layer_2/attention/value/bias')).toEqual([6]);
        expect(shapeOf(small, 'layer_2/ffn/output/kernel')).toEqual([1, 8]);
        expect(report.layers.map((layer) => [layer.heads.kept, layer.neurons.kept])).toEqual([
          [2, 4],
          [0, 1],
          [3, 1],
        ]);
        expect(report.encoderEntries.after).toBeLessThan(report.encoderEntries.before / 2);
        // Float32 with the same products in a different order: 1e-5 (issue 18).
        expect(maxAbsDifference(outputsOf(small), masked)).toBeLessThanOrEqual(1e-5);
        small.dispose();
        expect(tf.memory().numTensors).toBe(before);
        model.dispose();
      });
    }

    it('shrinks a shrunk model again, numbering removed heads as in the original', async () => {
      const model = createBertModel({ config, task: tasks[0]!, seed: 7 });
      pruneUnits(model, unitMasks);
      const { model: small } = await shrinkBertModel(model);
      // Layer 2 keeps original heads 1, 2, 3; removing its first (original head 1) leaves 2 and 3.
      pruneUnits(small, { 'layer_2/attention/heads': [0, 1, 1], 'layer_0/ffn/neurons': [1, 0, 1, 1] });
      const masked = outputsOf(small);
      const { model: smaller } = await shrinkBertModel(small);
      expect(smaller.config.prunedHeads).toEqual([
        [1, 3],
        [0, 1, 2, 3],
        [0, 1],
      ]);
      expect(smaller.config.intermediateSizes).toEqual([3, 1, 1]);
      expect(maxAbsDifference(outputsOf(smaller), masked)).toBeLessThanOrEqual(1e-5);
      for (const each of [model, small, smaller]) each.dispose();
    });

    it('leaks no tensor', async () => {
      const model = createBertModel({ config, task: tasks[0]!, seed: 2 });
      pruneUnits(model, unitMasks);
      await withLeakGuard(async () => {
        const { model: small } = await shrinkBertModel(model);
        outputsOf(small);
        small.dispose();
      });
      model.dispose();
    });
  });
}

describe('a shrunk encoder in the Hugging Face layout', () => {
  let directory: string;
  beforeAll(async () => {
    await setBackend('cpu');
    directory = fs.mkdtempSync(path.join(os.tmpdir(), 'fineprune-shrink-'));
  });
  afterAll(() => fs.rmSync(directory, { recursive: true, force: true }));

  async function savedShrunkModel(name: string): Promise<{ small: BertModel; where: string }> {
    const model = createBertModel({ config, task: tasks[0]!, seed: 11 });
    pruneUnits(model, unitMasks);
    const { model: small } = await shrinkBertModel(model);
    model.dispose();
    const where = path.join(directory, name);
    await saveHuggingFaceDirectory(small, where);
    return { small, where };
  }

  function editConfig(where: string, changes: Record<string, unknown>): string {
    const file = path.join(where, 'config.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(file, JSON.stringify({ ...json, ...changes }));
    return file;
  }

  it('records per-layer sizes (pruned_heads, intermediate_sizes) and omits the kernels of a headless layer', async () => {
    const { small } = await savedShrunkModel('layout');
    const { safetensors, config: json } = await exportHuggingFace(small);
    expect(json.pruned_heads).toEqual({ '0': [1, 3], '1': [0, 1, 2, 3], '2': [0] });
    expect(json.intermediate_sizes).toEqual([4, 1, 1]);
    const file = readSafetensors(safetensors);
    expect(file.tensors.get('bert.encoder.layer.0.attention.self.query.weight')!.shape).toEqual([4, 8]);
    expect(file.tensors.get('bert.encoder.layer.0.attention.output.dense.weight')!.shape).toEqual([8, 4]);
    expect(file.tensors.get('bert.encoder.layer.2.intermediate.dense.weight')!.shape).toEqual([1, 8]);
    expect(file.tensors.has('bert.encoder.layer.1.attention.self.key.weight')).toBe(false);
    expect(file.tensors.has('bert.encoder.layer.1.attention.output.dense.weight')).toBe(false);
    expect(file.tensors.get('bert.encoder.layer.1.attention.output.dense.bias')!.shape).toEqual([8]);
    small.dispose();
  });

  it('loads back through the importer with the same logits', async () => {
    const { small, where } = await savedShrunkModel('reload');
    const { model: reloaded, report } = await loadHuggingFaceDirectory(where);
    expect(report.missing).toEqual([]);
    expect(reloaded.config.prunedHeads).toEqual(small.config.prunedHeads);
    expect(reloaded.config.intermediateSizes).toEqual([4, 1, 1]);
    // F32 weights written and read back bit for bit: the same graph gives the same numbers.
    expect(maxAbsDifference(outputsOf(reloaded), outputsOf(small))).toBe(0);
    small.dispose();
    reloaded.dispose();
  });

  it('refuses inconsistent per-layer sizes with an error naming the file and the key', async () => {
    const { small, where } = await savedShrunkModel('untrusted');
    small.dispose();
    const original = fs.readFileSync(path.join(where, 'config.json'), 'utf8');
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ pruned_heads: { '3': [0] } }, 'INVALID_ARGUMENT', 'pruned_heads'],
      [{ pruned_heads: { '0': [1, 1] } }, 'INVALID_ARGUMENT', 'pruned_heads'],
      [{ pruned_heads: { '0': [4] } }, 'INVALID_ARGUMENT', 'pruned_heads'],
      [{ pruned_heads: [[1]] }, 'INVALID_ARGUMENT', 'pruned_heads'],
      [{ intermediate_sizes: [4, 1] }, 'INVALID_ARGUMENT', 'intermediate_sizes'],
      [{ intermediate_sizes: [4, 0, 1] }, 'INVALID_ARGUMENT', 'intermediate_sizes'],
      [{ intermediate_sizes: [7, 1, 1] }, 'INVALID_ARGUMENT', 'intermediate_sizes'],
      // Sizes the weights do not have: the weights file is named, with the tensor that does not fit.
      [{ intermediate_sizes: [4, 2, 1] }, 'CHECKPOINT_MISMATCH', 'layer.1.intermediate'],
      [{ pruned_heads: { '0': [1, 3] } }, 'CHECKPOINT_MISMATCH', 'layer.1.attention'],
    ];
    for (const [changes, code, key] of cases) {
      fs.writeFileSync(path.join(where, 'config.json'), original);
      const file = editConfig(where, changes);
      const error = await rejectionOf(loadHuggingFaceDirectory(where));
      expect(error.code).toBe(code);
      expect(error.message).toContain(key);
      expect(error.message).toContain(
        code === 'INVALID_ARGUMENT' ? file : path.join(where, 'model.safetensors'),
      );
    }
  });
});
