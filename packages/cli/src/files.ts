import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';

/**
 * Writes a file atomically: the text goes to a temporary file in the same directory, is flushed to
 * disk, and is renamed over the target, so readers see the old file or the new one, never a part.
 *
 * @example
 * ```ts
 * await writeFileAtomic('out/run.json', JSON.stringify(record));
 * ```
 */
export async function writeFileAtomic(file: string, contents: string | Uint8Array): Promise<void> {
  const directory = path.dirname(file);
  const temporary = path.join(
    directory,
    `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    await mkdir(directory, { recursive: true });
    const handle = await open(temporary, 'w');
    try {
      await handle.writeFile(contents);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${file} cannot be written: ${(error as Error).message}`,
      fix: 'Check that the directory is writable and the disk has space.',
      cause: error,
    });
  }
}

/**
 * Checks that files can be written in `directory` before a long job starts: creates the missing
 * directories, writes and removes a small probe file, then removes the directories it created, so
 * nothing is left behind.
 *
 * @param directory - the directory to write in later
 * @param what - how messages name it (`the output directory (--out)`)
 * @throws FinepruneError `IO_FAILED` naming the directory and the system's reason
 *
 * @example
 * ```ts
 * await probeWritableDirectory('out/run', 'the output directory');
 * ```
 */
export async function probeWritableDirectory(directory: string, what: string): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(directory, { recursive: true });
    const probe = path.join(
      directory,
      `.fineprune-probe.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
    );
    await writeFile(probe, 'probe');
    await rm(probe, { force: true });
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${what} ${directory} is not writable: ${(error as Error).message}`,
      fix: 'Choose a directory you can write to (and that is not a file), or fix its permissions, before the run starts.',
      cause: error,
      details: { directory },
    });
  } finally {
    // Remove what mkdir created, deepest first; a directory that is not empty is left as it is.
    if (created !== undefined) {
      for (let current = directory; ; current = path.dirname(current)) {
        await rmdir(current).catch(() => undefined);
        if (current === created || path.dirname(current) === current) break;
      }
    }
  }
}
