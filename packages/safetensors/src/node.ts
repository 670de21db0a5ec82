/**
 * Node.js file layer of `@fineprune/safetensors`, published as `@fineprune/safetensors/node` so
 * that browser bundles of the main entry never see `node:fs`.
 */

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { readRegularFile } from '@fineprune/tensor/untrusted';
import { invalid } from './dtypes';
import { planSafetensorsStream, type StreamedTensor } from './encode';
import { type ReadSafetensorsOptions, readSafetensors, type SafetensorsFile } from './read';

function checkPath(file: unknown, caller: string): asserts file is string {
  if (typeof file !== 'string' || file.length === 0) {
    throw invalid(
      `${caller}() needs a file path, got ${JSON.stringify(file)}.`,
      "Pass a path such as './model.safetensors'.",
    );
  }
}

/** The most bytes one file read may return in Node.js (buffer.constants.MAX_LENGTH is 2^31 − 1 or more). */
const MAX_FILE_BYTES = 2 ** 31 - 1;

function ioFailed(message: string, fix: string, cause: unknown, file: string): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.IO_FAILED, message, fix, cause, details: { path: file } });
}

/**
 * Reads and checks a safetensors file (the whole file is read into memory, then parsed by
 * {@link readSafetensors}; tensors are views of that buffer).
 *
 * @param file - the path
 * @param options - `maxHeaderBytes` (default 100 MiB)
 * @returns the parsed file
 * @throws FinepruneError `IO_FAILED` when the file cannot be read (missing, a directory, over
 *   2 GiB), `CHECKPOINT_CORRUPT` (message prefixed with the path) when it is malformed
 *
 * @example
 * ```ts
 * import { readSafetensorsFile } from '@fineprune/safetensors/node';
 * const file = await readSafetensorsFile('./model.safetensors');
 * console.log([...file.tensors.keys()]);
 * ```
 */
export async function readSafetensorsFile(
  file: string,
  options: ReadSafetensorsOptions = {},
): Promise<SafetensorsFile> {
  checkPath(file, 'readSafetensorsFile');
  const bytes = await readRegularFile(file, {
    maxBytes: MAX_FILE_BYTES,
    what: 'the safetensors file',
    fix: 'Check the path and that it is a readable .safetensors file of at most 2 GiB (save larger weights in shards).',
  });
  try {
    return readSafetensors(bytes, options);
  } catch (error) {
    if (!FinepruneError.is(error)) throw error;
    // FinepruneError's message is "[CODE] <message> Fix: <fix>"; keep <message> and name the file.
    const inner = error.message.slice(`[${error.code}] `.length, -` Fix: ${error.fix}`.length);
    throw new FinepruneError({
      code: error.code,
      message: `${file}: ${inner}`,
      fix: error.fix,
      cause: error,
      details: { ...error.details, path: file },
    });
  }
}

/** Flushes a directory entry change (a rename) where the platform allows it. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(directory, 'r');
    await handle.sync();
  } catch {
    // Directories cannot be opened or synced on some platforms (Windows); the rename is still atomic.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Writes a safetensors file atomically: the bytes go to a new temporary file in the same directory
 * (`.<name>.<pid>-<random>.tmp`), which is flushed to disk (fsync), given the old file's permissions,
 * and renamed over `file`; then the directory is flushed. If anything fails, the temporary file is
 * removed and the previous `file` is left as it was. The bytes are checked with
 * {@link readSafetensors} first, so a malformed file is never written.
 *
 * @param file - the path to write (its directory must exist)
 * @param bytes - a whole safetensors file, for example from `encodeSafetensors()`
 * @throws FinepruneError `CHECKPOINT_CORRUPT` when `bytes` is not a valid safetensors file,
 *   `IO_FAILED` (naming the step that failed) when writing fails
 *
 * @example
 * ```ts
 * import { encodeSafetensors } from '@fineprune/safetensors';
 * import { writeSafetensorsFile } from '@fineprune/safetensors/node';
 * await writeSafetensorsFile(
 *   './model.safetensors',
 *   encodeSafetensors({ bias: { dtype: 'F32', shape: [2], data: new Float32Array([0.5, -1]) } }),
 * );
 * ```
 */
