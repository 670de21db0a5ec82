import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { CHECKPOINT_PREFIX, type CheckpointMetadata, fileSystem } from '@fineprune/layers';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerRow, ParameterSample } from '../run-record';
import { sampleParameter } from './samples';

/**
 * What {@link readSavedModel} finds in a directory.
 *
 * @example
 * ```ts
 * const { kind, layers }: SavedModelSummary = await readSavedModel('out/run/model');
 * ```
 */
export interface SavedModelSummary {
  /** `checkpoint`: a fineprune checkpoint (masks read from it); `model`: a plain model (zeros count as pruned). */
  kind: 'checkpoint' | 'model';
  /** Steps completed, for checkpoints. */
  step?: number;
  layers: LayerRow[];
  samples: ParameterSample[];
}

/**
 * Reads a saved model directory without building the model: a fineprune checkpoint (masks and
 * learned scores from the checkpoint) or a plain TF.js layers model such as a stripped export
 * (weights of rank ≥ 2 are the prunable ones, exact zeros count as pruned, scores are |W|).
 *
 * @throws FinepruneError `IO_FAILED` / `CHECKPOINT_CORRUPT` when the directory cannot be read
 *
 * @example
 * ```ts
 * const summary = await readSavedModel('out/run/checkpoint');
 * console.log(summary.layers.map((row) => `${row.name} ${row.sparsity}`));
 * ```
 */
export async function readSavedModel(directory: string): Promise<SavedModelSummary> {
  const artifacts = await fileSystem(directory).load!();
  if (!artifacts.weightSpecs || !artifacts.weightData) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_CORRUPT,
      message: `${directory} holds no weights.`,
      fix: 'Point at a directory written by fineprune run/export or model.save().',
    });
  }
  const tensors = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    const metadata = (artifacts.userDefinedMetadata as Record<string, unknown> | undefined)?.fineprune as
      | CheckpointMetadata
      | undefined;
    const parameters =
      metadata?.parameters.map((parameter) => parameter.name) ??
      Object.entries(tensors)
        .filter(
          ([name, tensor]) =>
            !name.startsWith(CHECKPOINT_PREFIX) && tensor.rank >= 2 && tensor.dtype === 'float32',
        )
        .map(([name]) => name);
    const layers: LayerRow[] = [];
    const samples: ParameterSample[] = [];
    for (const name of parameters) {
      const weight = tensors[name];
      if (!weight) continue;
      const weights = weight.dataSync() as Float32Array;
      const maskTensor = metadata ? tensors[`${CHECKPOINT_PREFIX}mask/${name}`] : undefined;
      const mask = maskTensor
        ? Float32Array.from(maskTensor.dataSync())
        : Float32Array.from(weights, (value) => (value !== 0 ? 1 : 0));
      const learned = metadata ? tensors[`${CHECKPOINT_PREFIX}scores/${name}`] : undefined;
      const scores = learned ? (learned.dataSync() as Float32Array) : Float32Array.from(weights, Math.abs);
      let kept = 0;
      for (const value of mask) if (value !== 0) kept += 1;
      layers.push({
        name,
        group: name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : name,
        shape: [...weight.shape],
        total: weight.size,
        kept,
        sparsity: weight.size ? 1 - kept / weight.size : 0,
      });
      samples.push(sampleParameter(name, weights, scores, mask, learned ? 'learned' : 'magnitude'));
    }
    return {
      kind: metadata ? 'checkpoint' : 'model',
      ...(metadata ? { step: metadata.step } : {}),
      layers,
      samples,
    };
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
