/**
 * The fuzz suite's inputs: the named bad files of issue 15, then seeded random mutations of valid
 * files of every untrusted format. Each builder writes its files under `root` and returns the cases
 * that read them. Deterministic: the same seed writes the same files.
 */

import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { fileSystem } from '@fineprune/layers';
import { assembleCompactModel } from '@fineprune/sparse';
import { encodeSafetensors, readSafetensors, type SafetensorsInput } from '@fineprune/safetensors';
import type { RandomSource } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { COMPACT_FILE } from '../../src/export-formats';
import { exportCheckpoint } from '../../src/export-model';
import type { FuzzCase, FuzzFormat, FuzzOperation } from './protocol';

/** The valid files the mutations start from. */
export interface BaseFiles {
  /** A run output directory (checkpoint/, model/, run.json). */
  run: string;
  /** A Hugging Face directory (config.json, model.safetensors) of a tiny BERT classifier. */
  huggingface: string;
  /** A valid recipe file. */
  recipe: string;
}

/** Writes files for cases and names them. */
class Workspace {
  private counter = 0;
  readonly cases: FuzzCase[] = [];
  constructor(
    readonly root: string,
    readonly base: BaseFiles,
    readonly random: RandomSource,
  ) {}

  /** A fresh directory under the root. */
  directory(label: string): string {
    const directory = path.join(this.root, `${String(this.counter++).padStart(4, '0')}-${label}`);
    mkdirSync(directory, { recursive: true });
    return directory;
  }

  /** A copy of a directory of the base files. */
  copy(source: string, label: string): string {
    const target = this.directory(label);
    cpSync(source, target, { recursive: true });
    return target;
  }

  add(
    format: FuzzFormat,
    operation: FuzzOperation,
    id: string,
    paths: string[],
    extra: Partial<FuzzCase> = {},
  ): void {
    // An export writes into a fresh directory of its own.
    const all =
      operation === 'export' && paths.length === 1
        ? [...paths, path.join(this.directory('out'), 'model')]
        : paths;
    this.cases.push({ id, format, operation, paths: all, ...extra });
  }

  int(n: number): number {
    return Math.floor(this.random.next() * n);
  }

  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
}

const STRANGE: readonly unknown[] = [
  null,
  true,
  -1,
  0,
  1.5,
  1e308,
  -1e308,
  2 ** 53,
  '',
  'x',
  '../../../../../../dev/zero',
  '/etc/passwd',
  '__proto__',
  [],
  [null],
  [-1, 2],
  {},
  { paths: ['x'], weights: [null] },
];

function strangeValue(space: Workspace): unknown {
  switch (space.int(5)) {
    case 0:
      return structuredClone(space.pick(STRANGE));
    case 1:
      return 'n'.repeat(space.pick([300, 70_000]));
    case 2: {
      let value: unknown = 1;
      for (let level = space.pick([10, 80]); level > 0; level -= 1) value = [value];
      return value;
    }
    case 3:
      return Array.from({ length: space.pick([2, 40]) }, () => space.int(1000) - 10);
    default:
      return space.pick(['float32', 'int32', 'float64', 'string', 'bool', 'complex64', 'uint8']);
  }
}

/** Every path to a value inside `root`, for picking a place to change. */
function places(root: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  out.push(prefix);
  if (root !== null && typeof root === 'object' && prefix.length < 7) {
    const keys = Object.keys(root);
    if (keys.length <= 60)
      for (const key of keys) places((root as Record<string, unknown>)[key], [...prefix, key], out);
  }
  return out;
}

/** Replaces, deletes or adds one value at a random place of a JSON value. */
function mutateJson(space: Workspace, json: Record<string, unknown>): void {
  const all = places(json).filter((place) => place.length > 0);
  const place = space.pick(all);
  let parent: any = json;
  for (const key of place.slice(0, -1)) parent = parent[key];
  const key = place.at(-1)!;
  const choice = space.int(4);
  if (choice === 0) delete parent[key];
  else if (choice === 1 && Array.isArray(parent)) parent.push(strangeValue(space));
  else parent[key] = strangeValue(space);
}

/** Changes model.json text: cuts it, or inserts brackets or a stray character. */
function mutateText(space: Workspace, text: string): string {
  const at = space.int(text.length);
  switch (space.int(3)) {
    case 0:
      return text.slice(0, at);
    case 1:
      return text.slice(0, at) + '['.repeat(space.pick([5, 100, 200_000])) + text.slice(at);
    default:
      return text.slice(0, at) + space.pick(['"', '}', ']', ',', '\\', '\u0000', 'é']) + text.slice(at + 1);
  }
}

function weightsFile(directory: string): string {
  return path.join(directory, readdirSync(directory).find((file) => file.endsWith('.bin'))!);
}

