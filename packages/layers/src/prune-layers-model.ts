import type * as tfl from '@tensorflow/tfjs-layers';
import { type PruneOnceOptions, type PruneOnceReport, pruneOnce } from '@fineprune/core';
import { assertLayersModel } from './check-model';
import { type FromLayersModelOptions, fromLayersModel } from './from-layers-model';
import { strip } from './strip';

/**
 * Options of {@link pruneLayersModel}: those of `pruneOnce` (scores, mask, target, scoring data),
 * plus which weights to prune and the loss (for scores measured on data), as in {@link fromLayersModel}.
 *
 * @example
 * ```ts
 * const options: PruneLayersModelOptions = { scores: magnitude(), mask: topV({ scope: 'global' }), sparsity: 0.5, exclude: 'logits' };
 * ```
 */
export interface PruneLayersModelOptions
  extends Omit<PruneOnceOptions, 'parameters' | 'exclude'>,
    Pick<FromLayersModelOptions, 'include' | 'exclude' | 'loss' | 'fromLogits'> {}

/**
 * What {@link pruneLayersModel} returns: the pruned copy and the report.
 *
 * @example
 * ```ts
 * const { model: pruned, report }: PrunedLayersModel = await pruneLayersModel(model, options);
 * ```
 */
export interface PrunedLayersModel {
  /** A new plain `tf.LayersModel` with weights W ⊙ M (pruned entries are 0); dispose it when done. */
  readonly model: tfl.LayersModel;
  /** Kept counts per parameter and in total, and every weight left dense (see `pruneOnce`). */
  readonly report: PruneOnceReport;
}

/**
 * A `tf.LayersModel` in, a pruned `tf.LayersModel` out, in one call and without training:
 * {@link fromLayersModel} → `pruneOnce` → {@link strip}, then the wrapper is removed. The model
 * given is left exactly as it was; the copy has the same topology with zeros where weights were
 * pruned, and stock TF.js saves, loads and runs it. (To keep pruning or training the same model,
 * use `fromLayersModel` and `pruneOnce` directly.)
 *
 * @param model - a built `tf.LayersModel`, for example from `tf.loadLayersModel()`
 * @param options - scores, mask, target; `include` / `exclude`; `loss` and `data` for data-driven scores
 * @returns the pruned copy and the report
 * @throws FinepruneError as `fromLayersModel` and `pruneOnce` do (`UNSUPPORTED_MODEL` for a graph model)
 *
 * @example
 * ```ts
 * const model = await tf.loadLayersModel(fileSystem('./my-model'));
 * const { model: pruned, report } = await pruneLayersModel(model, {
 *   scores: magnitude(),
 *   mask: topV({ scope: 'global' }),
 *   sparsity: 0.5,
 * });
 * console.log(report.sparsity, report.skipped.length);
 * await pruned.save(fileSystem('./my-model-pruned'));
 * ```
 */
export async function pruneLayersModel(
  model: tfl.LayersModel,
  options: PruneLayersModelOptions,
): Promise<PrunedLayersModel> {
  assertLayersModel(model, 'pruneLayersModel()');
  const { include, exclude, loss, fromLogits, ...once } = options ?? ({} as PruneLayersModelOptions);
  const prunable = fromLayersModel(model, {
    ...(include !== undefined ? { include } : {}),
    ...(exclude !== undefined ? { exclude } : {}),
    ...(loss !== undefined ? { loss } : {}),
    ...(fromLogits !== undefined ? { fromLogits } : {}),
  });
  try {
    const report = await pruneOnce(prunable, once);
    return { model: await strip(prunable), report };
  } finally {
    prunable.unwrap();
  }
}
