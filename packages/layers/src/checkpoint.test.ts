import { mkdtemp, readdir, rm, truncate } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { adam, FinepruneError, Pruner } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import type { CheckpointMetadata } from './checkpoint-contents';
import { fileSystem } from './file-system';
import { fromLayersModel, type LayersPrunableModel } from './from-layers-model';
import { saveStripped } from './strip';
import {
  BACKENDS,
  expectNoLeak,
  fixedData,
  mlp,
  release,
  testMagnitude,
  testRamp,
  testTopK,
} from './test-support';

const LOSS = { loss: 'sparseCategoricalCrossentropy' } as const;

function makePruner(model: LayersPrunableModel): Pruner {
  return new Pruner({
    model,
    groups: [
      {
        name: 'hidden',
        parameters: /^fc/,
        scores: testMagnitude(),
        mask: testTopK(),
        schedule: testRamp(0.1, 0.6),
      },
      {
        name: 'head',
        parameters: 'out',
        scores: testMagnitude(),
        mask: testTopK(),
        schedule: testRamp(0.05, 0.3),
      },
    ],
    optimizers: { weights: adam({ learningRate: 1e-2 }) },
    seed: 3,
  });
}

async function snapshot(model: LayersPrunableModel): Promise<Record<string, number[]>> {
  const result: Record<string, number[]> = {};
  for (const parameter of model.parameters())
    result[`mask/${parameter.name}`] = Array.from(await parameter.mask.data());
  for (const { name, variable } of model.variables())
    result[`weight/${name}`] = Array.from(await variable.data());
  return result;
}

