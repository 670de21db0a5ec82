import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PrunerState } from '@fineprune/core';
import {
  fileSystem,
  type LoadCheckpointOptions,
  type LayersPrunableModel,
  loadCheckpoint,
  type PrunerStateSource,
  saveCheckpoint,
} from '@fineprune/layers';
import type * as tf from '@tensorflow/tfjs-core';
import type { ModelSource } from './model-source';
import type { RunHistory } from './run-record';

/**
 * What a run checkpoint carries besides the pruner's own state (`userDefinedMetadata.finepruneRun`
 * of its model.json): the recipe it belongs to and the run history for the report.
 *
 * @example
 * ```ts
 * const { metadata } = await loadRunCheckpoint(directory, options);
 * metadata?.history.evaluations.length;
 * ```
 */
export interface RunCheckpointMetadata {
  formatVersion: 1;
  /** The recipe's identity (its config without the settings that may change on resume). */
  recipeKey: string;
  history: RunHistory;
  /** The size and storage of the model file the run started from (absent for built-in models). */
  source?: ModelSource;
}

/** Adds the run metadata to what a handler saves, inside the same atomic model.json write. */
function withRunMetadata(inner: tf.io.IOHandler, metadata: RunCheckpointMetadata): tf.io.IOHandler {
  return {
    save: (artifacts) =>
      inner.save!({
        ...artifacts,
        userDefinedMetadata: {
          ...(artifacts.userDefinedMetadata ?? {}),
          finepruneRun: metadata as unknown as object,
        },
      }),
  };
}

/**
 * Saves a run checkpoint with `saveCheckpoint` of `@fineprune/layers` (weights, masks, scores,
 * optimizer slots, step, random state) through its atomic `fileSystem` handler: the weights go to a
 * new file, model.json is written to a temporary file and renamed, so a crash at any point leaves
 * the previous checkpoint loadable.
 *
 * @example
 * ```ts
 * await saveRunCheckpoint('out/run/checkpoint', prunable, pruner, { formatVersion: 1, recipeKey, history });
 * ```
 */
export async function saveRunCheckpoint(
  directory: string,
  prunable: LayersPrunableModel,
  pruner: PrunerStateSource,
  metadata: RunCheckpointMetadata,
): Promise<void> {
  await saveCheckpoint(prunable, pruner, withRunMetadata(fileSystem(directory), metadata));
}

/**
 * True when `directory` holds a checkpoint's model.json.
 *
 * @example
 * ```ts
 * if (hasCheckpoint('out/run/checkpoint')) console.log('resume with --resume');
 * ```
 */
export function hasCheckpoint(directory: string): boolean {
  return existsSync(path.join(directory, 'model.json'));
}

/**
 * Loads a run checkpoint: the model (weights and masks restored), the pruner state, and the run
 * metadata (undefined for checkpoints written by other tools).
 *
 * @example
 * ```ts
 * const { model, state, metadata } = await loadRunCheckpoint('out/run/checkpoint', { loss: 'sparseCategoricalCrossentropy' });
 * ```
 */
export async function loadRunCheckpoint(
  directory: string,
  options: LoadCheckpointOptions,
): Promise<{ model: LayersPrunableModel; state: PrunerState; metadata: RunCheckpointMetadata | undefined }> {
  const inner = fileSystem(directory);
  let metadata: RunCheckpointMetadata | undefined;
  const loaded = await loadCheckpoint(
    {
      load: async () => {
        const artifacts = await inner.load!();
        metadata = (artifacts.userDefinedMetadata as Record<string, unknown> | undefined)?.finepruneRun as
          | RunCheckpointMetadata
          | undefined;
        return artifacts;
      },
    },
    options,
  );
  return { ...loaded, metadata };
}
