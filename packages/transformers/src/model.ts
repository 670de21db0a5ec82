/**
 * The BERT encoder (Devlin et al. 2019) and its task heads as a {@link PrunableModel}: raw TF.js
 * variables, 2-D `dense` projections, the six projections of every layer prunable.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  type Batch,
  createPrunableParameter,
  type ModelInput,
  type ModelOutput,
  type NamedVariable,
  type PrunableModel,
  type PrunableParameter,
  SPEC_VERSION,
} from '@fineprune/core';
import { dense, gatherRows, maskedDense, registerWasmTrainingKernels } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { createRandom, type RandomSource } from '@fineprune/tensor/random';
import { type EncoderConfig, layerHeads, validateConfig } from './config';
import {
  type BertLayoutEntry,
  type BertTask,
  type BertVariablePart,
  bertLayout,
  validateTask,
} from './layout';
import { bertStructures } from './structures';
import {
  applyProjection,
  gelu,
  geluTanh,
  layerNorm,
  multiHeadAttention,
  type Projection,
  type ProjectionFunction,
  rowCrossEntropy,
  seededDropout,
} from './ops';

/**
 * The additive attention mask value on padded keys (Devlin et al.'s reference code uses −10000).
 *
 * @example
 * ```ts
 * const additive = tf.mul(tf.sub(1, tf.cast(attentionMask, 'float32')), MASK_VALUE);
 * ```
 */
export const MASK_VALUE = -10000;
/** Offset between the model seed and the seed of its dropout random stream. */
const DROPOUT_SEED_OFFSET = 0x9e3779b9;

/**
 * The inputs of a BERT model (the batch format shared with `@fineprune/text`): int32 [B, L] each.
 * `tokenTypeIds` defaults to zeros and `attentionMask` to ones when left out.
 *
 * @example
 * ```ts
 * const x: BertInputs = {
 *   inputIds: tf.tensor2d([[101, 7592, 102, 0]], undefined, 'int32'),
 *   tokenTypeIds: tf.zeros([1, 4], 'int32'),
 *   attentionMask: tf.tensor2d([[1, 1, 1, 0]], undefined, 'int32'),
 * };
 * ```
 */
export interface BertInputs {
  /** Token ids, each in [0, vocabSize). */
  inputIds: tf.Tensor2D;
  /** Segment ids, each in [0, typeVocabSize). */
  tokenTypeIds?: tf.Tensor2D;
  /** 1 for real tokens, 0 for padding. */
  attentionMask?: tf.Tensor2D;
}

/**
 * One variable of a {@link BertModel}: our name, its Hugging Face name and layout.
 *
 * @example
 * ```ts
 * for (const { huggingFaceName, variable } of model.variables()) console.log(huggingFaceName, variable.shape);
 * ```
 */
export interface BertVariable extends NamedVariable {
  /** The name in a Hugging Face BERT checkpoint. */
  readonly huggingFaceName: string;
  /** True when the checkpoint stores the transpose ([out, in]) of this [in, out] kernel. */
  readonly transpose: boolean;
  readonly part: BertVariablePart;
}

/**
 * Options of {@link createBertModel}.
 *
 * @example
 * ```ts
 * const options: BertModelOptions = { config: bertBaseUncasedConfig, task: { type: 'span' }, seed: 1 };
 * ```
 */
export interface BertModelOptions {
  /** The encoder's hyper-parameters. */
  config: EncoderConfig;
  /** The task head. */
  task: BertTask;
  /**
   * Seed of the initialisation and of the dropout stream (default 0): the same seed gives the same
   * weights and, from the same dropout state, the same dropout masks.
   */
  seed?: number;
  /**
   * Freeze the embedding modules (word, position, token-type embeddings and their LayerNorm), as
   * Movement Pruning does. Default: true for `classification` and `span`, false for `mlm`.
   */
  freezeEmbeddings?: boolean;
  /** A name for reports; default `bert-<task>`. */
  name?: string;
  /**
   * Inference only: functions that compute prunable projections in place of `dense(x, W ⊙ M, b)`,
   * by parameter name (`layer_0/attention/query/kernel`, …): for example sparse kernels over the
   * kept weights of a compact export. Each must return x·W + b, [rows, out]. Training
   * (`{ training: true }`) ignores them.
   */
  projections?: ReadonlyMap<string, ProjectionFunction>;
}

