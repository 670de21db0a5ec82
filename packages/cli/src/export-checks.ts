/**
 * Checks of an export target: it may not replace or shadow the run's own files (the checkpoint, a run
 * output directory, another checkpoint, a model.json it cannot read).
 */

import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { checkJsonBounds, readRegularFile } from '@fineprune/tensor/untrusted';

/** The path with its links resolved as far as it exists (a missing tail is kept as written). */
function resolvedPath(target: string): string {
  const absolute = path.resolve(target);
  let existing = absolute;
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    return path.join(realpathSync(existing), path.relative(existing, absolute));
  } catch {
    return absolute;
  }
}

export function refuse(message: string, fix: string, details: Record<string, unknown>): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.IO_FAILED, message, fix, details });
}

/**
 * Refuses an export target that would replace or shadow the run's own files: the checkpoint being
 * exported, or a run output directory itself (where `report` and `export` look for the checkpoint).
 * The handler refuses any other checkpoint or unreadable model.json on its own.
 */
export function checkTarget(checkpointDirectory: string, out: string): void {
  const target = resolvedPath(out);
  if (target === resolvedPath(checkpointDirectory)) {
    throw refuse(
      `--out ${out} is the checkpoint being exported; the export would replace it and the run could no longer resume.`,
      'Write the export to another directory, for example <run>/model.',
      { directory: out, checkpoint: checkpointDirectory },
    );
  }
  if (
    existsSync(path.join(target, 'run.json')) ||
    existsSync(path.join(target, 'checkpoint', 'model.json'))
  ) {
    throw refuse(
      `--out ${out} is a run output directory; an export there would shadow its checkpoint for report and export.`,
      'Write the export to a folder of its own, for example <run>/model.',
      { directory: out },
    );
  }
}

/**
 * Refuses to put a compact export beside a checkpoint (report and export would pick the checkpoint)
 * or beside a model.json it cannot read (a FIFO, a huge or malformed file).
 */
export async function refuseCheckpointFolder(directory: string): Promise<void> {
  const modelJson = path.join(directory, 'model.json');
  if (!existsSync(modelJson)) return;
  let metadata: unknown;
  try {
    const bytes = await readRegularFile(modelJson, { maxBytes: 64 * 1024 ** 2, what: 'the model file' });
    const text = new TextDecoder().decode(bytes);
    if (checkJsonBounds(text, { maxDepth: 64, maxValues: 2_000_000 })) throw new Error('too deeply nested');
    metadata = (JSON.parse(text) as { userDefinedMetadata?: { fineprune?: unknown } }).userDefinedMetadata
      ?.fineprune;
  } catch (error) {
    throw refuse(
      `--out ${directory} holds a model.json that is not a readable TF.js model (${(error as Error).message.slice(0, 200)}); fineprune will not write beside it.`,
      'Write the export to a folder of its own, for example <run>/sparse.',
      { directory },
    );
  }
  if (metadata !== undefined)
    throw refuse(
      `--out ${directory} holds a checkpoint; a compact export there would sit beside it.`,
      'Write the export to a folder of its own, for example <run>/sparse.',
      { directory },
    );
}
