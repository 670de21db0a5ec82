/**
 * The variables of a BERT model: our names, the Hugging Face (PyTorch) names, shapes, and how each
 * is initialised. The model and the checkpoint code share this one table.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type EncoderConfig, layerHeads, layerIntermediateSize } from './config';

/**
 * The task head on top of the encoder.
 *
 * - `classification`: pooler (dense + tanh on [CLS]) then a classifier, logits [B, numLabels].
 * - `span`: extractive question answering, start and end logits [B, L] each.
 * - `mlm`: masked-language modelling on `maxPredictions` positions per sequence.
 *
 * @example
 * ```ts
 * const task: BertTask = { type: 'classification', numLabels: 3 };
 * ```
 */
export type BertTask =
  | { readonly type: 'classification'; readonly numLabels: number }
  | { readonly type: 'span' }
  | { readonly type: 'mlm'; readonly maxPredictions: number };

/**
 * Which part of the model a variable belongs to.
 *
 * @example
 * ```ts
 * model.variables().filter((entry) => entry.part === 'encoder').length; // 16 per layer
 * ```
 */
export type BertVariablePart = 'embeddings' | 'encoder' | 'pooler' | 'head';

/**
 * One variable of the layout.
 *
 * @example
 * ```ts
 * const entry = bertLayout(config, task).find((e) => e.name === 'layer_0/attention/query/kernel')!;
 * entry.huggingFaceName; // 'bert.encoder.layer.0.attention.self.query.weight'
 * entry.transpose; // true: ours is [in, out], PyTorch's is [out, in]
 * ```
 */
export interface BertLayoutEntry {
  /** Our name, as in `trainableVariables()` and `parameters()`. */
  readonly name: string;
  /** The name in a Hugging Face BERT checkpoint (with the `bert.` prefix where HF has it). */
  readonly huggingFaceName: string;
  /** Our shape (kernels are [in, out]). */
  readonly shape: readonly number[];
  /** The shape in the checkpoint (PyTorch Linear weights are [out, in]). */
  readonly huggingFaceShape: readonly number[];
  /** True when the checkpoint stores the transpose of our tensor. */
  readonly transpose: boolean;
  readonly part: BertVariablePart;
  /** Initialisation: truncated normal(0, initializerRange), zeros, or ones. */
  readonly init: 'normal' | 'zeros' | 'ones';
  /** Set on the six prunable projections of each layer: their group (`layer_{i}`). */
  readonly prunableGroup?: string;
}

function entry(
  name: string,
  huggingFaceName: string,
  shape: number[],
  part: BertVariablePart,
  init: BertLayoutEntry['init'],
  options: { transpose?: boolean; prunableGroup?: string } = {},
): BertLayoutEntry {
  const transpose = options.transpose ?? false;
  return Object.freeze({
    name,
    huggingFaceName,
    shape: Object.freeze(shape),
    huggingFaceShape: Object.freeze(transpose ? [shape[1]!, shape[0]!] : [...shape]),
    transpose,
    part,
    init,
    ...(options.prunableGroup !== undefined ? { prunableGroup: options.prunableGroup } : {}),
  });
}

/** A dense layer: kernel [in, out] (HF `.weight` [out, in]) and bias [out]. */
function denseEntries(
  name: string,
  hfName: string,
  inputs: number,
  units: number,
  part: BertVariablePart,
  prunableGroup?: string,
): BertLayoutEntry[] {
  return [
    entry(`${name}/kernel`, `${hfName}.weight`, [inputs, units], part, 'normal', {
      transpose: true,
      ...(prunableGroup !== undefined ? { prunableGroup } : {}),
    }),
    entry(`${name}/bias`, `${hfName}.bias`, [units], part, 'zeros'),
  ];
}

function layerNormEntries(name: string, hfName: string, size: number, part: BertVariablePart) {
  return [
    entry(`${name}/gamma`, `${hfName}.weight`, [size], part, 'ones'),
    entry(`${name}/beta`, `${hfName}.bias`, [size], part, 'zeros'),
  ];
}

/**
 * Checks a task description.
 *
 * @param task - the task
 * @returns a frozen copy
 * @throws FinepruneError `INVALID_ARGUMENT` for an unknown type, `numLabels` < 1 or
 *   `maxPredictions` < 1
 *
 * @example
 * ```ts
 * validateTask({ type: 'mlm', maxPredictions: 20 });
 * ```
 */
