/**
 * Atomic text writes for the Node entry points (Hugging Face directories, training checkpoints):
 * a temporary file beside the target, fsync, then rename, so a crash or a full disk never leaves a
 * half-written file where the previous one was.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * Writes `text` to `file` atomically; on failure removes the temporary file and throws `IO_FAILED`
 * naming the file. `kept` names what stays as it was ("the previous checkpoint").
 *
 * @example
 * await writeTextAtomically('/tmp/run/config.json', '{}\n', 'the previous file');
 */
export async function writeTextAtomically(file: string, text: string, kept: string): Promise<void> {
  const temporary = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    const handle = await fs.promises.open(temporary, 'wx');
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(temporary, file);
  } catch (error) {
    await fs.promises.rm(temporary, { force: true }).catch(() => undefined);
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `Cannot write ${file}: ${(error as Error).message}`,
      fix: `Check that the directory is writable and the disk is not full; ${kept} is unchanged.`,
      cause: error,
      details: { file },
    });
  }
}