function readJson(file: string): Record<string, any> {
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** Rewrites model.json; without `keepSeal` its content hashes go (as a model saved by another tool). */
function editModelJson(directory: string, edit: (json: Record<string, any>) => void, keepSeal = false): void {
  const file = path.join(directory, 'model.json');
  const json = readJson(file);
  if (!keepSeal) delete json.finepruneIntegrity;
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

/** Saves the checkpoint again through fileSystem() after changing its tensors or metadata: sealed, so the value checks are reached. */
async function resaveCheckpoint(
  space: Workspace,
  label: string,
  change: (tensors: tf.NamedTensorMap, metadata: Record<string, any>) => void,
): Promise<string> {
  const artifacts = await fileSystem(path.join(space.base.run, 'checkpoint')).load!();
  const tensors = tf.io.decodeWeights(artifacts.weightData!, artifacts.weightSpecs!);
  const user = structuredClone(artifacts.userDefinedMetadata) as Record<string, any>;
  change(tensors, user.fineprune);
  const encoded = await tf.io.encodeWeights(tensors);
  tf.dispose(Object.values(tensors));
  const directory = path.join(space.directory(label), 'checkpoint');
  await fileSystem(directory).save!({
    ...artifacts,
    weightSpecs: encoded.specs,
    weightData: encoded.data,
    userDefinedMetadata: user,
  });
  return directory;
}

/** Replaces entries of the tensor `name` (a copy) with `value`, or recasts it to int32. */
function setEntries(tensors: tf.NamedTensorMap, name: string, value: number | 'int32', at: number[]): void {
  const old = tensors[name]!;
  const values = Float32Array.from(old.dataSync());
  for (const index of at)
    values[index % values.length] = value === 'int32' ? values[index % values.length]! : value;
  tensors[name] =
    value === 'int32' ? tf.tensor(Int32Array.from(values), old.shape, 'int32') : tf.tensor(values, old.shape);
  old.dispose();
}

// ---------------------------------------------------------------------------------------------
// model.json + shards

function namedModelJsonCases(space: Workspace): void {
  const exported = path.join(space.base.run, 'model');
  const corrupt = ['CHECKPOINT_CORRUPT'];
  const paths = (label: string, value: string, operation: FuzzOperation) => {
    const directory = space.copy(exported, label);
    editModelJson(directory, (json) => {
      json.weightsManifest[0].paths = [value];
    });
    space.add('model-json', operation, `model.json names ${value} (${operation})`, [directory], {
      expect: corrupt,
    });
  };
  for (const operation of ['report', 'load-model'] as const)
    paths('dev-zero', '../../../../../../../dev/zero', operation);
  paths('absolute', '/etc/passwd', 'report');
  const fifo = space.copy(exported, 'fifo');
  execFileSync('mkfifo', [path.join(fifo, 'pipe.bin')]);
  editModelJson(fifo, (json) => {
    json.weightsManifest[0].paths = ['pipe.bin'];
  });
  space.add('model-json', 'report', 'a weights file that is a FIFO', [fifo], { expect: corrupt });
  const linkOut = space.copy(exported, 'link-out');
  symlinkSync('/etc/hostname', path.join(linkOut, 'link.bin'));
  editModelJson(linkOut, (json) => {
    json.weightsManifest[0].paths = ['link.bin'];
  });
  space.add('model-json', 'load-model', 'a weights file that links outside the folder', [linkOut], {
    expect: corrupt,
  });
  const manifestCases: Array<[string, (json: Record<string, any>) => void]> = [
    [
      'a manifest of [null]',
      (json) => {
        json.weightsManifest = [null];
      },
    ],
    [
      'a null weight entry',
      (json) => {
        json.weightsManifest[0].weights[0] = null;
      },
    ],
    [
      'a shape that is not an array',
      (json) => {
        json.weightsManifest[0].weights[0].shape = 7;
      },
    ],
  ];
  for (const [label, edit] of manifestCases) {
    for (const operation of ['report', 'export'] as const) {
      const source = operation === 'export' ? path.join(space.base.run, 'checkpoint') : exported;
      const directory = space.copy(source, 'manifest');
      editModelJson(directory, edit);
      space.add('model-json', operation, `${label} (${operation})`, [directory], {
        expect: operation === 'export' ? ['CHECKPOINT_CORRUPT'] : corrupt,
      });
    }
  }
  const graph = space.directory('graph-model');
  writeFileSync(
    path.join(graph, 'model.json'),
    JSON.stringify({
      format: 'graph-model',
      modelTopology: { node: [{ name: 'x', op: 'Placeholder' }], versions: { producer: 1 } },
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [] }],
    }),
  );
  space.add('model-json', 'load-model', 'a graph-model folder', [graph], { expect: ['CHECKPOINT_MISMATCH'] });
  const deep = space.directory('deep-model-json');
  writeFileSync(path.join(deep, 'model.json'), '['.repeat(20_000_000));
  space.add('model-json', 'report', 'model.json of 20 million nested brackets', [deep], {
    expect: corrupt,
    isolate: true,
  });
  const pipeJson = space.directory('fifo-model-json');
  execFileSync('mkfifo', [path.join(pipeJson, 'model.json')]);
  space.add('model-json', 'report', 'a model.json that is a FIFO', [pipeJson], { expect: corrupt });
}

function randomModelJsonCases(space: Workspace, count: number): void {
  const operations: FuzzOperation[] = ['report', 'load-model', 'export', 'load-checkpoint'];
  for (let index = 0; index < count; index += 1) {
    const operation = space.pick(operations);
    const fromCheckpoint = operation === 'export' || operation === 'load-checkpoint' || space.int(2) === 0;
    const source = path.join(space.base.run, fromCheckpoint ? 'checkpoint' : 'model');
    const directory = space.copy(source, 'random-model-json');
    const kind = space.int(6);
    if (kind <= 2) editModelJson(directory, (json) => mutateJson(space, json), kind === 0);
    else if (kind === 3) {
      const file = path.join(directory, 'model.json');
      writeFileSync(file, mutateText(space, readFileSync(file, 'utf8')));
    } else {
      const file = weightsFile(directory);
      const bytes = readFileSync(file);
      const choice = space.int(3);
      if (choice === 0) writeFileSync(file, bytes.subarray(0, space.int(bytes.length)));
      else if (choice === 1) writeFileSync(file, Buffer.concat([bytes, Buffer.alloc(1 + space.int(64))]));
      else {
        const at = space.int(bytes.length);
        bytes[at] = bytes[at]! ^ (1 << space.int(8));
        writeFileSync(file, bytes);
        if (kind === 5) editModelJson(directory, () => undefined); // without hashes: the values are checked instead
      }
    }
    space.add('model-json', operation, `random model.json/shard mutation ${index} (${operation})`, [
      directory,
    ]);
  }
}

