import * as fs from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { FinepruneError } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { fileSystem } from './file-system';
import { BACKENDS, expectNoLeak, mlp, values } from './test-support';

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    if (FinepruneError.is(error)) return error.code;
    throw error;
  }
  return undefined;
}

async function binFiles(directory: string): Promise<string[]> {
  return (await readdir(directory)).filter((file) => file.endsWith('.bin'));
}

let root: string;
let counter = 0;
const fresh = () => join(root, `case-${counter++}`);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fineprune-fs-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

for (const backend of BACKENDS) {
  describe(`fileSystem on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('writes model.json and one weights file in the TF.js layers-model format and loads them back', async () => {
      const directory = fresh();
      const model = mlp(41);
      model.setUserDefinedMetadata({ note: 'hello' });
      await model.save(fileSystem(directory));
      const files = (await readdir(directory)).sort();
      // model.json, the weights file, and the record of the weights files fineprune wrote.
      expect(files).toHaveLength(3);
      expect(files).toContain('model.json');
      expect(files).toContain('.fineprune-written.json');
      const json = JSON.parse(await readFile(join(directory, 'model.json'), 'utf8'));
      expect(json.format).toBe('layers-model');
      expect(json.modelTopology.class_name).toBe('Sequential');
      expect(json.userDefinedMetadata).toEqual({ note: 'hello' });
      expect(json.weightsManifest).toHaveLength(1);
      expect(json.weightsManifest[0].paths).toEqual([(await binFiles(directory))[0]]);
      expect(json.weightsManifest[0].weights.map((spec: { name: string }) => spec.name)).toEqual([
        'fc1/kernel',
        'fc1/bias',
        'fc2/kernel',
        'fc2/bias',
        'out/kernel',
        'out/bias',
      ]);

      await expectNoLeak(async () => {
        const loaded = await tfl.loadLayersModel(fileSystem(directory));
        const x = tf.ones([2, 8]);
        const [a, b] = [model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
        expect(await values(b)).toEqual(await values(a));
        tf.dispose([x, a, b]);
        loaded.dispose();
      });
      model.dispose();
    });

    it('replaces the previous save and removes its weights file', async () => {
      const directory = fresh();
      const first = mlp(42);
      const second = mlp(43);
      await first.save(fileSystem(directory));
      const [firstBin] = await binFiles(directory);
      // A stock weights file that the old model.json does not name stays; one it names goes.
      await writeFile(join(directory, 'unrelated.bin'), 'keep me');
      await second.save(fileSystem(directory));
      const bins = await binFiles(directory);
      expect(bins).toHaveLength(2);
      expect(bins).toContain('unrelated.bin');
      expect(bins).not.toContain(firstBin);
      const loaded = await tfl.loadLayersModel(fileSystem(directory));
      expect(await values(loaded.getWeights()[0]!)).toEqual(await values(second.getWeights()[0]!));
      loaded.dispose();
      first.dispose();
      second.dispose();
    });

    it('reports a truncated or missing weights file and a damaged model.json as CHECKPOINT_CORRUPT', async () => {
      const model = mlp(44);
      const truncated = fresh();
      await model.save(fileSystem(truncated));
      const [bin] = await binFiles(truncated);
      const fullSize = fs.statSync(join(truncated, bin!)).size;
      await truncate(join(truncated, bin!), fullSize - 4);
      try {
        await fileSystem(truncated).load!();
        expect.unreachable();
      } catch (error) {
        expect(FinepruneError.is(error) && error.code).toBe('CHECKPOINT_CORRUPT');
        expect((error as FinepruneError).message).toContain(`${fullSize - 4} bytes`);
        expect((error as FinepruneError).message).toContain(`${fullSize}`);
        expect((error as FinepruneError).fix).toMatch(/save the model again/);
      }

      const missing = fresh();
      await model.save(fileSystem(missing));
      await rm(join(missing, (await binFiles(missing))[0]!));
      expect(await codeOf(fileSystem(missing).load!())).toBe('CHECKPOINT_CORRUPT');

      const damaged = fresh();
      await model.save(fileSystem(damaged));
      const text = await readFile(join(damaged, 'model.json'), 'utf8');
      await writeFile(join(damaged, 'model.json'), text.slice(0, text.length / 2));
      expect(await codeOf(fileSystem(damaged).load!())).toBe('CHECKPOINT_CORRUPT');

      expect(await codeOf(fileSystem(fresh()).load!())).toBe('IO_FAILED');
      model.dispose();
    });

    it('is atomic: a save that fails midway leaves the previous model loadable', async () => {
      const directory = fresh();
      const first = mlp(45);
      const second = mlp(46);
      await first.save(fileSystem(directory));
      const before = (await readdir(directory)).sort();
      const x = tf.ones([1, 8]);
      const expected = first.predict(x) as tf.Tensor;
      const check = async () => {
        expect((await readdir(directory)).sort()).toEqual(before);
        const loaded = await tfl.loadLayersModel(fileSystem(directory));
        const y = loaded.predict(x) as tf.Tensor;
        expect(await values(y)).toEqual(await values(expected));
        y.dispose();
        loaded.dispose();
      };

      // 1. The rename that would publish the new model.json fails.
      const realRename = fs.promises.rename;
      const rename = vi.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
        if (String(to).endsWith('model.json')) throw new Error('disk vanished');
        return realRename(from, to);
      });
      try {
        await second.save(fileSystem(directory));
        expect.unreachable();
      } catch (error) {
        expect(FinepruneError.is(error) && error.code).toBe('IO_FAILED');
        expect((error as FinepruneError).message).toContain('rename');
        expect((error as FinepruneError).message).toContain('disk vanished');
      }
      expect(rename.mock.calls.filter(([, to]) => String(to).endsWith('model.json'))).toHaveLength(1);
      rename.mockRestore();
      await check();

      // 2. The temporary model.json cannot be written (the disk fills up after the weights).
      const realOpen = fs.promises.open;
      const openTemporary = vi.spyOn(fs.promises, 'open').mockImplementation(async (file, ...rest) => {
        if (/model\.json\.[0-9]+-[0-9a-z]+\.tmp$/.test(String(file)))
          throw new Error('no space left on device');
        return realOpen(file, ...(rest as [string]));
      });
      expect(await codeOf(second.save(fileSystem(directory)))).toBe('IO_FAILED');
      openTemporary.mockRestore();
      await check();

      // 3. Writing the weights file fails.
      const openWeights = vi.spyOn(fs.promises, 'open').mockImplementation(async (file, ...rest) => {
        if (/weights\.[^/]*\.bin$/.test(String(file))) throw new Error('no space left on device');
        return realOpen(file, ...(rest as [string]));
      });
      expect(await codeOf(second.save(fileSystem(directory)))).toBe('IO_FAILED');
      openWeights.mockRestore();
      await check();

      // 4. A crash after the rename, before the old weights were removed: model.json names a
      //    complete file, the stale one is removed by the next save.
      vi.spyOn(fs.promises, 'rm').mockRejectedValue(new Error('crash'));
      await second.save(fileSystem(directory));
      vi.restoreAllMocks();
      expect(await binFiles(directory)).toHaveLength(2);
      const loaded = await tfl.loadLayersModel(fileSystem(directory));
      expect(await values(loaded.getWeights()[0]!)).toEqual(await values(second.getWeights()[0]!));
      loaded.dispose();
      await second.save(fileSystem(directory));
      expect(await binFiles(directory)).toHaveLength(1);

      tf.dispose([x, expected]);
      first.dispose();
      second.dispose();
    });
  });
}

describe('fileSystem never removes or replaces what it did not write', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('keeps every file an old model.json names that fineprune did not write', async () => {
    const directory = fresh();
    await mkdir(directory);
    // A model saved by another tool, whose manifest also names a file of the user's.
    await writeFile(
      join(directory, 'model.json'),
      JSON.stringify({
        modelTopology: { class_name: 'Sequential', config: { layers: [] } },
        weightsManifest: [{ paths: ['group1-shard1of1.bin', 'notes.txt'], weights: [] }],
      }),
    );
    await writeFile(join(directory, 'group1-shard1of1.bin'), 'stock weights');
    await writeFile(join(directory, 'notes.txt'), 'my notes');
    // A file that merely looks like one of ours.
    await writeFile(join(directory, 'weights.abc-123-xyz.bin'), 'mine, not fineprune’s');
    const model = mlp(61);
    await model.save(fileSystem(directory));
    await model.save(fileSystem(directory));
    expect(await readFile(join(directory, 'group1-shard1of1.bin'), 'utf8')).toBe('stock weights');
    expect(await readFile(join(directory, 'notes.txt'), 'utf8')).toBe('my notes');
    expect(await readFile(join(directory, 'weights.abc-123-xyz.bin'), 'utf8')).toBe('mine, not fineprune’s');
    // Of fineprune's own weights files only the current one is left.
    const own = (await binFiles(directory)).filter((file) =>
      /^weights\.[0-9a-z]+-[0-9]+-[0-9a-z]+\.bin$/.test(file),
    );
    expect(own.filter((file) => file !== 'weights.abc-123-xyz.bin')).toHaveLength(1);
    model.dispose();
  });

  it('removes a weights file a crash left behind (recorded before it was written) at the next save', async () => {
    const directory = fresh();
    const model = mlp(62);
    await model.save(fileSystem(directory));
    // A crash after the weights were written, before model.json was replaced: nothing tidies up.
    const realRename = fs.promises.rename;
    vi.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      if (String(to).endsWith('model.json')) throw new Error('killed');
      return realRename(from, to);
    });
    vi.spyOn(fs.promises, 'rm').mockResolvedValue(undefined);
    expect(await codeOf(model.save(fileSystem(directory)))).toBe('IO_FAILED');
    vi.restoreAllMocks();
    expect(await binFiles(directory)).toHaveLength(2);
    const record = JSON.parse(await readFile(join(directory, '.fineprune-written.json'), 'utf8'));
    expect(record.files).toHaveLength(2);
    await model.save(fileSystem(directory));
    expect(await binFiles(directory)).toHaveLength(1);
    model.dispose();
  });

  it('refuses to replace a model.json that is not a readable TF.js model', async () => {
    const directory = fresh();
    await mkdir(directory);
    await writeFile(join(directory, 'model.json'), 'my own notes, not a model');
    const model = mlp(63);
    try {
      await model.save(fileSystem(directory));
      expect.unreachable();
    } catch (error) {
      expect(FinepruneError.is(error) && error.code).toBe('IO_FAILED');
      expect((error as Error).message).toContain('not a readable TF.js model');
    }
    expect(await readFile(join(directory, 'model.json'), 'utf8')).toBe('my own notes, not a model');
    expect(await readdir(directory)).toEqual(['model.json']);
    model.dispose();
  });
});
