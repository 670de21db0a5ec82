import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { adam, type Batch, Pruner } from '@fineprune/core';
import { fixedSparsity, testLearnedScores, testTopK } from '@fineprune/core/testing';
import { decodeFloat32, encodeSafetensors, readSafetensors } from '@fineprune/safetensors';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { bertBaseUncasedConfig, type EncoderConfig } from './config';
import { type BertModel, createBertModel } from './model';
import { CHECKPOINT_INDEX_FILE, loadBertCheckpoint, saveBertCheckpoint } from './training-checkpoint';

const tiny: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 13,
  hiddenSize: 4,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 8,
  maxPositions: 6,
  initializerRange: 0.5,
};
const task = { type: 'classification', numLabels: 3 } as const;

/** Batch `step`: a fixed function of the step. */
function batch(step: number): Batch {
  return tf.tidy(() => ({
    x: {
      inputIds: tf.tensor2d(
        Array.from({ length: 4 }, (_, row) =>
          Array.from({ length: 6 }, (_, at) => (row * 5 + at * 3 + step) % 13),
        ),
        undefined,
        'int32',
      ),
      attentionMask: tf.tensor2d(
        Array.from({ length: 4 }, (_, row) => Array.from({ length: 6 }, (_, at) => (at < 6 - row ? 1 : 0))),
        undefined,
        'int32',
      ),
    },
    y: tf.tensor1d([step % 3, (step + 1) % 3, (step + 2) % 3, 0], 'int32'),
  }));
}

function pruner(model: BertModel, slots: 'tensors' | 'host' = 'tensors'): Pruner {
  return new Pruner({
    model,
    scores: testLearnedScores(0.1),
    mask: testTopK,
    schedule: fixedSparsity(0.5),
    optimizers: {
      weights: adam({ learningRate: 0.01, weightDecay: 0.01, slots }),
      scores: adam({ learningRate: 0.05, slots }),
    },
    seed: 4,
  });
}

async function weightsOf(model: BertModel): Promise<number[][]> {
  return Promise.all(model.variables().map(async ({ variable }) => Array.from(await variable.data())));
}

function temporary(): string {
  return mkdtempSync(path.join(tmpdir(), 'fineprune-bert-checkpoint-'));
}

/** Rewrites the checkpoint's weights with `change` applied to the parsed file, with a matching index (so only the content check can catch it). */
function rewrite(
  directory: string,
  change: (
    tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>,
    metadata: Record<string, string>,
  ) => void,
) {
  const index = JSON.parse(readFileSync(path.join(directory, CHECKPOINT_INDEX_FILE), 'utf8'));
  const file = path.join(directory, index.weights);
  const parsed = readSafetensors(readFileSync(file));
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [name, tensor] of parsed.tensors) {
    tensors[name] = { dtype: 'F32', shape: [...tensor.shape], data: decodeFloat32(tensor).slice() };
  }
  const metadata = { ...parsed.metadata };
  change(tensors, metadata);
  const bytes = encodeSafetensors(tensors, metadata);
  writeFileSync(file, bytes);
  index.bytes = bytes.length;
  index.sha256 = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(path.join(directory, CHECKPOINT_INDEX_FILE), JSON.stringify(index));
}

