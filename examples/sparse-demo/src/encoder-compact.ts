/**
 * The transformer encoder from a compact sparse export: read back either densified into a stock
 * `BertModel` or with its prunable projections run by the sparse kernels of `@fineprune/sparse`.
 *
 * The export itself is written by the packages: `huggingFaceTensors` of `@fineprune/transformers`
 * (the Hugging Face layout, Linear weights [out, in], with masks) fed to `encodeCompactHuggingFace`
 * of `@fineprune/sparse`:
 *
 * ```ts
 * const tensors = await huggingFaceTensors(model);
 * const bytes = await encodeCompactHuggingFace({ config: huggingFaceConfig(model), tensors }, { values: 'int8' });
 * ```
 *
 * `fineprune export --format sparse` and a recipe's `export.format: sparse` write the same. Loading a `BertModel` needs both packages, which do
 * not import each other, so the few lines that join them live here, beside the page that uses them.
 */
import {
  type CompactModel,
  huggingFaceConfigOf,
  prepareCompactProjections,
  type SparseDenseMode,
  type SparseDenseWeights,
  sparseDense,
} from '@fineprune/sparse';
import {
  type BertModel,
  type BertTask,
  configFromHuggingFace,
  createBertModel,
  huggingFaceNames,
  loadHuggingFaceTensors,
  type ProjectionFunction,
} from '@fineprune/transformers';
import type * as tf from '@tensorflow/tfjs-core';

/** A new model of the export's config with every tensor assigned (densified) from it. */
function denseModel(
  compact: CompactModel,
  task: BertTask,
  projections?: ReadonlyMap<string, ProjectionFunction>,
): BertModel {
  const config = configFromHuggingFace(huggingFaceConfigOf(compact));
  const model = createBertModel({ config, task, ...(projections ? { projections } : {}) });
  try {
    loadHuggingFaceTensors(
      model,
      compact.tensors.map((tensor) => ({ name: tensor.name, shape: tensor.shape, values: tensor.dense() })),
    );
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

/**
 * A stock `BertModel` with every weight densified from a compact export.
 *
 * @example
 * ```ts
 * const model = loadDenseBert(await readCompactModel(bytes), { type: 'classification', numLabels: 2 });
 * ```
 */
export function loadDenseBert(compact: CompactModel, task: BertTask): BertModel {
  return denseModel(compact, task);
}

/**
 * A BERT model whose prunable projections run through `sparseDense` over the kept weights of a
 * compact export (the other weights, and the projections' dense copies, are loaded as well).
 *
 * @example
 * ```ts
 * const bert = loadSparseBert(compact, { type: 'classification', numLabels: 2 });
 * const logits = bert.model.forward(inputs, { training: false });
 * bert.dispose();
 * ```
 */
export function loadSparseBert(
  compact: CompactModel,
  task: BertTask,
  options: { mode?: SparseDenseMode } = {},
): { model: BertModel; weights: Map<string, SparseDenseWeights>; dispose(): void } {
  const layout = huggingFaceNames(configFromHuggingFace(huggingFaceConfigOf(compact)), task).filter(
    (entry) => entry.prunableGroup !== undefined,
  );
  const prepared = prepareCompactProjections(
    compact,
    layout.map((entry) => entry.huggingFaceName),
    { mode: options.mode ?? 'auto' },
  );
  // Keyed by our parameter names, as createBertModel's projections are.
  const weights = new Map(layout.map((entry) => [entry.name, prepared.get(entry.huggingFaceName)!]));
  try {
    const projections = new Map<string, ProjectionFunction>(
      [...weights].map(([name, weight]) => [name, (hidden) => sparseDense(hidden, weight) as tf.Tensor2D]),
    );
    const model = denseModel(compact, task, projections);
    return {
      model,
      weights,
      dispose: () => {
        model.dispose();
        for (const weight of weights.values()) weight.dispose();
      },
    };
  } catch (error) {
    for (const weight of weights.values()) weight.dispose();
    throw error;
  }
}
