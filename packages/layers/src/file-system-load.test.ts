import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { FinepruneError } from '@fineprune/core';
import { setBackend } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSystem } from './file-system';
import { mlp } from './test-support';

/** The error a load throws (fails the test when it loads). */
async function loadError(directory: string, options = {}): Promise<FinepruneError> {
  try {
    await fileSystem(directory, options).load!();
  } catch (error) {
    if (FinepruneError.is(error)) return error;
    throw error;
  }
  throw new Error(`${directory} loaded`);
}

async function weightsFile(directory: string): Promise<string> {
  return (await readdir(directory)).find((file) => file.endsWith('.bin'))!;
}

let root: string;
let counter = 0;
const fresh = () => join(root, `case-${counter++}`);
/** A saved MLP (8-16-12-3: 1,548 bytes of float32 weights in six entries). */
async function savedModel(): Promise<string> {
  const directory = fresh();
  const model = mlp(51);
  await model.save(fileSystem(directory));
  model.dispose();
  return directory;
}
/** Rewrites model.json through `edit`, without content hashes (as a model saved by another tool). */
async function editModelJson(directory: string, edit: (json: any) => void): Promise<void> {
  const json = JSON.parse(await readFile(join(directory, 'model.json'), 'utf8'));
  delete json.finepruneIntegrity;
  edit(json);
  await writeFile(join(directory, 'model.json'), JSON.stringify(json));
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fineprune-load-'));
  await setBackend('cpu');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('fileSystem loads only files inside the model folder', () => {
  it('refuses ../ paths, absolute paths and links that lead out, naming model.json and the path', async () => {
    for (const path of ['../../../../../../dev/zero', '/etc/passwd', 'sub/../../outside.bin']) {
      const directory = await savedModel();
      await editModelJson(directory, (json) => {
        json.weightsManifest[0].paths = [path];
      });
      const error = await loadError(directory);
      expect(error.code).toBe('CHECKPOINT_CORRUPT');
      expect(error.message).toContain('outside the model folder');
      expect(error.message).toContain(JSON.stringify(path));
      expect(error.details).toMatchObject({ file: join(directory, 'model.json'), path });
    }
    const outside = join(root, 'secret.bin');
    await writeFile(outside, new Uint8Array(1548));
    for (const target of [outside, '/dev/zero']) {
      const directory = await savedModel();
      await symlink(target, join(directory, 'link.bin'));
      await editModelJson(directory, (json) => {
        json.weightsManifest[0].paths = ['link.bin'];
      });
      const error = await loadError(directory);
      expect(error.code).toBe('CHECKPOINT_CORRUPT');
      expect(error.message).toContain('a link that leads outside the model folder');
    }
  });

  it('follows a link that stays inside the folder', async () => {
    const directory = await savedModel();
    const bin = await weightsFile(directory);
    await mkdir(join(directory, 'shards'));
    await symlink(join(directory, bin), join(directory, 'shards', 'alias.bin'));
    await editModelJson(directory, (json) => {
      json.weightsManifest[0].paths = ['shards/alias.bin'];
    });
    const loaded = await tfl.loadLayersModel(fileSystem(directory));
    expect(loaded.getWeights()).toHaveLength(6);
    loaded.dispose();
  });

  it('refuses a FIFO or a directory as a weights file or as model.json, without blocking', async () => {
    const fifoWeights = await savedModel();
    execFileSync('mkfifo', [join(fifoWeights, 'pipe.bin')]);
    await editModelJson(fifoWeights, (json) => {
      json.weightsManifest[0].paths = ['pipe.bin'];
    });
    const fifoError = await loadError(fifoWeights);
    expect(fifoError.code).toBe('CHECKPOINT_CORRUPT');
    expect(fifoError.message).toContain('is not a regular file');

    const fifoJson = fresh();
    await mkdir(fifoJson);
    execFileSync('mkfifo', [join(fifoJson, 'model.json')]);
    expect((await loadError(fifoJson)).message).toContain('is not a regular file');

    const directoryWeights = await savedModel();
    await mkdir(join(directoryWeights, 'folder.bin'));
    await editModelJson(directoryWeights, (json) => {
      json.weightsManifest[0].paths = ['folder.bin'];
    });
    expect((await loadError(directoryWeights)).message).toContain('is not a regular file');
  });
});

describe('fileSystem checks sizes and structure before reading weights', () => {
  it('refuses a manifest that declares more than maxWeightBytes, naming the weight', async () => {
    const directory = await savedModel();
    await editModelJson(directory, (json) => {
      json.weightsManifest[0].weights[1].shape = [100_000, 100_000]; // 4e10 bytes of float32
    });
    const error = await loadError(directory);
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(error.message).toContain('"fc1/bias"');
    expect(error.details).toMatchObject({ entry: 'fc1/bias', maxWeightBytes: 4 * 1024 ** 3 });
    // The model's own 1,548 bytes pass under a limit of 1,548 and fail under 1,547.
    const plain = await savedModel();
    const model = await tfl.loadLayersModel(fileSystem(plain, { maxWeightBytes: 1548 }));
    model.dispose();
    expect((await loadError(plain, { maxWeightBytes: 1547 })).details).toMatchObject({ entry: 'out/bias' });
  });

  it('compares the files’ sizes with the manifest before reading them', async () => {
    const directory = await savedModel();
    const bin = await weightsFile(directory);
    await writeFile(join(directory, bin), new Uint8Array(1548 + 4096));
    await editModelJson(directory, () => undefined);
    const error = await loadError(directory);
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(error.message).toContain(`hold ${1548 + 4096} bytes but its manifest describes 1548`);
  });

  it('reports each malformed manifest as CHECKPOINT_CORRUPT naming model.json and the entry', async () => {
    // [what, where in model.json, the value put there, what the message says]
    const cases: Array<[string, (json: any) => [any, string], unknown, string]> = [
      ['[null] manifest', (json) => [json, 'weightsManifest'], [null], 'weightsManifest[0] that is null'],
      ['missing manifest', (json) => [json, 'weightsManifest'], undefined, 'weightsManifest that is missing'],
      [
        'object manifest',
        (json) => [json, 'weightsManifest'],
        { paths: [] },
        'weightsManifest that is an object',
      ],
      ['string topology', (json) => [json, 'modelTopology'], 'x', 'modelTopology that is a string'],
      [
        'topology without class',
        (json) => [json.modelTopology, 'class_name'],
        7,
        'without a class_name and a config',
      ],
      [
        'null weight entry',
        (json) => [json.weightsManifest[0].weights, '2'],
        null,
        'weights[2] that is null',
      ],
      ['null path', (json) => [json.weightsManifest[0], 'paths'], [null], 'paths[0] that is null'],
      [
        'non-array shape',
        (json) => [json.weightsManifest[0].weights[0], 'shape'],
        '8,16',
        'whose shape is a string',
      ],
      [
        'negative dimension',
        (json) => [json.weightsManifest[0].weights[0], 'shape'],
        [-8, 16],
        'dimension 0 is "-8"',
      ],
      [
        'unknown dtype',
        (json) => [json.weightsManifest[0].weights[0], 'dtype'],
        'float64',
        'dtype "float64"',
      ],
      [
        'duplicate name',
        (json) => [json.weightsManifest[0].weights[1], 'name'],
        'fc1/kernel',
        '"fc1/kernel" twice',
      ],
    ];
    for (const [label, place, value, expected] of cases) {
      const directory = await savedModel();
      await editModelJson(directory, (json) => {
        const [parent, key] = place(json);
        parent[key] = value;
      });
      const error = await loadError(directory);
      expect(error.code, label).toBe('CHECKPOINT_CORRUPT');
      expect(error.message, label).toContain(join(directory, 'model.json'));
      expect(error.message, label).toContain(expected);
    }
  });

  it('cuts a huge name short in the message', async () => {
    const directory = await savedModel();
    const name = 'n'.repeat(1_000_000);
    await editModelJson(directory, (json) => {
      json.weightsManifest[0].weights[0].dtype = 'float64';
      json.weightsManifest[0].weights[0].name = name;
    });
    const error = await loadError(directory);
    expect(error.message).toContain('(1000000 characters)');
    expect(error.message.length).toBeLessThan(1000);
  });

  it('stops a model.json of nested brackets or past maxModelJsonBytes before parsing it', async () => {
    const deep = fresh();
    await mkdir(deep);
    await writeFile(join(deep, 'model.json'), '['.repeat(5_000_000));
    const deepError = await loadError(deep);
    expect(deepError.code).toBe('CHECKPOINT_CORRUPT');
    expect(deepError.message).toContain('nests deeper than 64 levels');

    const large = await savedModel();
    const size = (await readFile(join(large, 'model.json'))).length;
    const largeError = await loadError(large, { maxModelJsonBytes: size - 1 });
    expect(largeError.message).toContain(`has ${size} bytes, more than the ${size - 1}`);
  });

  it('gives a graph-model folder a short typed error instead of TF.js’s "Improper config format"', async () => {
    const directory = fresh();
    await mkdir(directory);
    await writeFile(
      join(directory, 'model.json'),
      JSON.stringify({
        format: 'graph-model',
        generatedBy: '2.15.0',
        convertedBy: 'TensorFlow.js Converter v4.22.0',
        modelTopology: { node: [{ name: 'x', op: 'Placeholder' }], versions: { producer: 1 } },
        weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [] }],
      }),
    );
    try {
      await tfl.loadLayersModel(fileSystem(directory));
      expect.unreachable();
    } catch (error) {
      expect(FinepruneError.is(error) && error.code).toBe('CHECKPOINT_MISMATCH');
      expect((error as Error).message).toContain('graph model');
      expect((error as FinepruneError).fix).toContain('tf.loadGraphModel');
      expect((error as Error).message.length).toBeLessThan(600);
    }
  });
});

