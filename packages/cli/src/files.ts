import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
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