export function validateTask(task: BertTask): BertTask {
  const type = (task as { type?: unknown } | undefined)?.type;
  if (type === 'classification') {
    const { numLabels } = task as { numLabels: number };
    if (!Number.isSafeInteger(numLabels) || numLabels < 1) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `A classification task needs numLabels, a positive integer; got ${JSON.stringify(numLabels)}.`,
        fix: "Pass { type: 'classification', numLabels: 2 } (the number of classes).",
      });
    }
    return Object.freeze({ type, numLabels });
  }
  if (type === 'span') return Object.freeze({ type });
  if (type === 'mlm') {
    const { maxPredictions } = task as { maxPredictions: number };
    if (!Number.isSafeInteger(maxPredictions) || maxPredictions < 1) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `An mlm task needs maxPredictions, a positive integer; got ${JSON.stringify(maxPredictions)}.`,
        fix: "Pass { type: 'mlm', maxPredictions: 20 } (masked positions per sequence).",
      });
    }
    return Object.freeze({ type, maxPredictions });
  }
  throw new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `Unknown task type ${JSON.stringify(type)}.`,
    fix: "Use { type: 'classification', numLabels }, { type: 'span' } or { type: 'mlm', maxPredictions }.",
  });
}

/**
 * Every variable of a BERT model for a task, in a fixed order (embeddings, layers, pooler, head):
 * our name, the Hugging Face name and shape, and the initialisation. A shrunk encoder's layers have
 * their own widths ({@link EncoderConfig.prunedHeads}, {@link EncoderConfig.intermediateSizes}); a
 * layer without heads has no query, key, value or attention-output kernel, only the output bias.
 * The pooler exists for `classification` only (Hugging Face's question-answering and masked-LM models have none).
 *
 * @param config - a validated encoder config
 * @param task - the task head
 * @returns the layout entries
 *
 * @example
 * ```ts
 * bertLayout(bertBaseUncasedConfig, { type: 'span' }).length; // 5 + 12·16 + 2 = 199
 * ```
 */
export function bertLayout(config: EncoderConfig, task: BertTask): BertLayoutEntry[] {
  const H = config.hiddenSize;
  const headSize = H / config.numHeads;
  const list: BertLayoutEntry[] = [
    entry(
      'embeddings/word_embeddings',
      'bert.embeddings.word_embeddings.weight',
      [config.vocabSize, H],
      'embeddings',
      'normal',
    ),
    entry(
      'embeddings/position_embeddings',
      'bert.embeddings.position_embeddings.weight',
      [config.maxPositions, H],
      'embeddings',
      'normal',
    ),
    entry(
      'embeddings/token_type_embeddings',
      'bert.embeddings.token_type_embeddings.weight',
      [config.typeVocabSize, H],
      'embeddings',
      'normal',
    ),
    ...layerNormEntries('embeddings/layer_norm', 'bert.embeddings.LayerNorm', H, 'embeddings'),
  ];
  for (let i = 0; i < config.numLayers; i += 1) {
    const ours = `layer_${i}`;
    const hf = `bert.encoder.layer.${i}`;
    const attentionWidth = layerHeads(config, i) * headSize;
    const I = layerIntermediateSize(config, i);
    if (attentionWidth > 0) {
      for (const projection of ['query', 'key', 'value']) {
        list.push(
          ...denseEntries(
            `${ours}/attention/${projection}`,
            `${hf}.attention.self.${projection}`,
            H,
            attentionWidth,
            'encoder',
            ours,
          ),
        );
      }
    }
    const output = denseEntries(
      `${ours}/attention/output`,
      `${hf}.attention.output.dense`,
      attentionWidth,
      H,
      'encoder',
      ours,
    );
    list.push(
      // A layer without heads keeps only the output bias (no zero-size kernels).
      ...(attentionWidth > 0 ? output : output.slice(1)),
      ...layerNormEntries(`${ours}/attention/layer_norm`, `${hf}.attention.output.LayerNorm`, H, 'encoder'),
      ...denseEntries(`${ours}/ffn/intermediate`, `${hf}.intermediate.dense`, H, I, 'encoder', ours),
      ...denseEntries(`${ours}/ffn/output`, `${hf}.output.dense`, I, H, 'encoder', ours),
      ...layerNormEntries(`${ours}/ffn/layer_norm`, `${hf}.output.LayerNorm`, H, 'encoder'),
    );
  }
  if (task.type === 'classification') {
    list.push(
      ...denseEntries('pooler', 'bert.pooler.dense', H, H, 'pooler'),
      ...denseEntries('classifier', 'classifier', H, task.numLabels, 'head'),
    );
  } else if (task.type === 'span') {
    list.push(...denseEntries('qa_outputs', 'qa_outputs', H, 2, 'head'));
  } else {
    list.push(
      ...denseEntries('mlm/transform', 'cls.predictions.transform.dense', H, H, 'head'),
      ...layerNormEntries('mlm/transform/layer_norm', 'cls.predictions.transform.LayerNorm', H, 'head'),
      entry('mlm/output_bias', 'cls.predictions.bias', [config.vocabSize], 'head', 'zeros'),
    );
  }
  return list;
}