// ---------------------------------------------------------------------------------------------
// checkpoints

async function namedCheckpointCases(space: Workspace): Promise<void> {
  const kernel = 'dense_1/kernel';
  const mask = `fineprune/mask/${kernel}`;
  for (const bad of [Number.NaN, 2, -1, 0.5]) {
    const directory = await resaveCheckpoint(space, 'mask', (tensors) =>
      setEntries(tensors, mask, bad, [3, 17]),
    );
    for (const operation of ['export', 'report'] as const)
      space.add('checkpoint', operation, `a mask holding ${bad} (${operation})`, [directory], {
        expect: ['CHECKPOINT_CORRUPT'],
      });
  }
  const nanWeight = await resaveCheckpoint(space, 'nan-weight', (tensors) =>
    setEntries(tensors, kernel, Number.NaN, [0]),
  );
  space.add('checkpoint', 'export', 'a NaN weight (export)', [nanWeight], { expect: ['CHECKPOINT_CORRUPT'] });
  for (const name of [kernel, 'dense_1/bias']) {
    const directory = await resaveCheckpoint(space, 'int32', (tensors) =>
      setEntries(tensors, name, 'int32', []),
    );
    space.add('checkpoint', 'export', `an int32 weight ${name} (export)`, [directory], {
      expect: ['CHECKPOINT_CORRUPT', 'CHECKPOINT_MISMATCH'],
    });
  }
  const metadataCases: Array<[string, FuzzOperation, (metadata: Record<string, any>) => void]> = [
    [
      'groups: [null]',
      'export',
      (metadata) => {
        metadata.groups = [null];
      },
    ],
    [
      'parameters: null',
      'report',
      (metadata) => {
        metadata.parameters = null;
      },
    ],
    [
      'a negative step',
      'export',
      (metadata) => {
        metadata.step = -5;
      },
    ],
  ];
  for (const [label, operation, edit] of metadataCases) {
    const directory = await resaveCheckpoint(space, 'metadata', (_tensors, metadata) => edit(metadata));
    space.add('checkpoint', operation, `${label} (${operation})`, [directory], {
      expect: ['CHECKPOINT_CORRUPT'],
    });
  }
  const checkpoint = path.join(space.base.run, 'checkpoint');
  const flipped = space.copy(checkpoint, 'flipped');
  const bytes = readFileSync(weightsFile(flipped));
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0x04;
  writeFileSync(weightsFile(flipped), bytes);
  space.add('checkpoint', 'export', 'one flipped byte in the weights (export)', [flipped], {
    expect: ['CHECKPOINT_CORRUPT'],
  });
  for (const [label, edit] of [
    [
      'an edited step',
      (json: Record<string, any>) => {
        json.userDefinedMetadata.fineprune.step += 1;
      },
    ],
    [
      'an edited random state',
      (json: Record<string, any>) => {
        json.userDefinedMetadata.fineprune.random[0] ^= 1;
      },
    ],
  ] as const) {
    const directory = space.copy(checkpoint, 'edited');
    editModelJson(directory, edit, true);
    space.add('checkpoint', 'export', `${label} (export)`, [directory], { expect: ['CHECKPOINT_CORRUPT'] });
  }
  const version1 = space.copy(checkpoint, 'version-1');
  editModelJson(version1, (json) => {
    json.userDefinedMetadata.fineprune.formatVersion = 1;
  });
  space.add('checkpoint', 'export', 'a version-1 checkpoint without hashes (export)', [version1], {
    expect: ['CHECKPOINT_MISMATCH'],
  });
  const own = space.copy(checkpoint, 'export-over-itself');
  space.add('checkpoint', 'export', 'export --out the checkpoint itself', [own, own], {
    expect: ['IO_FAILED'],
  });
}

async function randomCheckpointCases(space: Workspace, count: number): Promise<void> {
  const artifacts = await fileSystem(path.join(space.base.run, 'checkpoint')).load!();
  const names = artifacts.weightSpecs!.map((spec) => spec.name);
  const values = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2, -1, 0.5, 1e30, 0, 1];
  for (let index = 0; index < count; index += 1) {
    const operation = space.pick(['export', 'report', 'load-checkpoint'] as const);
    const directory = await resaveCheckpoint(space, 'random-checkpoint', (tensors, metadata) => {
      if (space.int(3) === 0) {
        const field = space.pick(['step', 'random', 'groups', 'parameters', 'specVersion', 'formatVersion']);
        const list = metadata[field];
        if (space.int(2) === 0 && Array.isArray(list)) list[space.int(list.length + 1)] = strangeValue(space);
        else metadata[field] = strangeValue(space);
      } else {
        const value = space.int(6) === 0 ? 'int32' : space.pick(values);
        setEntries(tensors, space.pick(names), value, [space.int(1000), space.int(1000)]);
      }
    });
    space.add('checkpoint', operation, `random checkpoint mutation ${index} (${operation})`, [directory]);
  }
}

// ---------------------------------------------------------------------------------------------
// safetensors