/** Captures artifacts in memory instead of writing files. */
async function captured(save: (handler: tf.io.IOHandler) => Promise<unknown>): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await save(
    tf.io.withSaveHandler(async (value) => {
      artifacts = value;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return artifacts!;
}

async function codeOf(promise: Promise<unknown>): Promise<FinepruneError | undefined> {
  try {
    await promise;
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  return undefined;
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fineprune-checkpoint-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

for (const backend of BACKENDS) {
  describe(`checkpoints on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('resumes a pruning run exactly: masks equal, weights equal to an uninterrupted run', async () => {
      const data = fixedData(17);
      const total = 9;
      const middle = 5;

      // Uninterrupted run.
      const straight = fromLayersModel(mlp(51), LOSS);
      const straightPruner = makePruner(straight);
      await straightPruner.run({ data: (step) => data.batch(step), untilStep: total });
      const expected = await snapshot(straight);
      straightPruner.dispose();
      release(straight);

      // Interrupted run: save in the middle, load into a fresh model and a fresh pruner, continue.
      const directory = join(root, `resume-${backend}`);
      const first = fromLayersModel(mlp(51), LOSS);
      const firstPruner = makePruner(first);
      await firstPruner.run({ data: (step) => data.batch(step), untilStep: middle });
      await expectNoLeak(() => saveCheckpoint(first, firstPruner, fileSystem(directory)));
      const atSave = await snapshot(first);
      firstPruner.dispose();
      release(first);

      const before = tf.memory().numTensors;
      const { model: resumed, state } = await loadCheckpoint(fileSystem(directory), LOSS);
      expect(state.step).toBe(middle);
      expect(state.groups.map((group) => group.name)).toEqual(['hidden', 'head']);
      expect(await snapshot(resumed)).toEqual(atSave);
      const resumedPruner = makePruner(resumed);
      resumedPruner.loadState(state);
      tf.dispose(Object.values(state.tensors));
      expect(resumedPruner.step).toBe(middle);
      await resumedPruner.run({ data: (step) => data.batch(step), untilStep: total });
      const actual = await snapshot(resumed);
      for (const key of Object.keys(expected)) {
        // Same operations on the same values: bit-for-bit equal.
        expect(actual[key], key).toEqual(expected[key]);
      }
      // Masks really changed while pruning (the ramp rose past the save).
      expect(actual['mask/fc1/kernel']).not.toEqual(atSave['mask/fc1/kernel']);
      resumedPruner.dispose();
      resumed.dispose();
      expect(tf.memory().numTensors).toBe(before);
      data.dispose();
    });

    it('stores the topology, raw weights, pruner tensors under fineprune/ and the metadata', async () => {
      const prunable = fromLayersModel(mlp(52), LOSS);
      const pruner = makePruner(prunable);
      const data = fixedData(3);
      await pruner.run({ data: (step) => data.batch(step), untilStep: 2 });
      const artifacts = await captured((handler) => saveCheckpoint(prunable, pruner, handler));
      const names = artifacts.weightSpecs!.map((spec) => spec.name);
      expect(names.slice(0, 6)).toEqual([
        'fc1/kernel',
        'fc1/bias',
        'fc2/kernel',
        'fc2/bias',
        'out/kernel',
        'out/bias',
      ]);
      expect(names).toContain('fineprune/mask/fc1/kernel');
      expect(names).toContain('fineprune/optimizer/weights/fc1/kernel/m');
      expect(
        names.filter((name) => !name.startsWith('fineprune/') && !/^(fc1|fc2|out)\//.test(name)),
      ).toEqual([]);
      const metadata = (artifacts.userDefinedMetadata as { fineprune: CheckpointMetadata }).fineprune;
      expect(metadata).toMatchObject({
        formatVersion: 2,
        step: 2,
        groups: [
          { name: 'hidden', lastTarget: 0.1 },
          { name: 'head', lastTarget: 0.05 },
        ],
        parameters: [
          { name: 'fc1/kernel', shape: [8, 16], mask: 'binary' },
          { name: 'fc2/kernel', shape: [16, 12], mask: 'binary' },
          { name: 'out/kernel', shape: [12, 3], mask: 'binary' },
        ],
      });
      expect(metadata.random.length).toBeGreaterThan(0);
      // The raw kernel is saved (not W ⊙ M), so pruned entries can come back when masks change.
      const decoded = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
      expect(Array.from(await decoded['fc1/kernel']!.data())).toEqual(
        Array.from(await prunable.parameter('fc1/kernel').weight.data()),
      );
      tf.dispose(Object.values(decoded));
      pruner.dispose();
      release(prunable);
      data.dispose();
    });

    it('rejects masks that do not match their weights or name no parameter (CHECKPOINT_MISMATCH)', async () => {
      const prunable = fromLayersModel(mlp(53), LOSS);
      const pruner = makePruner(prunable);
      const artifacts = await captured((handler) => saveCheckpoint(prunable, pruner, handler));
      pruner.dispose();
      release(prunable);

      await expectNoLeak(async () => {
        // Swap the mask of fc2/kernel for one of another shape.
        const decoded = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
        decoded['fineprune/mask/fc2/kernel']!.dispose();
        decoded['fineprune/mask/fc2/kernel'] = tf.ones([12, 16]);
        const encoded = await tf.io.encodeWeights(decoded);
        tf.dispose(Object.values(decoded));
        const tampered = { ...artifacts, weightSpecs: encoded.specs, weightData: encoded.data };
        const error = await codeOf(loadCheckpoint(tf.io.fromMemory(tampered), LOSS));
        expect(error?.code).toBe('CHECKPOINT_MISMATCH');
        expect(error?.message).toContain('masks do not match its weights');
        expect(error?.message).toContain('fc2/kernel');
        expect(error?.message).toContain('[12,16]');
        expect(error?.message).toContain('[16,12]');
        expect(error?.fix.length).toBeGreaterThan(0);
        expect(error?.details).toMatchObject({
          parameter: 'fc2/kernel',
          maskShape: [12, 16],
          weightShape: [16, 12],
        });

        // Loading with other include options: the saved masks of fc2 and out name no parameter.
        const other = await codeOf(loadCheckpoint(tf.io.fromMemory(artifacts), { ...LOSS, include: 'fc1' }));
        expect(other?.code).toBe('CHECKPOINT_MISMATCH');
        expect(other?.message).toContain('fc2/kernel');
      });

      // A stripped model is not a checkpoint.
      const plain = fromLayersModel(mlp(54), LOSS);
      const stripped = await captured((handler) => saveStripped(plain, handler));
      expect((await codeOf(loadCheckpoint(tf.io.fromMemory(stripped), LOSS)))?.code).toBe(
        'CHECKPOINT_MISMATCH',
      );
      release(plain);
    });

    it('reports a truncated checkpoint weights file as CHECKPOINT_CORRUPT', async () => {
      const prunable = fromLayersModel(mlp(55), LOSS);
      const pruner = makePruner(prunable);
      const directory = join(root, `truncated-${backend}`);
      await saveCheckpoint(prunable, pruner, fileSystem(directory));
      pruner.dispose();
      release(prunable);
      const bin = (await readdir(directory)).find((file) => file.endsWith('.bin'))!;
      await truncate(join(directory, bin), statSync(join(directory, bin)).size - 100);
      const before = tf.memory().numTensors;
      const error = await codeOf(loadCheckpoint(fileSystem(directory), LOSS));
      expect(error?.code).toBe('CHECKPOINT_CORRUPT');
      expect(error?.cause ?? error?.fix).toBeTruthy();
      expect(tf.memory().numTensors).toBe(before);
    });

    it('refuses a pruner that prunes another model', async () => {
      const a = fromLayersModel(mlp(56), LOSS);
      const b = fromLayersModel(mlp(57), LOSS);
      const pruner = makePruner(a);
      expect((await codeOf(saveCheckpoint(b, pruner, fileSystem(join(root, 'never')))))?.code).toBe(
        'INVALID_ARGUMENT',
      );
      pruner.dispose();
      release(a);
      release(b);
    });
  });
}