/** Checks that every name of `projections` is a prunable projection of the model. */
function checkProjections(
  projections: ReadonlyMap<string, ProjectionFunction> | undefined,
  parameters: ReadonlyMap<string, PrunableParameter>,
): ReadonlyMap<string, ProjectionFunction> | undefined {
  if (projections === undefined) return undefined;
  for (const [name, projection] of projections) {
    if (!parameters.has(name) || typeof projection !== 'function') {
      throw invalidInput(
        `projections names ${JSON.stringify(name.slice(0, 200))}, which is not a prunable projection of this model, or maps it to something other than a function.`,
        `Key projections by parameter name, such as ${JSON.stringify([...parameters.keys()][0])}, and map each to x => x·W + b.`,
      );
    }
  }
  return projections;
}

/**
 * A BERT encoder with a task head, prunable: `parameters()` are the six projections of every layer.
 *
 * Outputs of `forward`: `classification` → logits [B, numLabels]; `span` → `[startLogits [B, L],
 * endLogits [B, L]]` (padding positions get −10000 added); `mlm` → the hidden states [B, L, H]: the
 * masked positions are in the targets, so `loss` (inside the gradient tape) and {@link BertModel.mlmLogits}
 * run the MLM head on those B·P rows only.
 *
 * @example
 * ```ts
 * const model = createBertModel({ config, task: { type: 'classification', numLabels: 2 }, seed: 1 });
 * const logits = model.forward({ inputIds, tokenTypeIds, attentionMask }, { training: false }) as tf.Tensor2D;
 * const loss = model.loss(logits, { x, y: labels });
 * model.dispose();
 * ```
 */
export interface BertModel extends PrunableModel {
  readonly config: Readonly<EncoderConfig>;
  readonly task: BertTask;
  /** Whether the embedding modules are frozen. */
  readonly embeddingsFrozen: boolean;
  /** Every variable, in layout order, with its Hugging Face name. */
  variables(): readonly BertVariable[];
  /**
   * mlm models only: vocabulary logits [B, P, vocabSize] at `maskedPositions` (int32 [B, P]) of the
   * hidden states that `forward` returned. Gathers the B·P rows first, then transform dense +
   * activation + LayerNorm and the decoder tied to the word embeddings, plus the output bias.
   */
  mlmLogits(hidden: tf.Tensor, maskedPositions: tf.Tensor): tf.Tensor3D;
  /** The encoder's last hidden states, [B, L, H] (no head). */
  encode(x: BertInputs, options: { training: boolean }): tf.Tensor3D;
  /** State of the dropout random stream (four 32-bit words), for checkpoints. */
  dropoutState(): number[];
  /** Restores a state from {@link BertModel.dropoutState}. */
  setDropoutState(state: number[]): void;
  /**
   * Copies the embeddings, every layer (weights and masks) and, when both models have one, the
   * pooler from `other`: starts a classifier from an MLM-trained encoder (the transfer setting).
   * The task head keeps its own initialisation.
   */
  copyEncoderFrom(other: BertModel): void;
  /** Frees every variable and mask. */
  dispose(): void;
}

function invalidInput(message: string, fix: string, details?: Record<string, unknown>): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message,
    fix,
    ...(details ? { details } : {}),
  });
}

function isTensor(value: unknown): value is tf.Tensor {
  return value instanceof tf.Tensor;
}

/**
 * Int tensors whose values were already checked against a range, with that range: tensors are
 * immutable, so a batch used twice (a forward pass, then the loss and an accuracy on the same
 * labels) is read once. This also keeps the check from reading a tensor back synchronously after a
 * GPU backend has uploaded it (which `dataSync` cannot do in Node on webgpu).
 */
const checkedValues = new WeakMap<tf.Tensor, { min: number; max: number }>();

/**
 * The values of an int tensor when they can be read synchronously: always on the cpu and wasm
 * backends (main memory); on GPU backends (webgpu, webgl) only while the tensor has not been
 * uploaded yet — as with batches made from typed arrays, which is how batches reach a model. A
 * synchronous read-back of GPU data stalls a browser's GPU pipeline and is not implemented at all
 * by tfjs-backend-webgpu in Node (it needs OffscreenCanvas), so such tensors are not read.
 */
function hostValues(value: tf.Tensor): Int32Array | undefined {
  const name = tf.getBackend();
  if (name === 'cpu' || name === 'wasm') return value.dataSync() as Int32Array;
  const backend = tf.backend() as unknown as {
    tensorMap?: { get(dataId: unknown): { values?: unknown } | undefined };
  };
  const values = backend.tensorMap?.get?.(value.dataId)?.values;
  return values instanceof Int32Array ? values : undefined;
}