/** A safetensors file from a header text and data bytes, with the right length field. */
function safetensorsFile(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const text = Buffer.from(header, 'utf8');
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function baseSafetensors(): Uint8Array {
  return encodeSafetensors(
    {
      'fc.weight': { dtype: 'F32', shape: [3, 2], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
      'fc.bias': { dtype: 'F16', shape: [3], data: [0.5, -1, 7] },
      scale: { dtype: 'BF16', shape: [2], data: [1, -1] },
      ids: { dtype: 'I64', shape: [2], data: [3, -4] },
      flags: { dtype: 'BOOL', shape: [3], data: [1, 0, 1] },
    },
    { format: 'pt' },
  );
}

function namedSafetensorsCases(space: Workspace): void {
  const write = (label: string, bytes: Uint8Array | string) => {
    const file = path.join(space.directory(label), 'model.safetensors');
    writeFileSync(file, bytes);
    return file;
  };
  const corrupt = ['CHECKPOINT_CORRUPT'];
  const deep = write('deep', safetensorsFile(`{"a":${'['.repeat(40_000_000)}`));
  space.add('safetensors', 'safetensors', '40 million nested brackets in the header', [deep], {
    expect: corrupt,
    isolate: true,
  });
  const entry = (index: number) => `"t${index}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`;
  const many = write(
    'many',
    safetensorsFile(`{${Array.from({ length: 1_400_000 }, (_, index) => entry(index)).join(',')}}`),
  );
  space.add('safetensors', 'safetensors', '1.4 million tensors', [many], { expect: corrupt, isolate: true });
  const name = write(
    'long-name',
    safetensorsFile(`{"${'n'.repeat(90_000_000)}":{"dtype":"F99","shape":[],"data_offsets":[0,0]}}`),
  );
  space.add('safetensors', 'safetensors', 'a 90 MB tensor name', [name], { expect: corrupt, isolate: true });
  const fifo = path.join(space.directory('fifo'), 'model.safetensors');
  execFileSync('mkfifo', [fifo]);
  space.add('safetensors', 'safetensors', 'a FIFO named as the file', [fifo], { expect: ['IO_FAILED'] });
}

function randomSafetensorsCases(space: Workspace, count: number): void {
  const base = baseSafetensors();
  const dataOffset = readSafetensors(base).dataOffset;
  const headerText = Buffer.from(base.subarray(8, dataOffset)).toString('utf8').trimEnd();
  const data = base.subarray(dataOffset);
  for (let index = 0; index < count; index += 1) {
    let bytes: Uint8Array;
    const kind = space.int(5);
    if (kind <= 1) {
      const header = JSON.parse(headerText);
      mutateJson(space, header);
      bytes = safetensorsFile(JSON.stringify(header), data);
    } else if (kind === 2) {
      bytes = base.slice();
      for (let flips = 1 + space.int(4); flips > 0; flips -= 1) {
        const at = space.int(bytes.length);
        bytes[at] = bytes[at]! ^ (1 << space.int(8));
      }
    } else if (kind === 3) {
      bytes = base.subarray(0, space.int(base.length));
    } else {
      bytes = safetensorsFile(mutateText(space, headerText), data);
    }
    const file = path.join(space.directory('random-safetensors'), 'model.safetensors');
    writeFileSync(file, bytes);
    space.add('safetensors', 'safetensors', `random safetensors mutation ${index}`, [file]);
  }
}

// ---------------------------------------------------------------------------------------------
// IDX (plain and gzip)

/** A big-endian uint8 IDX file. */
function idxFile(dims: number[], values: ArrayLike<number> = []): Uint8Array {
  const header = 4 + 4 * dims.length;
  const bytes = new Uint8Array(header + values.length);
  const view = new DataView(bytes.buffer);
  bytes[2] = 0x08;
  bytes[3] = dims.length;
  for (const [axis, size] of dims.entries()) view.setUint32(4 + 4 * axis, size, false);
  bytes.set(values, header);
  return bytes;
}

/** `head` gzipped, then `megabytes` gzip members of 1 MiB of zeros each (about 1 KiB each on disk). */
function gzipBomb(head: Uint8Array, megabytes: number): Uint8Array {
  const zeros = gzipSync(new Uint8Array(1024 * 1024), { level: 9 });
  return Buffer.concat([gzipSync(head), ...Array.from({ length: megabytes }, () => zeros)]);
}

function idxPair(
  space: Workspace,
  label: string,
  images: Uint8Array | undefined,
  labels?: Uint8Array,
): string[] {
  const directory = space.directory(label);
  const count = 20;
  const imagesPath = path.join(directory, 'images-idx3-ubyte');
  const labelsPath = path.join(directory, 'labels-idx1-ubyte');
  writeFileSync(
    imagesPath,
    images ??
      idxFile(
        [count, 4, 4],
        Uint8Array.from({ length: count * 16 }, (_, i) => i % 251),
      ),
  );
  writeFileSync(
    labelsPath,
    labels ??
      idxFile(
        [count],
        Uint8Array.from({ length: count }, (_, i) => i % 10),
      ),
  );
  return [imagesPath, labelsPath];
}

function namedIdxCases(space: Workspace): void {
  const invalid = ['INVALID_DATA'];
  const bomb = idxPair(space, 'bomb', gzipBomb(idxFile([60000, 28, 28]), 3000));
  space.add('idx', 'idx', 'a 3 MB gzip bomb (MNIST header, 3 GB of zeros)', bomb, {
    expect: invalid,
    isolate: true,
  });
  const huge = idxPair(space, 'bomb-huge-header', gzipBomb(idxFile([0xffffffff, 0xffffffff]), 3000));
  space.add('idx', 'idx', 'a gzip bomb whose header declares 2^64 bytes', huge, {
    expect: invalid,
    isolate: true,
  });
  const zero = idxPair(space, 'dev-zero', undefined);
  symlinkSync('/dev/zero', `${zero[0]}.zero`);
  space.add('idx', 'idx', '/dev/zero as the images file', [`${zero[0]}.zero`, zero[1]!], {
    expect: ['IO_FAILED'],
  });
  const fifo = idxPair(space, 'fifo', undefined);
  execFileSync('mkfifo', [`${fifo[0]}.pipe`]);
  space.add('idx', 'idx', 'a FIFO as the images file', [`${fifo[0]}.pipe`, fifo[1]!], {
    expect: ['IO_FAILED'],
  });
}

function randomIdxCases(space: Workspace, count: number): void {
  const valid = idxPair(space, 'idx-base', undefined).map((file) => readFileSync(file));
  for (let index = 0; index < count; index += 1) {
    const which = space.int(2);
    // A copy: Buffer.prototype.slice would be a view, and the mutations would pile up on the base file.
    let bytes = new Uint8Array(valid[which]!);
    const kind = space.int(5);
    if (kind === 0) {
      new DataView(bytes.buffer, bytes.byteOffset).setUint32(
        4 * (1 + space.int(3)),
        space.pick([0, 1, 2 ** 31, 0xffffffff, space.int(100)]),
        false,
      );
    } else if (kind === 1) {
      bytes[space.int(4)] = space.int(256);
    } else if (kind === 2) {
      bytes =
        space.int(2) === 0
          ? bytes.subarray(0, space.int(bytes.length))
          : Buffer.concat([bytes, Buffer.alloc(1 + space.int(9))]);
    } else {
      bytes[space.int(bytes.length)] = space.int(256);
    }
    const gzip = space.int(2) === 0;
    if (gzip) {
      bytes = new Uint8Array(gzipSync(bytes));
      const damage = space.int(3);
      if (damage === 0) bytes = bytes.subarray(0, space.int(bytes.length));
      else if (damage === 1) {
        const at = 10 + space.int(bytes.length - 10);
        bytes[at] = bytes[at]! ^ (1 << space.int(8));
      }
    }
    const pair = idxPair(
      space,
      'random-idx',
      which === 0 ? bytes : undefined,
      which === 1 ? bytes : undefined,
    );
    space.add('idx', 'idx', `random ${gzip ? 'gzip ' : ''}IDX mutation ${index}`, pair);
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face directories

function editConfig(directory: string, edit: (json: Record<string, any>) => void): void {
  const file = path.join(directory, 'config.json');
  const json = readJson(file);
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

/** Rewrites model.safetensors with one tensor changed by `change`. */
function editWeights(directory: string, change: (tensors: Record<string, SafetensorsInput>) => void): void {
  const file = path.join(directory, 'model.safetensors');
  const parsed = readSafetensors(readFileSync(file));
  const tensors: Record<string, SafetensorsInput> = {};
  for (const [name, tensor] of parsed.tensors) {
    tensors[name] = {
      dtype: 'F32',
      shape: [...tensor.shape],
      data: new Float32Array(tensor.bytes().slice().buffer),
    };
  }
  change(tensors);
  writeFileSync(file, encodeSafetensors(tensors, { format: 'pt' }));
}

function namedHuggingFaceCases(space: Workspace): void {
  const huge = space.copy(space.base.huggingface, 'vocab-2-40');
  editConfig(huge, (json) => {
    json.vocab_size = 2 ** 40;
  });
  space.add('huggingface', 'huggingface', 'config.json with vocab_size 2^40', [huge], {
    expect: ['INVALID_ARGUMENT'],
  });
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
    const directory = space.copy(space.base.huggingface, 'non-finite');
    editWeights(directory, (tensors) => {
      (tensors['bert.encoder.layer.0.attention.self.query.weight']!.data as Float32Array)[1] = bad;
    });
    space.add(
      'huggingface',
      'huggingface',
      `${Number.isNaN(bad) ? 'a NaN' : 'an infinite'} weight in the Hugging Face file`,
      [directory],
      {
        expect: ['CHECKPOINT_CORRUPT'],
      },
    );
  }
}

function randomHuggingFaceCases(space: Workspace, count: number): void {
  const keys = [
    'vocab_size',
    'hidden_size',
    'num_hidden_layers',
    'num_attention_heads',
    'intermediate_size',
    'max_position_embeddings',
    'type_vocab_size',
    'architectures',
    'id2label',
    'num_labels',
    'hidden_act',
    'layer_norm_eps',
  ];
  const sizes = [0, -1, 1.5, 3, 2 ** 31, 2 ** 40, 1e9, Number.MAX_SAFE_INTEGER, '768', null];
  for (let index = 0; index < count; index += 1) {
    const directory = space.copy(space.base.huggingface, 'random-huggingface');
    const kind = space.int(3);
    if (kind === 0)
      editConfig(directory, (json) => {
        json[space.pick(keys)] = space.pick(sizes);
      });
    else if (kind === 1)
      editWeights(directory, (tensors) => {
        const name = space.pick(Object.keys(tensors));
        if (space.int(2) === 0)
          (tensors[name]!.data as Float32Array)[0] = space.pick([Number.NaN, Number.NEGATIVE_INFINITY, 1e30]);
        else delete tensors[name];
      });
    else editConfig(directory, (json) => mutateJson(space, json));
    space.add('huggingface', 'huggingface', `random Hugging Face mutation ${index}`, [directory]);
  }
}

// ---------------------------------------------------------------------------------------------
// compact sparse exports (fineprune export --format sparse; @fineprune/sparse reads them)

/** A compact export's header (its hashes left out) and data, to edit and seal again. */
function compactParts(bytes: Uint8Array): { header: Record<string, any>; data: Uint8Array } {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  delete header.integrity;
  return { header, data: bytes.slice(12 + length) };
}

/** The bytes of a compact export with a hand-made header text (no hashes, unchecked). */
function compactWithHeaderText(text: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const header = Buffer.from(text);
  const preamble = Buffer.alloc(12);
  preamble.write('FPSPARSE', 0, 'ascii');
  preamble.writeUInt32LE(header.length, 8);
  return Buffer.concat([preamble, header, data]);
}

/** The compact exports (float32 and int8) of the base run's checkpoint. */
async function baseCompactFiles(space: Workspace): Promise<Uint8Array[]> {
  const files: Uint8Array[] = [];
  for (const values of ['float32', 'int8'] as const) {
    const directory = space.directory(`compact-${values}`);
    await exportCheckpoint(path.join(space.base.run, 'checkpoint'), directory, { format: 'sparse', values });
    files.push(new Uint8Array(readFileSync(path.join(directory, COMPACT_FILE))));
  }
  return files;
}

function writeCompact(space: Workspace, label: string, bytes: Uint8Array): string {
  const file = path.join(space.directory(label), COMPACT_FILE);
  writeFileSync(file, bytes);
  return file;
}

async function namedCompactCases(space: Workspace, base: readonly Uint8Array[]): Promise<void> {
  const corrupt = ['CHECKPOINT_CORRUPT'];
  const both = (
    label: string,
    bytes: Uint8Array,
    expect: string[],
    extra: Partial<FuzzCase> = {},
    operations: FuzzOperation[] = ['report', 'load-compact'],
  ) => {
    const file = writeCompact(space, 'named', bytes);
    for (const operation of operations)
      space.add('compact', operation, `${label} (${operation})`, [file], { expect, ...extra });
  };
  const [float32, int8] = base as [Uint8Array, Uint8Array];
  const huge = float32.slice();
  new DataView(huge.buffer).setUint32(8, 0xffffffff, true);
  both('a header length of 4 GiB', huge, corrupt);
  both(
    'a header of 20 million nested brackets',
    compactWithHeaderText(`{"a":${'['.repeat(20_000_000)}`),
    corrupt,
    {
      isolate: true,
    },
  );
  const entry = (index: number) =>
    `{"name":"t${index}","shape":[0],"layout":"vector","values":"float32","offset":0,"byteLength":0}`;
  both(
    'a header listing 1.4 million tensors',
    compactWithHeaderText(
      `{"format":"fineprune-sparse","formatVersion":1,"model":{"kind":"tensors"},"dataBytes":0,"tensors":[${Array.from({ length: 1_400_000 }, (_, index) => entry(index)).join(',')}]}`,
    ),
    corrupt,
    { isolate: true },
  );
  both(
    'a 90 MB tensor name',
    compactWithHeaderText(
      `{"format":"fineprune-sparse","formatVersion":1,"model":{"kind":"tensors"},"tensors":[{"name":"${'n'.repeat(90_000_000)}"}]}`,
    ),
    corrupt,
    { isolate: true },
  );
  // 2^29 entries (2 GiB as float32: 2 channels of 2^28) declared in two bytes of data, sealed: the
  // report reads what is stored and succeeds; the loaders refuse it above their densified-size
  // limit (256 MiB here).
  const { header } = compactParts(float32);
  const bomb = await assembleCompactModel(
    {
      ...header,
      model: { kind: 'tensors' },
      tensors: [
        {
          name: 'bomb',
          shape: [2, 2 ** 28],
          layout: 'delta',
          values: 'float32',
          channelAxis: 0,
          nonzeros: 0,
          indexBytes: 2,
          offset: 0,
          byteLength: 2,
        },
      ],
      dataBytes: 2,
    } as never,
    new Uint8Array(2),
  );
  const bombFile = writeCompact(space, 'bomb', bomb);
  space.add('compact', 'report', '2^29 entries declared in two bytes (report)', [bombFile], {
    expect: ['OK'],
  });
  space.add('compact', 'load-compact', '2^29 entries declared in two bytes (load-compact)', [bombFile], {
    expect: corrupt,
  });
  const flipped = int8.slice();
  flipped[flipped.length - 5]! ^= 0x10;
  both('one flipped byte in the data', flipped, corrupt);
  const sealedEdit = async (
    label: string,
    edit: (parts: ReturnType<typeof compactParts>) => void,
    expect: string[],
    operations?: FuzzOperation[],
  ) => {
    const parts = compactParts(int8);
    edit(parts);
    both(label, await assembleCompactModel(parts.header as never, parts.data), expect, {}, operations);
  };
  await sealedEdit(
    'an int8 scale of Infinity, sealed',
    ({ header, data }) => {
      new DataView(data.buffer).setFloat32(
        header.tensors[0].offset + header.tensors[0].byteLength - 4 * 16 - header.tensors[0].nonzeros,
        Number.POSITIVE_INFINITY,
        true,
      );
    },
    corrupt,
  );
  await sealedEdit(
    'a bias that does not fit the topology, sealed',
    ({ header }) => {
      header.tensors[1].shape = [8, 2];
    },
    ['CHECKPOINT_MISMATCH'],
    ['load-compact'], // the report reads tensors, not the topology: it succeeds
  );
  const fifo = path.join(space.directory('fifo'), COMPACT_FILE);
  execFileSync('mkfifo', [fifo]);
  space.add('compact', 'report', 'a FIFO named as the file (report)', [fifo], { expect: corrupt });
  const zero = path.join(space.directory('zero'), COMPACT_FILE);
  symlinkSync('/dev/zero', zero);
  space.add('compact', 'load-compact', '/dev/zero as the file (load-compact)', [zero], { expect: corrupt });
}

function randomCompactCases(space: Workspace, base: readonly Uint8Array[], count: number): Promise<void>[] {
  const jobs: Promise<void>[] = [];
  for (let index = 0; index < count; index += 1) {
    const source = space.pick(base);
    const operation = space.pick(['report', 'load-compact'] as const);
    const kind = space.int(4);
    const label = `random compact mutation ${index} (${operation})`;
    if (kind === 0) {
      // The header changed and sealed again: the structure checks must hold.
      const parts = compactParts(source);
      mutateJson(space, parts.header);
      jobs.push(
        assembleCompactModel(parts.header as never, parts.data).then((bytes) => {
          space.add('compact', operation, label, [writeCompact(space, 'random', bytes)]);
        }),
      );
    } else if (kind === 1) {
      // Data bytes changed and sealed again: the decoders must hold.
      const parts = compactParts(source);
      for (let flips = 1 + space.int(8); flips > 0; flips -= 1)
        parts.data[space.int(parts.data.length)] = space.int(256);
      jobs.push(
        assembleCompactModel(parts.header as never, parts.data).then((bytes) => {
          space.add('compact', operation, label, [writeCompact(space, 'random', bytes)]);
        }),
      );
    } else if (kind === 2) {
      const bytes = source.slice();
      bytes[space.int(bytes.length)] = space.int(256);
      space.add('compact', operation, label, [writeCompact(space, 'random', bytes)]);
    } else {
      space.add('compact', operation, label, [
        writeCompact(space, 'random', source.slice(0, space.int(source.length))),
      ]);
    }
  }
  return jobs;
}

// ---------------------------------------------------------------------------------------------
// recipes (the in-process fuzz of @fineprune/recipes runs 10,000 more; these run under the memory cap)

function namedRecipeCases(space: Workspace): void {
  const recipe = readFileSync(space.base.recipe, 'utf8');
  const write = (label: string, text: string) => {
    const file = path.join(space.directory(label), 'recipe.yaml');
    writeFileSync(file, text);
    return file;
  };
  // Each level repeats the one before nine times: 9^12 ≈ 2.8e11 values if expanded.
  const levels = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let level = 1; level <= 12; level += 1)
    levels.push(
      `a${level}: &a${level} [${Array(9)
        .fill(`*a${level - 1}`)
        .join(', ')}]`,
    );
  const alias = `${levels.join('\n')}\n${recipe}`;
  const cases: Array<[string, string]> = [
    ['a YAML alias bomb', alias],
    ['nesting 100,000 levels deep', `${recipe}\nextra: ${'['.repeat(100_000)}`],
    ['a 20 MB recipe', `${recipe}\n# ${'x'.repeat(20_000_000)}\n`],
  ];
  for (const [label, text] of cases)
    space.add('recipe', 'validate', label, [write('recipe', text)], {
      expect: ['INVALID_RECIPE', 'IO_FAILED'],
    });
}

// ---------------------------------------------------------------------------------------------
// recipe data sources: text files (CSV, JSONL) and image folders (PNG, JPEG)

const BASE_CSV = `text,label\n${Array.from({ length: 12 }, (_, index) => `"message ${index}, with a comma",${index % 2 ? 'spam' : 'ham'}`).join('\n')}\n`;
const BASE_JSONL = `${Array.from({ length: 12 }, (_, index) => JSON.stringify({ text: `message ${index}`, label: index % 2 ? 'spam' : 'ham' })).join('\n')}\n`;

function writeDataFile(space: Workspace, label: string, name: string, bytes: string | Uint8Array): string {
  const file = path.join(space.directory(label), name);
  writeFileSync(file, bytes);
  return file;
}

/** A grey 4 × 4 PNG of one value. */
function greyPng(value: number): Uint8Array {
  const image = new PNG({ width: 4, height: 4 });
  for (let pixel = 0; pixel < 16; pixel += 1) image.data.set([value, value, value, 255], pixel * 4);
  return new Uint8Array(PNG.sync.write(image));
}

/** An image folder of two classes of 4 × 4 PNGs, with `extra` written into class `a`. */
function imageFolder(
  space: Workspace,
  label: string,
  extra: Record<string, Uint8Array | string> = {},
): string {
  const root = space.directory(label);
  for (const [name, value] of [
    ['a', 40],
    ['b', 200],
  ] as const) {
    mkdirSync(path.join(root, name));
    for (let index = 0; index < 3; index += 1)
      writeFileSync(path.join(root, name, `${index}.png`), greyPng(value + index));
  }
  for (const [name, bytes] of Object.entries(extra)) writeFileSync(path.join(root, 'a', name), bytes);
  return root;
}

/** A PNG whose header says 4 × 4 but whose image data inflates to `megabytes` of zeros. */
function pngInflateBomb(megabytes: number): Uint8Array {
  const png = Buffer.from(greyPng(0));
  const idat = png.indexOf('IDAT') - 4;
  const length = png.readUInt32BE(idat);
  const data = deflateSync(Buffer.alloc(megabytes * 1024 * 1024));
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write('IDAT', 4, 'latin1');
  data.copy(chunk, 8);
  // The CRC is left zero: a reader must refuse the file on its size or its CRC, not inflate it whole.
  return new Uint8Array(Buffer.concat([png.subarray(0, idat), chunk, png.subarray(idat + 12 + length)]));
}

function namedDataCases(space: Workspace): void {
  const invalid = ['INVALID_DATA'];
  const huge = path.join(space.directory('huge-line'), 'train.jsonl');
  writeFileSync(huge, `${BASE_JSONL}{"text": "${'x'.repeat(100 * 1024 * 1024)}", "label": "ham"}\n`);
  space.add('text-data', 'text-data', 'a single 100 MB line in a JSONL file', [huge], {
    expect: invalid,
    isolate: true,
  });
  const open = path.join(space.directory('open-quote'), 'train.csv');
  writeFileSync(open, `${BASE_CSV}"${'y,\n'.repeat(4 * 1024 * 1024)}`);
  space.add('text-data', 'text-data', 'a CSV quote never closed over 12 MB of lines', [open], {
    expect: invalid,
    isolate: true,
  });
  const labels = `${Array.from({ length: 5000 }, (_, index) => JSON.stringify({ text: 'x', label: `label ${index}` })).join('\n')}\n`;
  space.add(
    'text-data',
    'text-data',
    '5,000 distinct labels',
    [writeDataFile(space, 'labels', 'train.jsonl', labels)],
    { expect: invalid },
  );
  space.add('text-data', 'text-data', 'an empty file', [writeDataFile(space, 'empty', 'train.csv', '')], {
    expect: invalid,
  });
  const zero = path.join(space.directory('dev-zero'), 'train.jsonl');
  symlinkSync('/dev/zero', zero);
  space.add('text-data', 'text-data', '/dev/zero as the data file', [zero], { expect: ['IO_FAILED'] });
  const fifo = path.join(space.directory('fifo'), 'train.csv');
  execFileSync('mkfifo', [fifo]);
  space.add('text-data', 'text-data', 'a FIFO as the data file', [fifo], { expect: ['IO_FAILED'] });

  space.add(
    'image-folder',
    'image-folder',
    'a text file among the images',
    [imageFolder(space, 'text', { 'notes.txt': 'hello' })],
    { expect: invalid },
  );
  const wide = Buffer.from(greyPng(1));
  wide.writeUInt32BE(0x7fffffff, 16);
  space.add(
    'image-folder',
    'image-folder',
    'a PNG declaring 2^31 − 1 pixels of width',
    [imageFolder(space, 'wide', { 'wide.png': wide })],
    { expect: invalid },
  );
  space.add(
    'image-folder',
    'image-folder',
    'a 4 × 4 PNG whose data inflates to 512 MB',
    [imageFolder(space, 'bomb', { 'bomb.png': pngInflateBomb(512) })],
    {
      expect: invalid,
      isolate: true,
    },
  );
  const linked = imageFolder(space, 'link');
  symlinkSync('/dev/zero', path.join(linked, 'a', 'zero.png'));
  space.add('image-folder', 'image-folder', '/dev/zero linked into a class folder', [linked], {
    expect: invalid,
  });
  const piped = imageFolder(space, 'fifo-image');
  execFileSync('mkfifo', [path.join(piped, 'a', 'pipe.png')]);
  space.add('image-folder', 'image-folder', 'a FIFO in a class folder', [piped], { expect: invalid });
}

function randomDataCases(space: Workspace, count: number): void {
  for (let index = 0; index < count; index += 1) {
    const csv = space.int(2) === 0;
    const text = mutateText(space, csv ? BASE_CSV : BASE_JSONL);
    space.add('text-data', 'text-data', `random ${csv ? 'CSV' : 'JSONL'} mutation ${index}`, [
      writeDataFile(space, 'random-text', csv ? 'train.csv' : 'train.jsonl', text),
    ]);
  }
  const base = greyPng(90);
  for (let index = 0; index < count; index += 1) {
    let bytes = new Uint8Array(base);
    if (space.int(3) === 0) bytes = bytes.subarray(0, space.int(bytes.length));
    else
      for (let flips = 1 + space.int(4); flips > 0; flips -= 1) {
        const at = space.int(bytes.length);
        bytes[at] = space.int(256);
      }
    space.add('image-folder', 'image-folder', `random PNG mutation ${index}`, [
      imageFolder(space, 'random-image', { 'mutated.png': bytes }),
    ]);
  }
}

/** Every case: the named ones, then `perFormat` random mutations of each format (fewer for the slow ones). */
export async function buildCases(
  root: string,
  base: BaseFiles,
  random: RandomSource,
  perFormat: number,
): Promise<FuzzCase[]> {
  const space = new Workspace(root, base, random);
  namedModelJsonCases(space);
  await namedCheckpointCases(space);
  namedSafetensorsCases(space);
  namedIdxCases(space);
  namedHuggingFaceCases(space);
  namedRecipeCases(space);
  namedDataCases(space);
  randomModelJsonCases(space, perFormat);
  await randomCheckpointCases(space, perFormat);
  randomSafetensorsCases(space, perFormat);
  randomIdxCases(space, perFormat);
  randomHuggingFaceCases(space, Math.ceil(perFormat / 2));
  randomDataCases(space, perFormat);
  const compact = await baseCompactFiles(space);
  await namedCompactCases(space, compact);
  await Promise.all(randomCompactCases(space, compact, perFormat));
  return space.cases;
}