export async function writeSafetensorsFile(file: string, bytes: Uint8Array): Promise<void> {
  checkPath(file, 'writeSafetensorsFile');
  if (!(bytes instanceof Uint8Array)) {
    throw invalid(
      'writeSafetensorsFile() needs the file contents as a Uint8Array.',
      'Pass the result of encodeSafetensors() or safetensorsFromTensors().',
    );
  }
  readSafetensors(bytes, {
    maxHeaderBytes: Number.MAX_SAFE_INTEGER,
    maxTensors: Number.MAX_SAFE_INTEGER,
    maxMetadataEntries: Number.MAX_SAFE_INTEGER,
  });
  await writeAtomically(file, async (handle) => {
    await handle.writeFile(bytes);
  });
}

/**
 * Writes `file` atomically: `write` fills a new temporary file in the same directory
 * (`.<name>.<pid>-<random>.tmp`), which is flushed (fsync), given the old file's permissions and
 * renamed over `file`; then the directory is flushed. On any failure the temporary file is removed
 * and the previous `file` is left as it was.
 */
async function writeAtomically(
  file: string,
  write: (handle: fs.promises.FileHandle) => Promise<void>,
): Promise<void> {
  const directory = path.dirname(file);
  const random = Math.floor(Math.random() * 36 ** 6).toString(36);
  const temporary = path.join(directory, `.${path.basename(file)}.${process.pid}-${random}.tmp`);
  let step = `create ${temporary}`;
  let created = false;
  try {
    const handle = await fs.promises.open(temporary, 'wx');
    created = true;
    try {
      step = `write ${temporary}`;
      await write(handle);
      step = `flush ${temporary}`;
      await handle.sync();
    } finally {
      await handle.close();
    }
    const previous = await fs.promises.stat(file).catch(() => undefined);
    if (previous?.isFile()) {
      step = `copy the permissions of ${file}`;
      await fs.promises.chmod(temporary, previous.mode & 0o7777);
    }
    step = `rename ${temporary} to ${file}`;
    await fs.promises.rename(temporary, file);
  } catch (error) {
    if (created) await fs.promises.rm(temporary, { force: true }).catch(() => undefined);
    if (FinepruneError.is(error)) throw error;
    throw ioFailed(
      `Writing the safetensors file ${file} failed (${step}): ${(error as Error).message}`,
      'Check that the directory exists and is writable, that the path is not a directory and that the disk has space; any previous file is unchanged.',
      error,
      file,
    );
  }
  await syncDirectory(directory);
}

/**
 * Writes a safetensors file without holding it in memory: the header first, then each tensor's
 * bytes as its `values()` delivers them, so that only one tensor's values and bytes exist at a time
 * (a 2.5 GB training checkpoint costs the memory of its largest tensor, not 2.5 GB). The bytes are
 * those of `encodeSafetensors()` for the same tensors and metadata, and the write is atomic as in
 * {@link writeSafetensorsFile}: a temporary file, flushed, renamed over `file`; on any failure
 * (a `values()` that throws, a value the dtype cannot store, a full disk) the temporary file is
 * removed and the previous `file` is unchanged. Returns the size and SHA-256 of what was written.
 *
 * @param file - the path to write (its directory must exist)
 * @param tensors - tensor name → `{ dtype, shape, values }`
 * @param metadata - optional `__metadata__` strings
 * @returns `bytes` (the file's size) and `sha256` (hex)
 * @throws FinepruneError `INVALID_ARGUMENT` or `SHAPE_MISMATCH` for tensors `encodeSafetensors()`
 *   refuses (before anything is written, for names, dtypes and shapes), `IO_FAILED` when writing fails
 *
 * @example
 * ```ts
 * import { writeSafetensorsFileStreamed } from '@fineprune/safetensors/node';
 * const { bytes, sha256 } = await writeSafetensorsFileStreamed('./model.safetensors', {
 *   'fc.weight': { dtype: 'F32', shape: [2, 2], values: async () => new Float32Array([1, 2, 3, 4]) },
 * });
 * ```
 */
export async function writeSafetensorsFileStreamed(
  file: string,
  tensors: Record<string, StreamedTensor>,
  metadata?: Record<string, string>,
): Promise<{ bytes: number; sha256: string }> {
  checkPath(file, 'writeSafetensorsFileStreamed');
  const plan = planSafetensorsStream(tensors, metadata);
  const hash = createHash('sha256');
  await writeAtomically(file, async (handle) => {
    hash.update(plan.header);
    await handle.write(plan.header);
    for (const tensor of plan.tensors) {
      const bytes = await tensor.encode();
      hash.update(bytes);
      await handle.writeFile(bytes);
    }
  });
  return { bytes: plan.total, sha256: hash.digest('hex') };
}