/** Checks an int32 tensor of a given shape and the range of its values. */
function checkIntTensor(
  label: string,
  value: unknown,
  shape: readonly number[] | undefined,
  range: { min: number; max: number; fix: string },
): tf.Tensor {
  if (!isTensor(value)) {
    throw invalidInput(
      `${label} must be a tf.Tensor, got ${value === null ? 'null' : typeof value}.`,
      `Pass ${label} as an int32 tensor.`,
    );
  }
  if (value.isDisposed) {
    throw new FinepruneError({
      code: ErrorCodes.DISPOSED,
      message: `${label} was disposed before the model read it.`,
      fix: 'Keep the batch tensors alive until the step or forward pass has finished.',
    });
  }
  if (value.dtype !== 'int32') {
    throw invalidInput(
      `${label} must be int32, got ${value.dtype}.`,
      `Create it with tf.tensor(values, shape, 'int32') or cast it with tf.cast(${label}, 'int32').`,
      { dtype: value.dtype },
    );
  }
  if (shape !== undefined && !tf.util.arraysEqual(value.shape, [...shape])) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `${label} has shape [${value.shape}] but [${shape}] was expected.`,
      fix: 'Give every per-token tensor of a batch the shape of inputIds, [batch, length].',
      details: { shape: value.shape, expected: shape },
    });
  }
  const known = checkedValues.get(value);
  if (known !== undefined && known.min >= range.min && known.max <= range.max) return value;
  const values = hostValues(value);
  // Already on a GPU: not readable synchronously (see hostValues), so left unchecked.
  if (values === undefined) return value;
  for (let index = 0; index < values.length; index += 1) {
    const v = values[index]!;
    if (v < range.min || v > range.max) {
      throw invalidInput(
        `${label} holds ${v} at flat index ${index}, outside [${range.min}, ${range.max}].`,
        range.fix,
        { value: v, index },
      );
    }
  }
  checkedValues.set(value, { min: range.min, max: range.max });
  return value;
}

interface CheckedInputs {
  ids: tf.Tensor2D;
  types: tf.Tensor2D | undefined;
  mask: tf.Tensor2D | undefined;
  batch: number;
  length: number;
}

function checkInputs(x: unknown, config: EncoderConfig): CheckedInputs {
  if (typeof x !== 'object' || x === null || isTensor(x) || Array.isArray(x)) {
    throw invalidInput(
      'A BERT model takes x = { inputIds, tokenTypeIds, attentionMask } (int32 [B, L] tensors).',
      'Build batches with @fineprune/text, or pass an object of int32 tensors named inputIds, tokenTypeIds and attentionMask.',
    );
  }
  const record = x as Record<string, unknown>;
  const ids = record.inputIds;
  if (!isTensor(ids) || ids.rank !== 2) {
    throw invalidInput(
      `x.inputIds must be an int32 [batch, length] tensor, got ${isTensor(ids) ? `shape [${ids.shape}]` : typeof ids}.`,
      'Pass token ids of shape [batch, length].',
    );
  }
  const [batch, length] = ids.shape as [number, number];
  if (batch === 0 || length === 0) {
    throw invalidInput(
      `x.inputIds has shape [${ids.shape}]; a batch needs at least one sequence of at least one token.`,
      'Pass a non-empty batch.',
    );
  }
  if (length > config.maxPositions) {
    throw invalidInput(
      `The sequences have ${length} tokens but the position embedding covers ${config.maxPositions}.`,
      `Truncate sequences to maxPositions (${config.maxPositions}) tokens, or use a config with more positions.`,
      { length, maxPositions: config.maxPositions },
    );
  }
  checkIntTensor('x.inputIds', ids, undefined, {
    min: 0,
    max: config.vocabSize - 1,
    fix: `Token ids must be in [0, ${config.vocabSize}); use the tokenizer that matches the model's vocabulary.`,
  });
  const types =
    record.tokenTypeIds === undefined
      ? undefined
      : (checkIntTensor('x.tokenTypeIds', record.tokenTypeIds, ids.shape, {
          min: 0,
          max: config.typeVocabSize - 1,
          fix: `Segment ids must be in [0, ${config.typeVocabSize}).`,
        }) as tf.Tensor2D);
  const mask =
    record.attentionMask === undefined
      ? undefined
      : (checkIntTensor('x.attentionMask', record.attentionMask, ids.shape, {
          min: 0,
          max: 1,
          fix: 'Use 1 for real tokens and 0 for padding.',
        }) as tf.Tensor2D);
  return { ids: ids as tf.Tensor2D, types, mask, batch, length };
}

function targetError(task: BertTask, detail: string): FinepruneError {
  const expected =
    task.type === 'classification'
      ? 'y = int32 labels [B]'
      : task.type === 'span'
        ? 'y = [start int32 [B], end int32 [B]]'
        : 'y = [maskedPositions int32 [B, P], maskedIds int32 [B, P], maskedWeights float32 [B, P]]';
  return invalidInput(`The ${task.type} targets do not fit: ${detail}`, `Pass ${expected}.`);
}

