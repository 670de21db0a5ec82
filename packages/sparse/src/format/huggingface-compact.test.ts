import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejection } from '../../test/compact-support';
import { sparseDense } from '../inference/sparse-dense';
import { encodeCompactModel } from './encode';
import {
  encodeCompactHuggingFace,
  huggingFaceConfigOf,
  prepareCompactProjections,
} from './huggingface-compact';
import { readCompactModel } from './read';

// A Linear weight [out 3, in 4] (PyTorch's layout) and its mask, which keeps five entries — one of
// them a weight that is exactly 0:
//   W = [[1, 0, 0, 2], [0, 0, -1, 0], [0, 3, 0, 0]], M = [[1, 0, 0, 1], [0, 1, 1, 0], [0, 1, 0, 0]]
const WEIGHT = Float32Array.from([1, 0, 0, 2, 0, 0, -1, 0, 0, 3, 0, 0]);
const MASK = Uint8Array.from([1, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0]);
const BIAS = Float32Array.from([0.5, -0.25, 0]);
const CONFIG = { architectures: ['BertForSequenceClassification'], hidden_size: 4 };
const NAME = 'bert.encoder.layer.0.output.dense.weight';

function model(mask: Float32Array | Uint8Array = MASK) {
  return {
    config: CONFIG,
    tensors: [
      { name: NAME, shape: [3, 4], values: WEIGHT, mask },
      { name: 'bert.encoder.layer.0.output.dense.bias', shape: [3], values: BIAS },
    ],
  };
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('the compact export of a Hugging Face model', () => {
  it('keeps the config, stores Linear weights with their output channels first, and exactly the masked entries', async () => {
    const compact = await readCompactModel(await encodeCompactHuggingFace(model(), { allowLarger: true }));
    expect(huggingFaceConfigOf(compact)).toEqual(CONFIG);
    const weight = compact.tensor(NAME);
    expect(weight.entry.channelAxis).toBe(0);
    // Five kept entries (the kept zero included), row by row: [0, 3], [1, 2], [1].
    expect(weight.storedEntries).toBe(5);
    const rows = weight.rows();
    expect(Array.from(rows.rowPointers)).toEqual([0, 2, 4, 5]);
    expect(Array.from(rows.inputIndices)).toEqual([0, 3, 1, 2, 1]);
    expect(Array.from(weight.dense())).toEqual(Array.from(WEIGHT));
    expect(compact.tensor('bert.encoder.layer.0.output.dense.bias').entry.layout).toBe('vector');
  });

  it('keeps an entry whose soft mask is not 0 (the gate is already in the value)', async () => {
    const soft = Float32Array.from(MASK, (kept) => kept * 0.5);
    const compact = await readCompactModel(
      await encodeCompactHuggingFace(model(soft), { allowLarger: true }),
    );
    expect(compact.tensor(NAME).storedEntries).toBe(5);
  });

  it('prepares each projection with its bias: y = x·Wᵀ + b over the kept weights, derived by hand', async () => {
    const compact = await readCompactModel(await encodeCompactHuggingFace(model(), { allowLarger: true }));
    const before = tf.memory().numTensors;
    for (const mode of ['sparse', 'dense'] as const) {
      const prepared = prepareCompactProjections(compact, [NAME], { mode });
      const x = tf.tensor2d([
        [1, 2, 3, 4],
        [-1, 0, 1, 0.5],
      ]);
      const y = sparseDense(x, prepared.get(NAME)!);
      // Row 1: [1 + 8 + 0.5, −3 − 0.25, 6 + 0] ; row 2: [−1 + 1 + 0.5, −1 − 0.25, 0].
      expect(Array.from(y.dataSync())).toEqual([9.5, -3.25, 6, 0.5, -1.25, 0]);
      tf.dispose([x, y]);
      for (const weights of prepared.values()) weights.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses what does not fit, naming the file and the tensor', async () => {
    const source = 'encoder.fpsparse';
    const compact = await readCompactModel(await encodeCompactHuggingFace(model(), { allowLarger: true }));
    const before = tf.memory().numTensors;
    const missing = await rejection(
      (async () => prepareCompactProjections(compact, [NAME, 'classifier.weight'], { source }))(),
    );
    expect(missing.code).toBe('CHECKPOINT_MISMATCH');
    expect(missing.message).toContain(source);
    expect(missing.message).toContain('classifier.weight');
    // The projection prepared before the failure was disposed.
    expect(tf.memory().numTensors).toBe(before);

    const wrongBias = await readCompactModel(
      await encodeCompactHuggingFace(
        {
          config: CONFIG,
          tensors: [
            { name: NAME, shape: [3, 4], values: WEIGHT },
            { name: 'bert.encoder.layer.0.output.dense.bias', shape: [4], values: new Float32Array(4) },
          ],
        },
        { allowLarger: true },
      ),
    );
    const bias = await rejection((async () => prepareCompactProjections(wrongBias, [NAME], { source }))());
    expect(bias.code).toBe('CHECKPOINT_MISMATCH');
    expect(bias.message).toContain('[4]');

    // Channels last (a TF.js kernel) is not a Hugging Face Linear weight; nor is a layers export.
    const tensorsOnly = await readCompactModel(
      await encodeCompactModel(
        { model: { kind: 'tensors' }, tensors: [{ name: NAME, shape: [3, 4], values: WEIGHT }] },
        { allowLarger: true },
      ),
    );
    const axis = await rejection((async () => prepareCompactProjections(tensorsOnly, [NAME], { source }))());
    expect(axis.code).toBe('CHECKPOINT_MISMATCH');
    expect(axis.message).toContain('output channels first');
    const kind = await rejection((async () => huggingFaceConfigOf(tensorsOnly, source))());
    expect(kind.code).toBe('CHECKPOINT_MISMATCH');
    expect(kind.message).toContain(source);

    const noConfig = await rejection(
      encodeCompactHuggingFace({ config: [] as unknown as Record<string, unknown>, tensors: [] }),
    );
    expect(noConfig.code).toBe('INVALID_ARGUMENT');
  });
});