describe('BERT training checkpoints', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it.each(['tensors', 'host'] as const)(
    'resume bit for bit with Adam slots as %s: 3 steps, save, load into a new model and pruner, 3 more = 6 steps straight (dropout on)',
    async (slots) => {
      const straight = createBertModel({ config: tiny, task, seed: 7 });
      const reference = pruner(straight, slots);
      await reference.run({ data: batch, untilStep: 6 });
      const expected = await weightsOf(straight);
      const expectedMasks = await Promise.all(
        straight.parameters().map(async (p) => Array.from(await p.mask.data())),
      );
      reference.dispose();
      straight.dispose();

      const directory = temporary();
      const first = createBertModel({ config: tiny, task, seed: 7 });
      const half = pruner(first, slots);
      await half.run({ data: batch, untilStep: 3 });
      const bytesBefore = tf.memory().numBytes;
      const saving = await tf.profile(() =>
        saveBertCheckpoint(first, half, directory, { metadata: { note: 'half-way', steps: [1, 2, 3] } }),
      );
      // The state's tensors are clones of each mask and score (4 bytes each, counted though shared);
      // host-memory Adam slots are written from their arrays, with no tensor made for them.
      const prunable = first.parameters().reduce((sum, parameter) => sum + parameter.size, 0);
      if (slots === 'host') expect(saving.peakBytes - bytesBefore).toBeLessThanOrEqual(2 * 4 * prunable);
      half.dispose();
      first.dispose();

      const before = tf.memory().numTensors;
      const { model, state, metadata } = await loadBertCheckpoint(directory);
      expect(metadata).toEqual({ note: 'half-way', steps: [1, 2, 3] });
      expect(state.step).toBe(3);
      const resumed = pruner(model, slots);
      resumed.loadState(state);
      tf.dispose(Object.values(state.tensors));
      await resumed.run({ data: batch, untilStep: 6 });
      expect(await weightsOf(model)).toEqual(expected);
      expect(await Promise.all(model.parameters().map(async (p) => Array.from(await p.mask.data())))).toEqual(
        expectedMasks,
      );
      resumed.dispose();
      model.dispose();
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('splits a checkpoint into shards past shardBytes, reloads it bit for bit, and refuses a damaged shard', async () => {
    const directory = temporary();
    const model = createBertModel({ config: tiny, task, seed: 3 });
    const run = pruner(model);
    await run.run({ data: batch, untilStep: 2 });
    // Each tiny tensor is at most 13·4·4 = 208 bytes: 256-byte shards hold one or two tensors each.
    await saveBertCheckpoint(model, run, directory, { metadata: { sharded: true }, shardBytes: 256 });
    const index = JSON.parse(readFileSync(path.join(directory, CHECKPOINT_INDEX_FILE), 'utf8'));
    expect(index.version).toBe(2);
    expect(index.shards.length).toBeGreaterThan(10);
    const shardFiles = readdirSync(directory).filter((name) => name.startsWith('weights-'));
    expect(shardFiles).toHaveLength(1 + index.shards.length);
    for (const shard of index.shards) {
      const bytes = readFileSync(path.join(directory, shard.file));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(shard.sha256);
    }
    const state = run.exportState();
    const { model: loaded, state: reloaded, metadata } = await loadBertCheckpoint(directory);
    expect(metadata).toEqual({ sharded: true });
    expect(reloaded.step).toBe(2);
    expect(await weightsOf(loaded)).toEqual(await weightsOf(model));
    expect(Object.keys(reloaded.tensors).sort()).toEqual(Object.keys(state.tensors).sort());
    for (const [key, tensor] of Object.entries(state.tensors))
      expect(Array.from(await reloaded.tensors[key]!.data()), key).toEqual(Array.from(await tensor.data()));
    tf.dispose([...Object.values(state.tensors), ...Object.values(reloaded.tensors)]);
    loaded.dispose();
    // The next save (one file) removes every shard of the previous one.
    await saveBertCheckpoint(model, run, directory);
    expect(readdirSync(directory).filter((name) => name.startsWith('weights-'))).toHaveLength(1);
    // A flipped byte in the last shard: the error names that shard.
    await saveBertCheckpoint(model, run, directory, { shardBytes: 256 });
    const last = JSON.parse(readFileSync(path.join(directory, CHECKPOINT_INDEX_FILE), 'utf8')).shards.at(
      -1,
    ).file;
    const bytes = readFileSync(path.join(directory, last));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    writeFileSync(path.join(directory, last), bytes);
    const error = await loadBertCheckpoint(directory).then(
      () => undefined,
      (caught: unknown) => caught as { code: string; message: string },
    );
    expect(error?.code).toBe('CHECKPOINT_CORRUPT');
    expect(error?.message).toContain(last);
    run.dispose();
    model.dispose();
  });

  it('replaces its own weights file on the next save, keeps other files, and refuses a folder holding model.json', async () => {
    const directory = temporary();
    writeFileSync(path.join(directory, 'notes.txt'), 'mine');
    const model = createBertModel({ config: tiny, task, seed: 1 });
    const run = pruner(model);
    await saveBertCheckpoint(model, run, directory);
    await run.run({ data: batch, untilStep: 1 });
    await saveBertCheckpoint(model, run, directory);
    const files = readdirSync(directory).sort();
    expect(files.filter((name) => name.startsWith('weights-'))).toHaveLength(1);
    expect(files).toContain('notes.txt');
    expect(files).toContain(CHECKPOINT_INDEX_FILE);
    const layers = temporary();
    writeFileSync(path.join(layers, 'model.json'), '{}');
    await expect(saveBertCheckpoint(model, run, layers)).rejects.toMatchObject({ code: 'IO_FAILED' });
    run.dispose();
    model.dispose();
  });

  it('refuses tampered checkpoints with typed errors naming the file and the entry', async () => {
    const fresh = async () => {
      const directory = temporary();
      const model = createBertModel({ config: tiny, task, seed: 2 });
      const run = pruner(model);
      await run.run({ data: batch, untilStep: 1 });
      await saveBertCheckpoint(model, run, directory);
      run.dispose();
      model.dispose();
      return directory;
    };
    const weightsFile = (directory: string) =>
      path.join(
        directory,
        JSON.parse(readFileSync(path.join(directory, CHECKPOINT_INDEX_FILE), 'utf8')).weights,
      );

    // One flipped byte anywhere in the weights: the hash no longer matches.
    const flipped = await fresh();
    const bytes = readFileSync(weightsFile(flipped));
    bytes[bytes.length - 3]! ^= 1;
    writeFileSync(weightsFile(flipped), bytes);
    await expect(loadBertCheckpoint(flipped)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
      message: expect.stringMatching(/does not match the size and SHA-256/),
    });

    // A NaN weight, an out-of-range mask, an edited step: caught by the content checks.
    const nan = await fresh();
    rewrite(nan, (tensors) => {
      tensors['variable/layer_0/attention/query/kernel']!.data[2] = Number.NaN;
    });
    await expect(loadBertCheckpoint(nan)).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
      message: expect.stringMatching(/"variable\/layer_0\/attention\/query\/kernel" holds NaN at index 2/),
    });
    const mask = await fresh();
    rewrite(mask, (tensors) => {
      tensors['state/mask/layer_1/ffn/output/kernel']!.data[0] = 2;
    });
    await expect(loadBertCheckpoint(mask)).rejects.toThrow(
      /mask\/layer_1\/ffn\/output\/kernel" holds 2 at index 0 \(masks lie in \[0, 1\]\)/,
    );
    const step = await fresh();
    rewrite(step, (_, metadata) => {
      metadata.fineprune = metadata.fineprune!.replace('"step":1', '"step":-4');
    });
    await expect(loadBertCheckpoint(step)).rejects.toThrow(/does not describe a BERT checkpoint/);

    // A damaged index and a missing one.
    const index = await fresh();
    writeFileSync(
      path.join(index, CHECKPOINT_INDEX_FILE),
      '{"format":"fineprune-bert-checkpoint","version":1,"weights":"../../etc/passwd"}',
    );
    await expect(loadBertCheckpoint(index)).rejects.toMatchObject({ code: 'CHECKPOINT_CORRUPT' });
    await expect(loadBertCheckpoint(temporary())).rejects.toMatchObject({ code: 'IO_FAILED' });
  });
});