/**
 * Builds a BERT model with a task head. Matrices start as truncated normal(0, initializerRange)
 * draws, biases at 0, LayerNorm γ at 1 and β at 0; each matrix has its own seed, drawn in layout
 * order from `createRandom(seed)`, so the same seed gives the same weights on every backend.
 *
 * @param options - config, task, seed, freezeEmbeddings, name
 * @returns the model; call `dispose()` when done
 * @throws FinepruneError `INVALID_ARGUMENT` for a bad config, task or seed
 *
 * @example
 * ```ts
 * const model = createBertModel({
 *   config: { ...bertBaseUncasedConfig, vocabSize: 1000, hiddenSize: 64, numLayers: 2, numHeads: 2, intermediateSize: 128, maxPositions: 64 },
 *   task: { type: 'classification', numLabels: 2 },
 *   seed: 42,
 * });
 * model.parameters().map((p) => p.name); // ['layer_0/attention/query/kernel', …]
 * ```
 */
export function createBertModel(options: BertModelOptions): BertModel {
  if (typeof options !== 'object' || options === null) {
    throw invalidInput(
      'createBertModel() needs an options object.',
      "Pass { config, task: { type: 'classification', numLabels: 2 } }.",
    );
  }
  const config = validateConfig(options.config);
  const task = validateTask(options.task);
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) {
    throw invalidInput(
      `The model seed must be a safe integer, got ${seed}.`,
      'Pass an integer seed such as 42.',
    );
  }
  const freezeEmbeddings = options.freezeEmbeddings ?? task.type !== 'mlm';
  if (typeof freezeEmbeddings !== 'boolean') {
    throw invalidInput(
      `freezeEmbeddings must be a boolean, got ${JSON.stringify(freezeEmbeddings)}.`,
      'Pass true to freeze the embeddings (as Movement Pruning does) or false to train them.',
    );
  }
  const layout = bertLayout(config, task);
  const initRandom = createRandom(seed);
  const dropoutRandom: RandomSource = createRandom(seed + DROPOUT_SEED_OFFSET);

  const entries: BertVariable[] = [];
  const byName = new Map<string, tf.Variable>();
  try {
    for (const item of layout) {
      const variable = tf.tidy(() => {
        const shape = [...item.shape];
        const initial =
          item.init === 'normal'
            ? tf.truncatedNormal(shape, 0, config.initializerRange, 'float32', initRandom.nextUint32())
            : item.init === 'ones'
              ? tf.ones(shape)
              : tf.zeros(shape);
        return tf.variable(initial, true);
      });
      byName.set(item.name, variable);
      entries.push(
        Object.freeze({
          name: item.name,
          variable,
          huggingFaceName: item.huggingFaceName,
          transpose: item.transpose,
          part: item.part,
        }),
      );
    }
  } catch (error) {
    tf.dispose([...byName.values()]);
    throw error;
  }

  const parameters: PrunableParameter[] = layout
    .filter((item): item is BertLayoutEntry & { prunableGroup: string } => item.prunableGroup !== undefined)
    .map((item) =>
      createPrunableParameter({
        name: item.name,
        group: item.prunableGroup,
        kind: 'dense',
        weight: byName.get(item.name)!,
      }),
    );
  const parameterByName = new Map(parameters.map((parameter) => [parameter.name, parameter]));
  const structures = bertStructures(config);
  const trainable = entries.filter((item) => !(freezeEmbeddings && item.part === 'embeddings'));
  const frozen = entries.filter((item) => freezeEmbeddings && item.part === 'embeddings');
  let disposed = false;

  const assertLive = () => {
    if (disposed) {
      throw new FinepruneError({
        code: ErrorCodes.DISPOSED,
        message: 'This BERT model was disposed.',
        fix: 'Create a new model with createBertModel().',
      });
    }
  };
  const v = (name: string) => byName.get(name)!;
  const v1 = (name: string) => byName.get(name)! as unknown as tf.Tensor1D;
  const v2 = (name: string) => byName.get(name)! as unknown as tf.Tensor2D;
  const projections = checkProjections(options.projections, parameterByName);
  /**
   * A prunable projection (`layer_i/...`): the caller's function at inference; else x·(W ⊙ M) + b
   * by `maskedDense` when the weight is W ⊙ M (it keeps no copy of the product for the backward
   * pass), by `dense` on the effective weight otherwise (soft and learned-gate masks).
   */
  const projectionOf = (name: string, training: boolean): Projection => {
    const custom = !training ? projections?.get(`${name}/kernel`) : undefined;
    if (custom) return custom;
    const parameter = parameterByName.get(`${name}/kernel`)!;
    const bias = v1(`${name}/bias`);
    const factors = parameter.maskedFactors?.();
    if (!factors) return { kernel: parameter.effectiveWeight() as tf.Tensor2D, bias };
    return (hidden) => maskedDense(hidden, factors.weight as tf.Tensor2D, factors.mask, bias, factors.scores);
  };
  const activation = config.hiddenActivation === 'gelu' ? gelu : geluTanh;
  /**
   * The feed-forward's first projection and its activation. Exact GELU after a W ⊙ M projection is
   * maskedDense's own activation (one kernel with the product on WebGPU); otherwise GELU after it.
   */
  const intermediateOf = (name: string, hidden: tf.Tensor2D, training: boolean): tf.Tensor2D => {
    const factors = parameterByName.get(`${name}/kernel`)!.maskedFactors?.();
    const custom = !training && projections?.has(`${name}/kernel`);
    if (!factors || custom || config.hiddenActivation !== 'gelu')
      return activation(applyProjection(projectionOf(name, training), hidden));
    return maskedDense(
      hidden,
      factors.weight as tf.Tensor2D,
      factors.mask,
      v1(`${name}/bias`),
      factors.scores,
      {
        activation: 'gelu',
      },
    );
  };
  const dropout = <T extends tf.Tensor>(x: T, rate: number, training: boolean): T =>
    training && rate > 0 ? seededDropout(x, rate, dropoutRandom.nextUint32()) : x;

  /**
   * Self-attention of layer `i` through its output projection, [B·L, H]. A layer that lost every
   * head adds only the output bias. Must run inside a tidy.
   */
  function attention(
    i: number,
    hidden: tf.Tensor2D,
    inputs: CheckedInputs,
    additiveMask: tf.Tensor | undefined,
    training: boolean,
  ): tf.Tensor2D {
    const p = `layer_${i}/attention`;
    const heads = layerHeads(config, i);
    if (heads === 0)
      return tf.broadcastTo(v1(`${p}/output/bias`), [inputs.batch * inputs.length, config.hiddenSize]);
    const projection = (name: string) => projectionOf(`${p}/${name}`, training);
    const context = multiHeadAttention({
      hidden,
      batch: inputs.batch,
      length: inputs.length,
      heads,
      headSize: config.hiddenSize / config.numHeads,
      query: projection('query'),
      key: projection('key'),
      value: projection('value'),
      ...(additiveMask ? { additiveMask } : {}),
      dropProbabilities: (probabilities) => dropout(probabilities, config.attentionDropout, training),
    });
    return applyProjection(projection('output'), context);
  }

  /** Hidden states [B·L, H] after the last layer. Must run inside a tidy. */
  function encodeFlat(inputs: CheckedInputs, training: boolean): tf.Tensor2D {
    const { batch: B, length: L } = inputs;
    const H = config.hiddenSize;
    if (tf.getBackend() === 'wasm' && !freezeEmbeddings) registerWasmTrainingKernels();
    // Embeddings (Devlin et al. 2019, Sec. 3, Fig. 2): word + position + token type → LayerNorm → dropout.
    const flatIds = tf.reshape(inputs.ids, [B * L]);
    const words = gatherRows(v2('embeddings/word_embeddings'), flatIds as tf.Tensor1D);
    const types = gatherRows(
      v2('embeddings/token_type_embeddings'),
      (inputs.types ? tf.reshape(inputs.types, [B * L]) : tf.zeros([B * L], 'int32')) as tf.Tensor1D,
    );
    const positions = tf.slice(v('embeddings/position_embeddings'), [0, 0], [L, H]);
    const summed = tf.reshape(tf.add(tf.reshape(tf.add(words, types), [B, L, H]), positions), [B * L, H]);
    let hidden = dropout(
      layerNorm(
        summed as tf.Tensor2D,
        v1('embeddings/layer_norm/gamma'),
        v1('embeddings/layer_norm/beta'),
        config.layerNormEpsilon,
      ),
      config.hiddenDropout,
      training,
    );
    // Additive mask (1 − m)·(−10000) on the keys, [B, 1, 1, L].
    const additiveMask = inputs.mask
      ? tf.reshape(tf.mul(tf.sub(1, tf.cast(inputs.mask, 'float32')), MASK_VALUE), [B, 1, 1, L])
      : undefined;
    for (let i = 0; i < config.numLayers; i += 1) {
      const p = `layer_${i}`;
      const attended = dropout(
        attention(i, hidden, inputs, additiveMask, training),
        config.hiddenDropout,
        training,
      );
      const afterAttention = layerNorm(
        tf.add(attended, hidden),
        v1(`${p}/attention/layer_norm/gamma`),
        v1(`${p}/attention/layer_norm/beta`),
        config.layerNormEpsilon,
      );
      // Position-wise feed-forward: H → I → GELU → H, dropout, residual, LayerNorm.
      const intermediate = intermediateOf(`${p}/ffn/intermediate`, afterAttention, training);
      const output = dropout(
        applyProjection(projectionOf(`${p}/ffn/output`, training), intermediate),
        config.hiddenDropout,
        training,
      );
      hidden = layerNorm(
        tf.add(output, afterAttention),
        v1(`${p}/ffn/layer_norm/gamma`),
        v1(`${p}/ffn/layer_norm/beta`),
        config.layerNormEpsilon,
      );
    }
    return hidden;
  }

  function checkTraining(options: { training: boolean } | undefined): boolean {
    const training = (options as { training?: unknown } | undefined)?.training;
    if (typeof training !== 'boolean') {
      throw invalidInput(
        'forward() needs { training: boolean }.',
        'Pass { training: true } while training (dropout on) and { training: false } to evaluate.',
      );
    }
    return training;
  }

  function forward(x: ModelInput, options: { training: boolean }): ModelOutput {
    assertLive();
    const training = checkTraining(options);
    const inputs = checkInputs(x, config);
    const { batch: B, length: L } = inputs;
    const H = config.hiddenSize;
    return tf.tidy(() => {
      const hidden = encodeFlat(inputs, training);
      if (task.type === 'classification') {
        // Pooler: dense + tanh on the [CLS] (first) position (Devlin et al. 2019, Sec. 3, reference code), dropout, classifier.
        const first = tf.reshape(tf.slice(tf.reshape(hidden, [B, L, H]), [0, 0, 0], [B, 1, H]), [B, H]);
        const pooled = tf.tanh(dense(first as tf.Tensor2D, v2('pooler/kernel'), v1('pooler/bias')));
        return dense(
          dropout(pooled, config.hiddenDropout, training),
          v2('classifier/kernel'),
          v1('classifier/bias'),
        );
      }
      if (task.type === 'span') {
        const logits = tf.reshape(dense(hidden, v2('qa_outputs/kernel'), v1('qa_outputs/bias')), [B, L, 2]);
        const padding = inputs.mask
          ? tf.mul(tf.sub(1, tf.cast(inputs.mask, 'float32')), MASK_VALUE)
          : tf.zeros([B, L]);
        const pick = (column: number) =>
          tf.add(tf.reshape(tf.slice(logits, [0, 0, column], [B, L, 1]), [B, L]), padding);
        return [pick(0), pick(1)];
      }
      // mlm: the sequence output; the head runs in mlmLogits()/loss() on the masked positions only.
      return tf.reshape(hidden, [B, L, H]);
    });
  }

  function mlmLogits(hidden: tf.Tensor, maskedPositions: tf.Tensor): tf.Tensor3D {
    assertLive();
    if (task.type !== 'mlm') {
      throw invalidInput(
        `mlmLogits() needs a model with an mlm head; this one has a ${task.type} head.`,
        "Create the model with task { type: 'mlm', maxPredictions }.",
      );
    }
    if (!isTensor(hidden) || hidden.rank !== 3 || hidden.shape[2] !== config.hiddenSize) {
      throw invalidInput(
        `mlmLogits() needs the hidden states [B, L, ${config.hiddenSize}] from forward(), got ${isTensor(hidden) ? `[${hidden.shape}]` : typeof hidden}.`,
        'Pass the output of model.forward(x, …) of this mlm model.',
      );
    }
    const [B, L, H] = hidden.shape as [number, number, number];
    checkIntTensor('maskedPositions', maskedPositions, undefined, {
      min: 0,
      max: L - 1,
      fix: `Masked positions index tokens of the sequence, in [0, ${L}).`,
    });
    if (maskedPositions.rank !== 2 || maskedPositions.shape[0] !== B) {
      throw new FinepruneError({
        code: ErrorCodes.SHAPE_MISMATCH,
        message: `maskedPositions has shape [${maskedPositions.shape}] but [${B}, P] was expected.`,
        fix: 'Pass int32 positions [batch, predictions], padded with 0 and weight 0 where a sequence has fewer.',
      });
    }
    const P = maskedPositions.shape[1]!;
    if (P > task.maxPredictions) {
      throw invalidInput(
        `The batch has ${P} masked positions per sequence but the model was built for at most ${task.maxPredictions}.`,
        `Create the model with maxPredictions ≥ ${P}, or mask fewer tokens.`,
      );
    }
    return tf.tidy(() => {
      // Flat gather on [B·L, H] at b·L + position, so the vocabulary projection runs on B·P rows.
      const offsets = tf.reshape(tf.mul(tf.range(0, B, 1, 'int32'), tf.scalar(L, 'int32')), [B, 1]);
      const rows = tf.reshape(tf.add(maskedPositions, offsets), [B * P]);
      const selected = tf.gather(tf.reshape(hidden, [B * L, H]), rows) as tf.Tensor2D;
      // Transform: dense + activation + LayerNorm; decoder tied to the word embeddings (Devlin et al. 2019, App. A.2).
      const transformed = layerNorm(
        activation(dense(selected, v2('mlm/transform/kernel'), v1('mlm/transform/bias'))),
        v1('mlm/transform/layer_norm/gamma'),
        v1('mlm/transform/layer_norm/beta'),
        config.layerNormEpsilon,
      );
      const decoder = tf.transpose(v('embeddings/word_embeddings')) as tf.Tensor2D; // [H, V], explicit for wasm
      const logits = dense(transformed, decoder, v1('mlm/output_bias'));
      return tf.reshape(logits, [B, P, config.vocabSize]) as tf.Tensor3D;
    });
  }

  function loss(outputs: ModelOutput, batch: Batch): tf.Scalar {
    assertLive();
    const y = (batch as Batch | undefined)?.y;
    if (task.type === 'classification') {
      const logits = outputs as tf.Tensor2D;
      if (!isTensor(logits) || logits.rank !== 2 || logits.shape[1] !== task.numLabels) {
        throw targetError(task, 'the outputs are not logits [B, numLabels] from this model.');
      }
      if (!isTensor(y)) throw targetError(task, 'y is not a tensor.');
      checkIntTensor('y (labels)', y, [logits.shape[0]!], {
        min: 0,
        max: task.numLabels - 1,
        fix: `Labels must be class indices in [0, ${task.numLabels}).`,
      });
      // Mean softmax cross-entropy over the batch (Devlin et al. 2019, Sec. 4.1: log softmax(C·Wᵀ)).
      return tf.tidy(() => tf.mean(rowCrossEntropy(logits, y as tf.Tensor1D)) as tf.Scalar);
    }
    if (task.type === 'span') {
      if (!Array.isArray(outputs) || outputs.length !== 2) {
        throw targetError(task, 'the outputs are not [startLogits, endLogits] from this model.');
      }
      if (!Array.isArray(y) || y.length !== 2) throw targetError(task, 'y is not a pair of tensors.');
      const [startLogits, endLogits] = outputs as [tf.Tensor2D, tf.Tensor2D];
      const [B, L] = startLogits.shape;
      for (const [label, target] of [
        ['y[0] (start)', y[0]],
        ['y[1] (end)', y[1]],
      ] as const) {
        checkIntTensor(label, target, [B], {
          min: 0,
          max: L - 1,
          fix: `Span positions index tokens of the sequence, in [0, ${L}).`,
        });
      }
      // (CE_start + CE_end)/2, each averaged over the batch (Devlin et al. 2019, Sec. 4.2; halved as HF's BertForQuestionAnswering does).
      return tf.tidy(
        () =>
          tf.div(
            tf.add(
              tf.mean(rowCrossEntropy(startLogits, y[0] as tf.Tensor1D)),
              tf.mean(rowCrossEntropy(endLogits, y[1] as tf.Tensor1D)),
            ),
            2,
          ) as tf.Scalar,
      );
    }
    if (!Array.isArray(y) || y.length !== 3) {
      throw targetError(task, 'y is not [maskedPositions, maskedIds, maskedWeights].');
    }
    const [positions, ids, weights] = y as [tf.Tensor, tf.Tensor, tf.Tensor];
    if (!isTensor(outputs)) throw targetError(task, 'the outputs are not the hidden states of this model.');
    if (!isTensor(positions) || positions.rank !== 2) {
      throw targetError(task, 'maskedPositions is not an int32 [B, P] tensor.');
    }
    checkIntTensor('y[1] (maskedIds)', ids, positions.shape, {
      min: 0,
      max: config.vocabSize - 1,
      fix: `Masked token ids must be in [0, ${config.vocabSize}).`,
    });
    if (
      !isTensor(weights) ||
      weights.dtype !== 'float32' ||
      !tf.util.arraysEqual(weights.shape, positions.shape)
    ) {
      throw targetError(
        task,
        `maskedWeights must be float32 [${positions.shape}], got ${isTensor(weights) ? `${weights.dtype} [${weights.shape}]` : typeof weights}.`,
      );
    }
    return tf.tidy(() => {
      const logits = mlmLogits(outputs, positions);
      const [B, P, V] = logits.shape;
      const perRow = rowCrossEntropy(tf.reshape(logits, [B * P, V]), tf.reshape(ids, [B * P]));
      const w = tf.reshape(weights, [B * P]);
      // Σ w·CE / max(Σ w, 1): the weighted mean of BERT's run_pretraining.py, guarded against Σ w = 0.
      return tf.div(tf.sum(tf.mul(perRow, w)), tf.maximum(tf.sum(w), 1)) as tf.Scalar;
    });
  }

  const model: BertModel = {
    specVersion: SPEC_VERSION,
    name: options.name ?? `bert-${task.type}`,
    config,
    task,
    embeddingsFrozen: freezeEmbeddings,
    parameters: () => parameters,
    structures: () => structures,
    forward,
    loss,
    mlmLogits,
    trainableVariables: () => trainable,
    frozenVariables: () => frozen,
    variables: () => entries,
    encode(x, options) {
      assertLive();
      const training = checkTraining(options);
      const inputs = checkInputs(x, config);
      return tf.tidy(
        () =>
          tf.reshape(encodeFlat(inputs, training), [
            inputs.batch,
            inputs.length,
            config.hiddenSize,
          ]) as tf.Tensor3D,
      );
    },
    dropoutState: () => dropoutRandom.state(),
    setDropoutState: (state) => dropoutRandom.setState(state),
    copyEncoderFrom(other) {
      assertLive();
      copyEncoder(model, other);
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      tf.dispose([...byName.values(), ...parameters.map((parameter) => parameter.mask)]);
    },
  };
  return model;
}

