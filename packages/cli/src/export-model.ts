import { existsSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { fileSystem, loadCheckpoint, saveStripped } from '@fineprune/layers';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { readSavedModel, type SavedModelSummary } from './report/read-model';

/**
 * Options of {@link exportCheckpoint}.
 *
 * @example
 * ```ts
 * const options: ExportCheckpointOptions = { allowUnverified: true };
 * ```
 */
export interface ExportCheckpointOptions {
  /** Export a version-1 checkpoint, written before checkpoints carried content hashes. Default false. */
  allowUnverified?: boolean;
}

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

function refuse(message: string, fix: string, details: Record<string, unknown>): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.IO_FAILED, message, fix, details });
}

/**
 * Refuses an export target that would replace or shadow the run's own files: the checkpoint being
 * exported, or a run output directory itself (where `report` and `export` look for the checkpoint).
 * The handler refuses any other checkpoint or unreadable model.json on its own.
 */
function checkTarget(checkpointDirectory: string, out: string): void {
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
 * Exports a checkpoint as a stripped TF.js layers model (masks applied, scores and masks dropped)
 * into `out`, and summarises what was written. The checkpoint is checked as untrusted on load
 * (content hashes, finite weights, masks exactly 0/1 or in [0, 1]); `out` may not be the checkpoint,
 * a run output directory, another checkpoint or a model.json that is not a model.
 *
 * @param checkpointDirectory - the checkpoint directory
 * @param out - the directory to write model.json and the weights into
 * @param options - `allowUnverified` for version-1 checkpoints
 * @returns the summary of the written model
 * @throws FinepruneError `IO_FAILED` for a refused or unwritable target, `CHECKPOINT_CORRUPT` /
 *   `CHECKPOINT_MISMATCH` for a damaged, edited or unsuitable checkpoint
 *
 * @example
 * ```ts
 * const summary = await exportCheckpoint('out/run/checkpoint', 'out/run/model');
 * console.log(summary.layers.map((row) => row.sparsity));
 * ```
 */
export async function exportCheckpoint(
  checkpointDirectory: string,
  out: string,
  options: ExportCheckpointOptions = {},
): Promise<SavedModelSummary> {
  if (!existsSync(path.join(checkpointDirectory, 'model.json'))) {
    throw refuse(
      `${checkpointDirectory} holds no model.json.`,
      'Pass a checkpoint directory or a run output directory written by `fineprune run`.',
      { directory: checkpointDirectory },
    );
  }
  checkTarget(checkpointDirectory, out);
  await setBackend('cpu');
  const { model, state } = await loadCheckpoint(fileSystem(checkpointDirectory), {
    loss: 'meanSquaredError',
    ...(options.allowUnverified ? { allowUnverified: true } : {}),
  });
  tf.dispose(Object.values(state.tensors));
  try {
    await saveStripped(model, fileSystem(path.resolve(out)));
  } finally {
    model.dispose();
  }
  return readSavedModel(path.resolve(out));
}
