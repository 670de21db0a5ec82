import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { ErrorCodes } from '@fineprune/core';
import { dataError } from './data-errors';

/**
 * The size and modification time of a data file when it was read through, so that reading parts
 * of it again later can tell that it changed in between.
 *
 * @example
 * ```ts
 * const stamp: FileStamp = { size: 1024, mtimeMs: 1700000000000 };
 * ```
 */
export interface FileStamp {
  size: number;
  mtimeMs: number;
}

/** A byte range of a file and the line it starts on (for messages). */
export interface FileRange {
  start: number;
  end: number;
  line?: number;
}

/**
 * Opens a regular file for reading, synchronously (batches are made inside a synchronous training
 * step), without blocking on a FIFO, and calls `use` with its descriptor and size.
 */
function withRegularFile<T>(
  file: string,
  fix: string,
  use: (descriptor: number, stats: { size: number; mtimeMs: number }) => T,
): T {
  let descriptor: number;
  try {
    descriptor = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw dataError({ file }, `cannot be read: ${(error as Error).message}`, fix, {
      code: ErrorCodes.IO_FAILED,
      cause: error,
    });
  }
  try {
    const stats = fstatSync(descriptor);
    if (!stats.isFile())
      throw dataError({ file }, 'is not a regular file (a directory, device, FIFO or socket).', fix, {
        code: ErrorCodes.IO_FAILED,
      });
    return use(descriptor, stats);
  } finally {
    closeSync(descriptor);
  }
}

/** Reads `length` bytes at `position`, or fails naming the file when fewer are there. */
function readExactly(descriptor: number, file: string, position: number, length: number, line?: number) {
  const bytes = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const read = readSync(descriptor, bytes, done, length - done, position + done);
    if (read === 0)
      throw dataError(
        { file, ...(line !== undefined ? { line } : {}) },
        'ended before the bytes read earlier (the file changed).',
        'Do not change a data file while a run reads it; run again.',
      );
    done += read;
  }
  return bytes;
}

/**
 * Reads byte ranges of a data file that was read through before (each range at most the row limit
 * it was checked against), synchronously. The file must still be a regular file of the size and
 * modification time it had then.
 *
 * @param file - the path
 * @param ranges - the bytes to read
 * @param stamp - the file's size and modification time when its ranges were found
 * @returns the bytes of each range, in order
 * @throws FinepruneError `IO_FAILED` when it cannot be opened or is not a regular file;
 *   `INVALID_DATA` naming the file when it changed since the stamp
 *
 * @example
 * ```ts
 * const [row] = readFileRanges('train.jsonl', [{ start: 0, end: 31, line: 1 }], stamp);
 * ```
 */
export function readFileRanges(file: string, ranges: readonly FileRange[], stamp: FileStamp): Uint8Array[] {
  return withRegularFile(
    file,
    'Check that the data file is still there and readable.',
    (descriptor, stats) => {
      if (stats.size !== stamp.size || stats.mtimeMs !== stamp.mtimeMs)
        throw dataError(
          { file },
          `changed since it was read through (${stamp.size} bytes then, ${stats.size} now).`,
          'Do not change a data file while a run reads it; run again.',
          { details: { size: stats.size, expectedSize: stamp.size } },
        );
      return ranges.map((range) =>
        readExactly(descriptor, file, range.start, range.end - range.start, range.line),
      );
    },
  );
}

/**
 * Reads a whole regular file of at most `maxBytes` bytes, synchronously, checked on the open
 * descriptor (the synchronous counterpart of `readRegularFile` of `@fineprune/tensor/untrusted`,
 * for images read while a batch is made).
 *
 * @throws FinepruneError `IO_FAILED` when it cannot be opened or is not a regular file;
 *   `INVALID_DATA` naming the file when it is larger than `maxBytes`
 *
 * @example
 * ```ts
 * const bytes = readRegularFileSync('train/cat/001.png', { maxBytes: 16 << 20, fix: 'Keep images small.' });
 * ```
 */
export function readRegularFileSync(file: string, options: { maxBytes: number; fix: string }): Uint8Array {
  return withRegularFile(file, 'Check that the file is still there and readable.', (descriptor, stats) => {
    if (stats.size > options.maxBytes)
      throw dataError(
        { file },
        `has ${stats.size} bytes, more than the ${options.maxBytes} accepted.`,
        options.fix,
        {
          details: { bytes: stats.size, maxBytes: options.maxBytes },
        },
      );
    return readExactly(descriptor, file, 0, stats.size);
  });
}

/**
 * The size and modification time of a file now.
 *
 * @example
 * ```ts
 * const stamp = fileStamp('train.jsonl'); // { size, mtimeMs }
 * ```
 */
export function fileStamp(file: string): FileStamp {
  return withRegularFile(
    file,
    'Check that the data file is still there and readable.',
    (_descriptor, stats) => ({
      size: stats.size,
      mtimeMs: stats.mtimeMs,
    }),
  );
}