/** The encoder sizes two models must share for {@link BertModel.copyEncoderFrom}. */
const ENCODER_KEYS = [
  'vocabSize',
  'hiddenSize',
  'numLayers',
  'numHeads',
  'intermediateSize',
  'maxPositions',
  'typeVocabSize',
] as const;

function copyEncoder(target: BertModel, source: BertModel): void {
  const different = ENCODER_KEYS.filter((key) => target.config[key] !== source.config[key]).map(
    (key) => `${key} (${source.config[key]} → ${target.config[key]})`,
  );
  for (const key of ['prunedHeads', 'intermediateSizes'] as const) {
    const from = JSON.stringify(source.config[key] ?? null);
    const to = JSON.stringify(target.config[key] ?? null);
    if (from !== to) different.push(`${key} (${from.slice(0, 100)} → ${to.slice(0, 100)})`);
  }
  if (different.length > 0) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `The encoders differ in ${different.join(', ')}.`,
      fix: 'Copy between models built from the same encoder config; only the task head may differ.',
      details: { different },
    });
  }
  const sources = new Map(source.variables().map((entry) => [entry.name, entry.variable]));
  const sourceMasks = new Map(source.parameters().map((parameter) => [parameter.name, parameter.mask]));
  tf.tidy(() => {
    for (const entry of target.variables()) {
      if (entry.part === 'head') continue;
      const from = sources.get(entry.name);
      if (from === undefined) continue; // a pooler only the target has keeps its initialisation
      entry.variable.assign(from);
    }
    for (const parameter of target.parameters()) {
      const mask = sourceMasks.get(parameter.name);
      if (mask !== undefined) parameter.mask.assign(mask);
    }
  });
}

