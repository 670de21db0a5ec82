import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FinepruneError } from '@fineprune/tensor';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decodeFloat32 } from './decode';
import { encodeSafetensors, type StreamedTensor } from './encode';
import { createHash } from 'node:crypto';
import { readSafetensorsFile, writeSafetensorsFile, writeSafetensorsFileStreamed } from './node';

async function rejection(promise: Promise<unknown>): Promise<FinepruneError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!FinepruneError.is(error)) throw new Error(`expected a FinepruneError, got ${String(error)}`);
  return error;
}

const first = encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: [1, 2] } }, { version: '1' });
const second = encodeSafetensors({ w: { dtype: 'F32', shape: [3], data: [3, 4, 5] } }, { version: '2' });

describe('Node file layer', () => {
  let directory: string;
  let target: string;

  beforeEach(async () => {
    directory = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'fineprune-safetensors-'));
    target = path.join(directory, 'model.safetensors');
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    await fs.promises.rm(directory, { recursive: true, force: true });
  });

  /** The directory's entries other than `keep`: temporary files left behind. */
  async function leftovers(...keep: string[]): Promise<string[]> {
    return (await fs.promises.readdir(directory)).filter((name) => !keep.includes(name));
  }

  it('writes, reads back and overwrites', async () => {
    await writeSafetensorsFile(target, first);
    let file = await readSafetensorsFile(target);
    expect(file.metadata).toEqual({ version: '1' });
    expect(Array.from(decodeFloat32(file.tensors.get('w')!))).toEqual([1, 2]);
    await writeSafetensorsFile(target, second);
    file = await readSafetensorsFile(target);
    expect(Array.from(decodeFloat32(file.tensors.get('w')!))).toEqual([3, 4, 5]);
    expect(await leftovers('model.safetensors')).toEqual([]);
  });

  it('keeps the permissions of the file it replaces', async () => {
    await writeSafetensorsFile(target, first);
    await fs.promises.chmod(target, 0o640);
    await writeSafetensorsFile(target, second);
    expect((await fs.promises.stat(target)).mode & 0o777).toBe(0o640);
  });

  it('leaves the previous file intact when the rename fails midway', async () => {
    await writeSafetensorsFile(target, first);
    const rename = vi.spyOn(fs.promises, 'rename').mockRejectedValueOnce(new Error('simulated crash'));
    const error = await rejection(writeSafetensorsFile(target, second));
    expect(rename).toHaveBeenCalledTimes(1);
    expect(error.code).toBe('IO_FAILED');
    expect(error.message).toMatch(/\(rename .*\.tmp to .*model\.safetensors\): simulated crash/);
    expect(new Uint8Array(await fs.promises.readFile(target))).toEqual(first);
    expect(await leftovers('model.safetensors')).toEqual([]);
  });

  it('leaves the previous file intact when the write fails midway', async () => {
    await writeSafetensorsFile(target, first);
    const open = fs.promises.open.bind(fs.promises);
    vi.spyOn(fs.promises, 'open').mockImplementationOnce(async (...args: Parameters<typeof open>) => {
      const handle = await open(...args);
      vi.spyOn(handle, 'sync').mockRejectedValueOnce(new Error('disk full'));
      return handle;
    });
    const error = await rejection(writeSafetensorsFile(target, second));
    expect(error.message).toMatch(/\(flush .*\.tmp\): disk full/);
    expect(new Uint8Array(await fs.promises.readFile(target))).toEqual(first);
    expect(await leftovers('model.safetensors')).toEqual([]);
  });

  it('fails cleanly when the target is a directory or the directory is missing', async () => {
    const occupied = path.join(directory, 'occupied');
    await fs.promises.mkdir(occupied);
    await fs.promises.writeFile(path.join(occupied, 'keep.txt'), 'kept');
    const error = await rejection(writeSafetensorsFile(occupied, first));
    expect(error.code).toBe('IO_FAILED');
    expect(error.message).toMatch(/\(rename /);
    expect(await fs.promises.readFile(path.join(occupied, 'keep.txt'), 'utf8')).toBe('kept');
    expect(await leftovers('occupied')).toEqual([]);

    const missing = await rejection(
      writeSafetensorsFile(path.join(directory, 'no', 'such', 'x.safetensors'), first),
    );
    expect(missing.code).toBe('IO_FAILED');
    expect(missing.message).toMatch(/\(create .*\): ENOENT/);
    expect(await leftovers('occupied')).toEqual([]);
  });

  it('refuses to write bytes that are not a valid safetensors file', async () => {
    await writeSafetensorsFile(target, first);
    const error = await rejection(writeSafetensorsFile(target, first.subarray(0, first.byteLength - 1)));
    expect(error.code).toBe('CHECKPOINT_CORRUPT');
    expect(new Uint8Array(await fs.promises.readFile(target))).toEqual(first);
    expect((await rejection(writeSafetensorsFile(target, 'text' as never))).code).toBe('INVALID_ARGUMENT');
    expect((await rejection(writeSafetensorsFile('', first))).code).toBe('INVALID_ARGUMENT');
  });

  it('reports unreadable and corrupt files with their path', async () => {
    const missing = await rejection(readSafetensorsFile(path.join(directory, 'absent.safetensors')));
    expect(missing.code).toBe('IO_FAILED');
    expect(missing.message).toMatch(/absent\.safetensors: ENOENT/);
    expect((await rejection(readSafetensorsFile(directory))).code).toBe('IO_FAILED');
    await fs.promises.writeFile(target, first.subarray(0, first.byteLength - 2));
    const corrupt = await rejection(readSafetensorsFile(target));
    expect(corrupt.code).toBe('CHECKPOINT_CORRUPT');
    expect(corrupt.message).toBe(
      `[CHECKPOINT_CORRUPT] ${target}: Tensor "w" of the safetensors header ends at data offset 8, past the end of the data buffer (6 bytes): the file is truncated. Fix: ${corrupt.fix}`,
    );
    expect(corrupt.details?.path).toBe(target);
  });

  it('refuses a FIFO or a device at once instead of hanging or reading without end', async () => {
    const fifo = path.join(directory, 'pipe.safetensors');
    execFileSync('mkfifo', [fifo]);
    for (const file of [fifo, '/dev/zero', directory]) {
      const error = await rejection(readSafetensorsFile(file));
      expect(error.code, file).toBe('IO_FAILED');
      expect(error.message, file).toContain('is not a regular file');
    }
  });

  describe('writeSafetensorsFileStreamed', () => {
    const inputs = {
      'encoder.weight': { dtype: 'F32', shape: [3, 2], data: new Float32Array([1, -2.5, 3, 4, 5e-8, 6]) },
      'encoder.half': { dtype: 'F16', shape: [2], data: [0.1, 70000] },
      ids: { dtype: 'I32', shape: [3], data: new Int32Array([7, -8, 9]) },
      '10': { dtype: 'U8', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) },
      empty: { dtype: 'F32', shape: [0], data: new Float32Array(0) },
    } as const;
    const streamed = (overrides: Record<string, () => unknown> = {}) =>
      Object.fromEntries(
        Object.entries(inputs).map(([name, { dtype, shape, data }]) => [
          name,
          { dtype, shape, values: overrides[name] ?? (async () => data) },
        ]),
      ) as Record<string, StreamedTensor>;

    it('writes the bytes encodeSafetensors gives, tensor by tensor, and returns their size and SHA-256', async () => {
      const asked: string[] = [];
      const sources = streamed(
        Object.fromEntries(
          Object.keys(inputs).map((name) => [
            name,
            () => {
              asked.push(name);
              return (inputs as Record<string, { data: unknown }>)[name]!.data;
            },
          ]),
        ),
      );
      // F16 70000 overflows: the streamed writer refuses it as encodeSafetensors does by default.
      expect((await rejection(writeSafetensorsFileStreamed(target, sources, { format: 'pt' }))).code).toBe(
        'INVALID_ARGUMENT',
      );
      const fitting = { ...inputs, 'encoder.half': { dtype: 'F16', shape: [2], data: [0.1, 65504] } };
      const bytes = encodeSafetensors(fitting as never, { format: 'pt' });
      const result = await writeSafetensorsFileStreamed(
        target,
        { ...sources, 'encoder.half': { dtype: 'F16', shape: [2], values: () => [0.1, 65504] } } as never,
        { format: 'pt' },
      );
      expect(new Uint8Array(fs.readFileSync(target))).toEqual(bytes);
      expect(result).toEqual({
        bytes: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
      // Each tensor's values were asked for once per write, in data order (larger elements first).
      expect(asked.slice(-4)).toEqual(['empty', 'encoder.weight', 'ids', '10']);
      expect(await leftovers('model.safetensors')).toEqual([]);
    });

    it('leaves the previous file as it was when a tensor fails mid-way', async () => {
      await writeSafetensorsFile(target, first);
      const failing = streamed({
        ids: () => {
          throw new Error('disk of values gone');
        },
      });
      await expect(writeSafetensorsFileStreamed(target, failing)).rejects.toThrow(/disk of values gone/);
      const short = streamed({ ids: async () => new Int32Array(2) });
      expect((await rejection(writeSafetensorsFileStreamed(target, short))).code).toBe('SHAPE_MISMATCH');
      expect(new Uint8Array(fs.readFileSync(target))).toEqual(first);
      expect(await leftovers('model.safetensors')).toEqual([]);
    });

    it('refuses a bad shape before creating any file', async () => {
      const bad = { w: { dtype: 'F32', shape: [2, -1], values: () => new Float32Array(0) } } as never;
      expect((await rejection(writeSafetensorsFileStreamed(target, bad))).code).toBe('INVALID_ARGUMENT');
      expect(await leftovers()).toEqual([]);
    });
  });
});
