/**
 * The compact sparse export of a BERT model: the model's tensors in the Hugging Face layout, with
 * their masks (`@fineprune/transformers`), encoded by `@fineprune/sparse`'s writer. Used by a
 * recipe's `export.format: sparse` and by `fineprune export --format sparse` of a BERT run
 * checkpoint or a Hugging Face folder.
 */

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { type CompactExportOptions, encodeCompactHuggingFace } from '@fineprune/sparse';
import { type BertModel, huggingFaceConfig, huggingFaceTensors } from '@fineprune/transformers';
import {
  CONFIG_FILE,
  hasBertCheckpoint,
  loadBertCheckpoint,
  loadHuggingFaceDirectory,
  WEIGHTS_FILE,
} from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Encodes a (pruned) BERT model as a compact sparse export: every tensor under its Hugging Face name
 * and shape, Linear weights [out, in] with their output channels first, its config.json in the
 * header. The weights are W ⊙ M and the zeros are left out — so a model whose masks were not saved
 * (a Hugging Face folder of a pruned model, loaded with masks of ones) is as small as the pruned model
 * it came from; the masks themselves are not passed, since a mask of ones would keep every zero (as
 * the layers export, which stores a stripped model's nonzeros). `readCompactModel` of
 * `@fineprune/sparse` reads it.
 *
 * @param model - the model
 * @param options - value encoding, reference size (default: its tensors as float32), `allowLarger`
 * @returns the file bytes
 * @throws FinepruneError `LARGER_THAN_SOURCE` unless `allowLarger`; `INVALID_ARGUMENT` for non-finite weights
 *
 * @example
 * ```ts
 * await writeCompactExport('out/run/model', await compactBertBytes(model, { values: 'int8' }));
 * ```
 */
export async function compactBertBytes(
  model: BertModel,
  options: CompactExportOptions = {},
): Promise<Uint8Array> {
  // W ⊙ M: the pruned entries are the zeros, which the writer leaves out.
  const tensors = await huggingFaceTensors(model);
  return encodeCompactHuggingFace({ config: huggingFaceConfig(model), tensors }, options);
}

/**
 * Whether a directory holds a BERT model `fineprune export` reads: a BERT run checkpoint
 * (checkpoint.json) or a Hugging Face folder (config.json + model.safetensors, no model.json).
 *
 * @example
 * ```ts
 * isBertModelDirectory('out/tiny-bert/checkpoint'); // true
 * ```
 */
export function isBertModelDirectory(directory: string): boolean {
  if (hasBertCheckpoint(directory)) return true;
  return (
    !existsSync(path.join(directory, 'model.json')) &&
    existsSync(path.join(directory, CONFIG_FILE)) &&
    existsSync(path.join(directory, WEIGHTS_FILE))
  );
}

/**
 * Opens the BERT model of a run checkpoint or a Hugging Face folder (each checked as untrusted by its
 * loader), with the size of the file it came from: the folder's model.safetensors, or for a
 * checkpoint undefined (its tensors as float32 are the reference).
 *
 * @throws FinepruneError the loaders' `IO_FAILED`, `CHECKPOINT_CORRUPT`, `CHECKPOINT_MISMATCH`
 *
 * @example
 * ```ts
 * const { model, referenceBytes } = await openBertForExport('out/tiny-bert/checkpoint');
 * ```
 */
export async function openBertForExport(
  directory: string,
): Promise<{ model: BertModel; referenceBytes: number | undefined }> {
  if (hasBertCheckpoint(directory)) {
    const { model, state } = await loadBertCheckpoint(directory);
    tf.dispose(Object.values(state.tensors));
    return { model, referenceBytes: undefined };
  }
  const { model } = await loadHuggingFaceDirectory(directory);
  return { model, referenceBytes: statSync(path.join(directory, WEIGHTS_FILE)).size };
}