/**
 * Weighted accuracy of masked-token predictions: Σ w·[argmax logits = id] / max(Σ w, 1), with the
 * number of weighted predictions.
 *
 * @param model - an mlm model
 * @param hidden - the hidden states its `forward` returned, [B, L, H]
 * @param targets - the batch targets `[maskedPositions, maskedIds, maskedWeights]`
 * @returns the accuracy and the total weight Σ w
 * @throws FinepruneError `INVALID_ARGUMENT` when the model has no mlm head or the targets do not fit
 *
 * @example
 * ```ts
 * const hidden = model.forward(batch.x, { training: false }) as tf.Tensor3D;
 * const { accuracy } = await mlmAccuracy(model, hidden, batch.y as tf.Tensor[]);
 * ```
 */
export async function mlmAccuracy(
  model: BertModel,
  hidden: tf.Tensor,
  targets: readonly tf.Tensor[],
): Promise<{ accuracy: number; weight: number }> {
  if (!Array.isArray(targets) || targets.length !== 3) {
    throw invalidInput(
      'mlmAccuracy() needs the targets [maskedPositions, maskedIds, maskedWeights].',
      'Pass batch.y of an mlm batch.',
    );
  }
  const [positions, ids, weights] = targets as [tf.Tensor, tf.Tensor, tf.Tensor];
  const [hits, total] = tf.tidy(() => {
    const logits = model.mlmLogits(hidden, positions);
    const correct = tf.cast(tf.equal(tf.argMax(logits, 2), tf.cast(ids, 'int32')), 'float32');
    const w = tf.cast(weights, 'float32');
    return [tf.sum(tf.mul(correct, w)), tf.sum(w)];
  });
  const [hitValue, totalValue] = await Promise.all([hits.data(), total.data()]);
  tf.dispose([hits, total]);
  const weight = totalValue[0]!;
  return { accuracy: hitValue[0]! / Math.max(weight, 1), weight };
}
