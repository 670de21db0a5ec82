import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { adam, FinepruneError, Pruner } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import { fileSystem } from './file-system';
import { fromLayersModel } from './from-layers-model';
import { saveStripped } from './strip';
import { fixedData, mlp, release, testMagnitude, testRamp, testTopK } from './test-support';

const LOSS = { loss: 'sparseCategoricalCrossentropy' } as const;

async function failure(promise: Promise<unknown>): Promise<FinepruneError> {
  try {
    await promise;
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  throw new Error('it did not fail');
}

/** Loads a checkpoint and disposes what it returns; fails the test when it does not load. */
async function loads(handler: tf.io.IOHandler, options = {}): Promise<number> {
  const { model, state } = await loadCheckpoint(handler, { ...LOSS, ...options });
  tf.dispose(Object.values(state.tensors));
  model.dispose();
  return state.step;
}

let root: string;
let counter = 0;
const fresh = () => join(root, `case-${counter++}`);

/** A checkpoint after 3 steps of pruning the test MLP (masks of fc1, fc2 and out; Adam slots). */
async function checkpoint(
  directory?: string,
): Promise<{ directory: string; artifacts: tf.io.ModelArtifacts }> {
  const target = directory ?? fresh();
  const prunable = fromLayersModel(mlp(71), LOSS);
  const pruner = new Pruner({
    model: prunable,
    scores: testMagnitude(),
    mask: testTopK(),
    schedule: testRamp(0.1, 0.5),
    optimizers: { weights: adam({ learningRate: 1e-2 }) },
    seed: 5,
  });
  const data = fixedData(9);
  await pruner.run({ data: (step) => data.batch(step), untilStep: 3 });
  await saveCheckpoint(prunable, pruner, fileSystem(target));
  pruner.dispose();
  release(prunable);
  data.dispose();
  return { directory: target, artifacts: await fileSystem(target).load!() };
}

/** The artifacts with one decoded tensor replaced (re-encoded, as a hand-made checkpoint would be). */
async function withTensor(
  artifacts: tf.io.ModelArtifacts,
  name: string,
  replace: (values: Float32Array) => tf.Tensor,
): Promise<tf.io.ModelArtifacts> {
  const decoded = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
  const old = decoded[name]!;
  decoded[name] = replace(Float32Array.from(await old.data()));
  old.dispose();
  const encoded = await tf.io.encodeWeights(decoded);
  tf.dispose(Object.values(decoded));
  return { ...artifacts, weightSpecs: encoded.specs, weightData: encoded.data };
}

function withMetadata(artifacts: tf.io.ModelArtifacts, edit: (metadata: any) => void): tf.io.ModelArtifacts {
  const user = structuredClone(artifacts.userDefinedMetadata) as { fineprune: Record<string, unknown> };
  edit(user.fineprune);
  return { ...artifacts, userDefinedMetadata: user };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fineprune-untrusted-'));
  await setBackend('cpu');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('a tampered checkpoint is an error, never a silent resume', () => {
  it('names the weight whose bytes were flipped', async () => {
    const { directory, artifacts } = await checkpoint();
    // The optimizer slot of out/bias: find its byte range from the manifest.
    let offset = 0;
    let range: [number, number] | undefined;
    for (const spec of artifacts.weightSpecs!) {
      const bytes = 4 * spec.shape.reduce((product, dimension) => product * dimension, 1);
      if (spec.name === 'fineprune/optimizer/weights/out/bias/m') range = [offset, offset + bytes];
      offset += bytes;
    }
    const bin = (await readdir(directory)).find((file) => file.endsWith('.bin'))!;
    const bytes = await readFile(join(directory, bin));
    bytes[range![0] + 1] = bytes[range![0] + 1]! ^ 0x10;
    await writeFile(join(directory, bin), bytes);
    const error = await failure(loadCheckpoint(fileSystem(directory), LOSS));
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(error.details).toMatchObject({
      entry: 'fineprune/optimizer/weights/out/bias/m',
      file: join(directory, bin),
    });
  });

  it('refuses an edited step, random state or mask kind, and a checkpoint whose hashes were removed', async () => {
    const edits: Array<[string, (text: string) => string]> = [
      ['step', (text) => text.replace('"step":3', '"step":2')],
      [
        'random state',
        (text) => text.replace(/"random":\[(\d)/, (_, digit) => `"random":[${(Number(digit) + 1) % 10}`),
      ],
      ['mask kind', (text) => text.replace('"mask":"binary"', '"mask":"fractional"')],
    ];
    for (const [label, edit] of edits) {
      const { directory } = await checkpoint();
      const path = join(directory, 'model.json');
      const text = await readFile(path, 'utf8');
      const edited = edit(text);
      expect(edited, label).not.toBe(text);
      await writeFile(path, edited);
      const error = await failure(loadCheckpoint(fileSystem(directory), LOSS));
      expect(error.code, label).toBe('CHECKPOINT_CORRUPT');
      expect(error.message, label).toContain('does not match its content hash');
    }
    const { directory } = await checkpoint();
    const path = join(directory, 'model.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    delete json.finepruneIntegrity;
    await writeFile(path, JSON.stringify(json));
    const error = await failure(loadCheckpoint(fileSystem(directory), LOSS));
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(error.message).toContain('its hashes were removed');
  });

  it('loads a version-1 checkpoint (no hashes) only with allowUnverified', async () => {
    const { directory } = await checkpoint();
    const path = join(directory, 'model.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    delete json.finepruneIntegrity;
    json.userDefinedMetadata.fineprune.formatVersion = 1;
    for (const parameter of json.userDefinedMetadata.fineprune.parameters) delete parameter.mask;
    await writeFile(path, JSON.stringify(json));
    const error = await failure(loadCheckpoint(fileSystem(directory), LOSS));
    expect(error.code).toBe('CHECKPOINT_MISMATCH');
    expect(error.message).toContain('version-1 checkpoint');
    expect(error.fix).toContain('allowUnverified: true');
    expect(await loads(fileSystem(directory), { allowUnverified: true })).toBe(3);
  });
});

describe('checkpoint values are checked on load', () => {
  it('refuses masks holding NaN, 2 or −1, and 0.5 in a binary mask, naming the entry and index', async () => {
    const { artifacts } = await checkpoint();
    const before = tf.memory().numTensors;
    for (const bad of [Number.NaN, 2, -1, 0.5]) {
      const tampered = await withTensor(artifacts, 'fineprune/mask/fc2/kernel', (values) => {
        values[7] = bad;
        return tf.tensor(values, [16, 12]);
      });
      const error = await failure(loadCheckpoint(tf.io.fromMemory(tampered), LOSS));
      expect(error.code, String(bad)).toBe('CHECKPOINT_CORRUPT');
      expect(error.details, String(bad)).toMatchObject({ entry: 'fineprune/mask/fc2/kernel', index: 7 });
      expect(error.message, String(bad)).toContain(`holds ${bad} at index 7`);
    }
    // A refused load frees every tensor it decoded.
    expect(tf.memory().numTensors).toBe(before);
  });

  it('accepts 0.5 in a mask the checkpoint records as fractional (hard-concrete), not 1.5', async () => {
    const { artifacts } = await checkpoint();
    const soft = await withTensor(artifacts, 'fineprune/mask/fc2/kernel', (values) => {
      values[7] = 0.5;
      return tf.tensor(values, [16, 12]);
    });
    const fractional = withMetadata(soft, (metadata) => {
      metadata.parameters[1].mask = 'fractional';
    });
    expect(await loads(tf.io.fromMemory(fractional))).toBe(3);
    const over = await withTensor(fractional, 'fineprune/mask/fc2/kernel', (values) => {
      values[8] = 1.5;
      return tf.tensor(values, [16, 12]);
    });
    expect((await failure(loadCheckpoint(tf.io.fromMemory(over), LOSS))).message).toContain(
      'only values in [0, 1]',
    );
  });

  it('refuses NaN or infinite weights and optimizer slots, and an int32 weight', async () => {
    const { artifacts } = await checkpoint();
    const before = tf.memory().numTensors;
    const cases: Array<[string, number[], number]> = [
      ['fc1/kernel', [8, 16], Number.NaN],
      ['fc1/bias', [16], Number.POSITIVE_INFINITY],
      ['fineprune/optimizer/weights/fc2/kernel/v', [16, 12], Number.NEGATIVE_INFINITY],
    ];
    for (const [name, shape, bad] of cases) {
      const tampered = await withTensor(artifacts, name, (values) => {
        values[0] = bad;
        return tf.tensor(values, shape);
      });
      const error = await failure(loadCheckpoint(tf.io.fromMemory(tampered), LOSS));
      expect(error.code, name).toBe('CHECKPOINT_CORRUPT');
      expect(error.details, name).toMatchObject({ entry: name, index: 0 });
    }
    const integer = await withTensor(artifacts, 'fc1/bias', (values) =>
      tf.tensor(Int32Array.from(values), [16], 'int32'),
    );
    const error = await failure(loadCheckpoint(tf.io.fromMemory(integer), LOSS));
    expect(error.code).toBe('CHECKPOINT_MISMATCH');
    expect(error.message).toContain('"fc1/bias" is int32 [16] but the model\'s weight is float32 [16]');
    const integerMask = await withTensor(artifacts, 'fineprune/mask/out/kernel', (values) =>
      tf.tensor(Int32Array.from(values), [12, 3], 'int32'),
    );
    expect((await failure(loadCheckpoint(tf.io.fromMemory(integerMask), LOSS))).message).toContain(
      'as int32',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses malformed metadata: groups [null], parameters null, a negative step, a bad random state', async () => {
    const { artifacts } = await checkpoint();
    // [the entry the error names, the field replaced, its new value]
    const cases: Array<[string, (metadata: any) => [any, string], unknown]> = [
      ['groups[0]', (metadata) => [metadata, 'groups'], [null]],
      ['parameters', (metadata) => [metadata, 'parameters'], null],
      ['parameters[0]', (metadata) => [metadata.parameters[0], 'shape'], 'x'],
      ['step', (metadata) => [metadata, 'step'], -1],
      ['random', (metadata) => [metadata, 'random'], [0, 0, 0, 0]],
    ];
    for (const [entry, place, value] of cases) {
      const edited = withMetadata(artifacts, (metadata) => {
        const [parent, key] = place(metadata);
        parent[key] = value;
      });
      const error = await failure(loadCheckpoint(tf.io.fromMemory(edited), LOSS));
      expect(error.code, entry).toBe('CHECKPOINT_CORRUPT');
      expect(error.details, entry).toMatchObject({ entry });
    }
  });
});

describe('exports and checkpoints never replace each other', () => {
  it('refuses an export over a checkpoint and a checkpoint over an export; both stay loadable', async () => {
    const { directory } = await checkpoint();
    const before = await readFile(join(directory, 'model.json'), 'utf8');
    const { model, state } = await loadCheckpoint(fileSystem(directory), LOSS);
    tf.dispose(Object.values(state.tensors));
    const error = await failure(saveStripped(model, fileSystem(directory)));
    expect(error.code).toBe('IO_FAILED');
    expect(error.message).toContain(
      'holds a fineprune checkpoint; saving a plain layers model (an export) there',
    );
    expect(await readFile(join(directory, 'model.json'), 'utf8')).toBe(before);
    expect(await loads(fileSystem(directory))).toBe(3);

    const exported = fresh();
    await saveStripped(model, fileSystem(exported));
    const pruner = new Pruner({
      model,
      scores: testMagnitude(),
      mask: testTopK(),
      schedule: testRamp(0.1, 0.5),
      optimizers: { weights: adam({ learningRate: 1e-2 }) },
    });
    const reverse = await failure(saveCheckpoint(model, pruner, fileSystem(exported)));
    expect(reverse.message).toContain(
      'holds a plain layers model (an export); saving a fineprune checkpoint there',
    );
    const plain = await tfl.loadLayersModel(fileSystem(exported));
    plain.dispose();
    pruner.dispose();
    model.dispose();
  });
});
