import path from 'node:path';
import { decodeSavedModel, fileSystem } from '@fineprune/layers';
import * as tf from '@tensorflow/tfjs-core';
import type { LayerRow, ParameterSample } from '../run-record';
import { sampleParameter } from './samples';
import { type ExportSizes, exportSizes } from './sizes';

/**
 * A report's row for a weight of `shape` with `kept` entries kept; its group is the name up to the
 * last `/` (the layer).
 *
 * @example
 * ```ts
 * layerRow('dense_1/kernel', [784, 300], 23520); // { group: 'dense_1', total: 235200, sparsity: 0.9, … }
 * ```
 */
export function layerRow(name: string, shape: readonly number[], kept: number): LayerRow {
  const total = shape.reduce((product, dimension) => product * dimension, 1);
  return {
    name,
    group: name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : name,
    shape: [...shape],
    total,
    kept,
    sparsity: total ? 1 - kept / total : 0,
  };
}

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
  /** What the stripped model takes as TF.js float32, gzipped, and as compact sparse exports. */
  sizes?: ExportSizes;
}

/**
 * Reads a saved model directory without building the model: a fineprune checkpoint (masks and
 * learned scores from the checkpoint) or a plain TF.js layers model such as a stripped export
 * (weights of rank ≥ 2 are the prunable ones, exact zeros count as pruned, scores are |W|).
 * Everything is checked as untrusted first (`fileSystem` and `decodeSavedModel` of
 * `@fineprune/layers`): a mask entry of NaN, −1 or 2 or a NaN weight is an error naming the file and
 * the entry, never a count. Version-1 checkpoints (without content hashes) are read, since a report
 * changes nothing; their masks must still lie in [0, 1].
 *
 * @throws FinepruneError `IO_FAILED` / `CHECKPOINT_CORRUPT` / `CHECKPOINT_MISMATCH` when the
 *   directory cannot be read or holds a damaged or malformed model
 *
 * @example
 * ```ts
 * const summary = await readSavedModel('out/run/checkpoint');
 * console.log(summary.layers.map((row) => `${row.name} ${row.sparsity}`));
 * ```
 */
export async function readSavedModel(directory: string): Promise<SavedModelSummary> {
  const artifacts = await fileSystem(directory).load!();
  const { metadata, weights, pruner } = await decodeSavedModel(artifacts, {
    source: path.join(directory, 'model.json'),
    allowUnverified: true,
  });
  try {
    const parameters =
      metadata?.parameters.map((parameter) => parameter.name) ??
      [...weights.entries()]
        .filter(([, tensor]) => tensor.rank >= 2 && tensor.dtype === 'float32')
        .map(([name]) => name);
    const layers: LayerRow[] = [];
    const samples: ParameterSample[] = [];
    for (const name of parameters) {
      // decodeSavedModel checked that every parameter of a checkpoint has its weight and mask.
      const weight = weights.get(name)!;
      const values = (await weight.data()) as Float32Array;
      const maskTensor = metadata ? pruner[`mask/${name}`] : undefined;
      const mask = maskTensor
        ? Float32Array.from(await maskTensor.data())
        : Float32Array.from(values, (value) => (value !== 0 ? 1 : 0));
      const learned = metadata ? pruner[`scores/${name}`] : undefined;
      const scores = learned ? ((await learned.data()) as Float32Array) : Float32Array.from(values, Math.abs);
      let kept = 0;
      for (const value of mask) if (value !== 0) kept += 1;
      layers.push(layerRow(name, weight.shape, kept));
      samples.push(sampleParameter(name, values, scores, mask, learned ? 'learned' : 'magnitude'));
    }
    const stripped = tf.tidy(() =>
      [...weights.entries()].map(([name, tensor]) => {
        const mask = metadata ? pruner[`mask/${name}`] : undefined;
        return { name, tensor: mask ? tf.mul(tensor, mask) : tf.clone(tensor) };
      }),
    );
    let sizes: ExportSizes;
    try {
      sizes = await exportSizes(artifacts.modelTopology, stripped);
    } finally {
      tf.dispose(stripped.map(({ tensor }) => tensor));
    }
    return {
      kind: metadata ? 'checkpoint' : 'model',
      ...(metadata ? { step: metadata.step } : {}),
      layers,
      samples,
      sizes,
    };
  } finally {
    tf.dispose([...weights.values(), ...Object.values(pruner)]);
  }
}
