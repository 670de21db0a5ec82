/**
 * Reading files that an untrusted model.json names: only regular files inside the model folder
 * (no absolute paths, no `..`, no symbolic links that lead out), opened without blocking (a FIFO
 * cannot hang the load), read to exactly the size that was checked beforehand.
 */

import { ErrorCodes, type FinepruneError } from '@fineprune/tensor/errors';
import { readRegularFile } from '@fineprune/tensor/untrusted';
import { fileError, quote } from './model-json';
import type { NodeFs, NodeModules } from './node-modules';

type FileHandle = Awaited<ReturnType<NodeFs['promises']['open']>>;

/** An open regular file and its size. */
export interface OpenFile {
  handle: FileHandle;
  size: number;
  /** The path as shown in messages. */
  file: string;
}

const OUTSIDE_FIX =
  'Weights files must sit in the model folder; a model.json that names other files was made by hand or tampered with. Save the model again.';

function corrupt(
  message: string,
  fix: string,
  details: Record<string, unknown>,
  cause?: unknown,
): FinepruneError {
  return fileError(ErrorCodes.CHECKPOINT_CORRUPT, message, fix, details, cause);
}

/**
 * The real path of `name` inside `realDirectory`, refusing absolute paths, `..` segments and
 * symbolic links that resolve outside the folder.
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` naming model.json and the path
 */
export async function containedPath(
  { fs, path }: NodeModules,
  realDirectory: string,
  name: string,
  manifestFile: string,
): Promise<string> {
  const segments = name.split(/[\\/]/);
  if (path.isAbsolute(name) || /^[a-zA-Z]:/.test(name) || segments.includes('..')) {
    throw corrupt(
      `${manifestFile} names the weights file ${quote(name)}, which lies outside the model folder.`,
      OUTSIDE_FIX,
      { file: manifestFile, path: name.slice(0, 200) },
    );
  }
  const joined = path.join(realDirectory, name);
  let real: string;
  try {
    real = await fs.promises.realpath(joined);
  } catch (error) {
    throw corrupt(
      `${manifestFile} names the weights file ${quote(name)}, which cannot be read: ${(error as Error).message}`,
      'The save is incomplete or files were moved; save the model again or restore the directory from a backup.',
      { file: manifestFile, path: name.slice(0, 200) },
      error,
    );
  }
  if (!real.startsWith(realDirectory + path.sep)) {
    throw corrupt(
      `${manifestFile} names the weights file ${quote(name)}, a link that leads outside the model folder (to ${quote(real)}).`,
      OUTSIDE_FIX,
      { file: manifestFile, path: name.slice(0, 200) },
    );
  }
  return real;
}

/**
 * Opens a file for reading without blocking (a FIFO or a device returns at once) and checks that
 * it is a regular file.
 *
 * @throws FinepruneError `onMissing` code when it cannot be opened, `CHECKPOINT_CORRUPT` when it is
 *   not a regular file
 */
export async function openRegularFile(
  { fs }: NodeModules,
  file: string,
  onMissing: (error: unknown) => FinepruneError,
): Promise<OpenFile> {
  let handle: FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw onMissing(error);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw corrupt(
        `${file} is not a regular file (a directory, device, FIFO or socket); fineprune reads models only from regular files.`,
        'Point at a folder of regular files written by fileSystem() or model.save().',
        { file },
      );
    }
    return { handle, size: stats.size, file };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

/**
 * Reads exactly `target.length` bytes of an open file into `target`, and checks that the file ends
 * there (it did not grow or shrink since its size was checked).
 *
 * @throws FinepruneError `CHECKPOINT_CORRUPT` when the file changed size while being read
 */
export async function readExactly(open: OpenFile, target: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < target.length) {
    const { bytesRead } = await open.handle.read(target, offset, target.length - offset, offset);
    if (bytesRead === 0) break;
    offset += bytesRead;
  }
  const probe = new Uint8Array(1);
  const { bytesRead: extra } = await open.handle.read(probe, 0, 1, offset);
  if (offset !== target.length || extra !== 0) {
    throw corrupt(
      `${open.file} changed size while it was read (${target.length} bytes expected).`,
      'Another process is writing the model; wait for it to finish and load again.',
      { file: open.file, expectedBytes: target.length },
    );
  }
}

/**
 * Reads a whole regular file of at most `maxBytes` bytes as UTF-8 text.
 *
 * @throws FinepruneError `IO_FAILED` when it cannot be opened, `CHECKPOINT_CORRUPT` when it is not
 *   a regular file or is larger than `maxBytes`
 */
export async function readBoundedText(file: string, maxBytes: number): Promise<string> {
  const bytes = await readRegularFile(file, {
    maxBytes,
    what: 'the model file',
    fix: 'Point at a directory holding a model.json saved with fileSystem() or model.save(); if model.json really is that large, pass a larger maxModelJsonBytes to fileSystem(directory, { maxModelJsonBytes }).',
    code: ErrorCodes.CHECKPOINT_CORRUPT,
  });
  return new TextDecoder().decode(bytes);
}
