/**
 * The transformer encoder and the compact sparse export: a pruned `BertModel` written in its Hugging
 * Face layout (Linear weights [out, in], so each output channel's kept inputs are contiguous), and
 * read back either densified into a stock `BertModel` or with its prunable projections run by the
 * sparse kernels of `@fineprune/sparse`.
 *
 * It lives here, beside the demo, because it needs both `@fineprune/transformers` and
 * `@fineprune/sparse`, which do not import each other.
 */
import {
  type CompactExportOptions,
  type CompactModel,
  encodeCompactModel,
  prepareSparseDenseFromRows,
  type SparseDenseMode,
  type SparseDenseWeights,
  sparseDense,
} from '@fineprune/sparse';
import {
  decodeFloat32,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsInput,
} from '@fineprune/safetensors';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import {
  type BertModel,
  type BertTask,
  configFromHuggingFace,
  createBertModel,
  type EncoderConfig,
  exportHuggingFace,
  huggingFaceNames,
  loadHuggingFaceWeights,
  type ProjectionFunction,
} from '@fineprune/transformers';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The compact export of a (pruned) BERT model: every tensor under its Hugging Face name and shape,
 * matrices with their output channels first, pruned weights left out. The reference size (for the
 * never-larger rule) is the model's float32 safetensors file.
 *
 * @example
 * ```ts
 * const bytes = await compactBertBytes(model, { values: 'int8' });
 * ```
 */
export async function compactBertBytes(
  model: BertModel,
  options: CompactExportOptions = {},
): Promise<Uint8Array> {
  const { safetensors, config } = await exportHuggingFace(model);
  const file = readSafetensors(safetensors);
  const tensors = [...file.tensors.values()].map((tensor) => ({
    name: tensor.name,
    shape: [...tensor.shape],
    values: decodeFloat32(tensor),
    channelAxis: 0,
  }));
  return encodeCompactModel(
    { model: { kind: 'huggingface', config }, tensors },
    { referenceBytes: safetensors.length, ...options },
  );
}

/**
 * The encoder config of a compact export of a Hugging Face BERT model.
 *
 * @throws FinepruneError `CHECKPOINT_MISMATCH` when it holds another kind of model
 */
export function bertConfigOf(compact: CompactModel, source = 'the compact export'): EncoderConfig {
  const description = compact.header.model;
  if (description.kind !== 'huggingface')
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `${source} holds a ${description.kind} model, not a Hugging Face BERT model.`,
      fix: 'Load layers models with loadSparseLayersModel() or loadDenseLayersModel().',
    });
  return configFromHuggingFace(description.config);
}

/** A new model of the export's config with every tensor assigned (densified) from it. */
function denseModel(
  compact: CompactModel,
  task: BertTask,
  projections?: ReadonlyMap<string, ProjectionFunction>,
): BertModel {
  const config = bertConfigOf(compact);
  const tensors: Record<string, SafetensorsInput> = {};
  for (const tensor of compact.tensors)
    tensors[tensor.name] = { dtype: 'F32', shape: [...tensor.shape], data: tensor.dense() };
  const model = createBertModel({ config, task, ...(projections ? { projections } : {}) });
  try {
    loadHuggingFaceWeights(model, readSafetensors(encodeSafetensors(tensors)));
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
  const layout = huggingFaceNames(bertConfigOf(compact), task).filter(
    (entry) => entry.prunableGroup !== undefined,
  );
  const weights = new Map<string, SparseDenseWeights>();
  try {
    for (const entry of layout) {
      const bias = tf.tensor1d(compact.tensor(entry.huggingFaceName.replace(/weight$/, 'bias')).dense());
      try {
        weights.set(
          entry.name,
          prepareSparseDenseFromRows(compact.tensor(entry.huggingFaceName).rows(), {
            bias,
            mode: options.mode ?? 'auto',
          }),
        );
      } finally {
        bias.dispose();
      }
    }
    const projections = new Map<string, ProjectionFunction>(
      [...weights].map(([name, prepared]) => [
        name,
        (hidden) => sparseDense(hidden, prepared) as tf.Tensor2D,
      ]),
    );
    const model = denseModel(compact, task, projections);
    return {
      model,
      weights,
      dispose: () => {
        model.dispose();
        for (const prepared of weights.values()) prepared.dispose();
      },
    };
  } catch (error) {
    for (const prepared of weights.values()) prepared.dispose();
    throw error;
  }
}