describe('fileSystem content hashes', () => {
  it('records SHA-256 of model.json without the record and of each weight’s bytes', async () => {
    const directory = await savedModel();
    const text = await readFile(join(directory, 'model.json'), 'utf8');
    const json = JSON.parse(text);
    const record = json.finepruneIntegrity;
    delete json.finepruneIntegrity;
    const sha = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
    expect(record.document).toBe(sha(JSON.stringify(json)));
    const bytes = await readFile(join(directory, json.weightsManifest[0].paths[0]));
    // fc2/kernel is [16, 12] float32 at bytes [576, 1344): after fc1/kernel (512) and fc1/bias (64).
    expect(record.weights['fc2/kernel']).toBe(sha(bytes.subarray(576, 1344)));
    expect(Object.keys(record.weights)).toHaveLength(6);
  });

  it('names the weights file and the weight whose bytes were flipped', async () => {
    const directory = await savedModel();
    const bin = await weightsFile(directory);
    const bytes = await readFile(join(directory, bin));
    bytes[600] = bytes[600]! ^ 0x01; // inside fc2/kernel, bytes [576, 1344)
    await writeFile(join(directory, bin), bytes);
    const error = await loadError(directory);
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(error.message).toContain('"fc2/kernel"');
    expect(error.details).toMatchObject({ file: join(directory, bin), entry: 'fc2/kernel' });
  });

  it('refuses a model.json edited after it was saved; a model without hashes still loads', async () => {
    const directory = await savedModel();
    const path = join(directory, 'model.json');
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('"generatedBy":"', '"generatedBy":"edited '));
    const error = await loadError(directory);
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(error.message).toContain('does not match its content hash');

    await editModelJson(directory, (json) => {
      json.generatedBy = 'another tool';
    });
    const loaded = await tfl.loadLayersModel(fileSystem(directory));
    loaded.dispose();
  });
});
