/**
 * The encoder's hyper-parameters, their validation, and the mapping to and from Hugging Face's
 * `config.json` (BertConfig keys).
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * The feed-forward activation: exact GELU (erf form, Hugging Face `gelu`) or its tanh approximation.
 *
 * @example
 * ```ts
 * const activation: HiddenActivation = 'gelu';
 * ```
 */
export type HiddenActivation = 'gelu' | 'gelu_tanh';

/**
 * Hyper-parameters of a BERT encoder (Devlin et al., 2019).
 *
 * @example
 * ```ts
 * const tiny: EncoderConfig = { ...bertBaseUncasedConfig, vocabSize: 100, hiddenSize: 16, numLayers: 2,
 *   numHeads: 2, intermediateSize: 32, maxPositions: 32 };
 * validateConfig(tiny);
 * ```
 */
export interface EncoderConfig {
  /** Number of token ids (rows of the word embedding). */
  vocabSize: number;
  /** Width H of every hidden state; must be a multiple of `numHeads`. */
  hiddenSize: number;
  /** Number of transformer layers. */
  numLayers: number;
  /** Attention heads per layer; each head has H / numHeads dimensions. */
  numHeads: number;
  /** Width I of the feed-forward layer. */
  intermediateSize: number;
  /** Longest sequence the position embedding covers. */
  maxPositions: number;
  /** Number of segment (token type) ids, 2 for BERT. */
  typeVocabSize: number;
  /** ε of every LayerNorm, 1e-12 for BERT. */
  layerNormEpsilon: number;
  /** Feed-forward activation. */
  hiddenActivation: HiddenActivation;
  /** Dropout rate on embeddings and on each sub-layer's output, in [0, 1). */
  hiddenDropout: number;
  /** Dropout rate on the attention probabilities, in [0, 1). */
  attentionDropout: number;
  /** Standard deviation of the truncated-normal initialisation of matrices. */
  initializerRange: number;
  /**
   * A shrunk encoder's removed heads: for each layer, the indices (in `[0, numHeads)`, as in the
   * unpruned model) of the attention heads it no longer has, so layer `i` keeps
   * `numHeads − prunedHeads[i].length` heads of `hiddenSize / numHeads` dimensions each (a layer
   * may lose them all; its attention then adds only the output bias). Written to config.json as
   * Hugging Face's own `pruned_heads`. Absent: every layer has `numHeads` heads.
   */
  prunedHeads?: readonly (readonly number[])[];
  /**
   * A shrunk encoder's feed-forward width of each layer (each ≥ 1), in place of `intermediateSize`.
   * Written to config.json as `intermediate_sizes`. Absent: every layer has `intermediateSize`.
   */
  intermediateSizes?: readonly number[];
}

/**
 * The configuration of `bert-base-uncased`: 12 layers, hidden 768, 12 heads, intermediate 3072,
 * 30522 word pieces, 512 positions.
 *
 * @example
 * ```ts
 * const model = createBertModel({ config: bertBaseUncasedConfig, task: { type: 'classification', numLabels: 2 } });
 * ```
 */
export const bertBaseUncasedConfig: Readonly<EncoderConfig> = Object.freeze({
  vocabSize: 30522,
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  intermediateSize: 3072,
  maxPositions: 512,
  typeVocabSize: 2,
  layerNormEpsilon: 1e-12,
  hiddenActivation: 'gelu',
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
  initializerRange: 0.02,
});

function invalidConfig(message: string, fix: string, details?: Record<string, unknown>): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message,
    fix,
    ...(details ? { details } : {}),
  });
}

const INTEGER_KEYS = [
  'vocabSize',
  'hiddenSize',
  'numLayers',
  'numHeads',
  'intermediateSize',
  'maxPositions',
  'typeVocabSize',
] as const;

/** The most parameters an encoder may have: 2^31 (8 GiB of float32; bert-large has about 3.4e8). */
const MAX_PARAMETERS = 2 ** 31;

/**
 * The encoder's parameter count (without the task head), from the sizes alone, so that absurd
 * sizes are refused before any layout or tensor is made: embeddings (V + P + T)·H + 2H (LayerNorm);
 * per layer Q, K, V, O 4(H² + H), feed-forward H·I + I + I·H + H, two LayerNorms 4H.
 */
function parameterCount(config: EncoderConfig): number {
  const { vocabSize, maxPositions, typeVocabSize, hiddenSize: H, intermediateSize: I, numLayers } = config;
  const embeddings = (vocabSize + maxPositions + typeVocabSize) * H + 2 * H;
  const perLayer = 4 * (H * H + H) + 2 * H * I + I + H + 4 * H;
  return embeddings + numLayers * perLayer;
}

/**
 * The attention heads layer `layer` keeps: `numHeads` less its {@link EncoderConfig.prunedHeads}.
 *
 * @example
 * ```ts
 * layerHeads({ ...config, numHeads: 12, prunedHeads: [[0, 5], []] }, 0); // 10
 * ```
 */
export function layerHeads(config: EncoderConfig, layer: number): number {
  return config.numHeads - (config.prunedHeads?.[layer]?.length ?? 0);
}

/**
 * The feed-forward width of layer `layer`: its {@link EncoderConfig.intermediateSizes} entry, else
 * `intermediateSize`.
 *
 * @example
 * ```ts
 * layerIntermediateSize({ ...config, intermediateSizes: [100, 3072] }, 0); // 100
 * ```
 */
export function layerIntermediateSize(config: EncoderConfig, layer: number): number {
  return config.intermediateSizes?.[layer] ?? config.intermediateSize;
}

/** Checks `prunedHeads`: one list per layer of distinct head indices in [0, numHeads). */
function checkPrunedHeads(
  config: EncoderConfig,
  label = 'EncoderConfig.prunedHeads',
): readonly (readonly number[])[] | undefined {
  const lists = config.prunedHeads;
  if (lists === undefined) return undefined;
  const fix = `Give one list per layer (${config.numLayers}) of distinct head indices in [0, ${config.numHeads}), as shrinkBertModel() writes it.`;
  if (!Array.isArray(lists) || lists.length !== config.numLayers)
    throw invalidConfig(
      `${label} must list the removed heads of each of the ${config.numLayers} layers, got ${Array.isArray(lists) ? `${lists.length} lists` : typeof lists}.`,
      fix,
      { key: 'prunedHeads' },
    );
  return Object.freeze(
    lists.map((heads, layer) => {
      const valid =
        Array.isArray(heads) &&
        heads.every((head) => Number.isSafeInteger(head) && head >= 0 && head < config.numHeads) &&
        new Set(heads).size === heads.length;
      if (!valid)
        throw invalidConfig(
          `${label}[${layer}] must hold distinct head indices in [0, ${config.numHeads}), got ${JSON.stringify(heads)?.slice(0, 200)}.`,
          fix,
          { key: 'prunedHeads', layer },
        );
      return Object.freeze([...heads].sort((a, b) => a - b));
    }),
  );
}

/** Checks `intermediateSizes`: one positive width per layer. */
function checkIntermediateSizes(
  config: EncoderConfig,
  label = 'EncoderConfig.intermediateSizes',
): readonly number[] | undefined {
  const sizes = config.intermediateSizes;
  if (sizes === undefined) return undefined;
  if (
    !Array.isArray(sizes) ||
    sizes.length !== config.numLayers ||
    !sizes.every((size) => Number.isSafeInteger(size) && size >= 1)
  )
    throw invalidConfig(
      `${label} must give each of the ${config.numLayers} layers a feed-forward width ≥ 1, got ${JSON.stringify(sizes)?.slice(0, 200)}.`,
      `Give one whole number ≥ 1 per layer (at most intermediateSize, ${config.intermediateSize}), as shrinkBertModel() writes it.`,
      { key: 'intermediateSizes' },
    );
  const widest = Math.max(...sizes);
  if (widest > config.intermediateSize)
    throw invalidConfig(
      `${label} has a layer of width ${widest}, wider than intermediateSize (${config.intermediateSize}).`,
      'A shrunk layer is never wider than the model it came from; set intermediateSize to the unpruned width.',
      { key: 'intermediateSizes' },
    );
  return Object.freeze([...sizes]);
}

/**
 * Checks every field of an {@link EncoderConfig} and returns a frozen copy.
 *
 * @param config - the configuration to check
 * @returns the same values, frozen
 * @throws FinepruneError `INVALID_ARGUMENT` naming the first bad field (sizes must be positive
 *   integers describing at most 2^31 parameters, `hiddenSize` a multiple of `numHeads`, dropouts in [0, 1), ε and the init range
 *   positive and finite, the activation `gelu` or `gelu_tanh`)
 *
 * @example
 * ```ts
 * validateConfig({ ...bertBaseUncasedConfig, numHeads: 7 }); // throws: 768 is not a multiple of 7
 * ```
 */
export function validateConfig(config: EncoderConfig): Readonly<EncoderConfig> {
  if (typeof config !== 'object' || config === null) {
    throw invalidConfig(
      `An encoder config must be an object, got ${config === null ? 'null' : typeof config}.`,
      'Pass an EncoderConfig such as { ...bertBaseUncasedConfig, numLayers: 2 }.',
    );
  }
  for (const key of INTEGER_KEYS) {
    const value = config[key];
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw invalidConfig(
        `EncoderConfig.${key} must be a positive integer, got ${JSON.stringify(value)}.`,
        `Set ${key} to a whole number of 1 or more (bert-base-uncased uses ${bertBaseUncasedConfig[key]}).`,
        { key, value },
      );
    }
  }
  const parameters = parameterCount(config);
  if (parameters > MAX_PARAMETERS) {
    throw invalidConfig(
      `EncoderConfig describes an encoder of about ${parameters.toExponential(2)} parameters (vocabSize ${config.vocabSize}, hiddenSize ${config.hiddenSize}, numLayers ${config.numLayers}, intermediateSize ${config.intermediateSize}), more than the 2^31 this package builds.`,
      'Check the sizes (a config.json from a damaged or hand-edited checkpoint?); bert-large has about 3.4e8 parameters.',
      { parameters },
    );
  }
  if (config.hiddenSize % config.numHeads !== 0) {
    throw invalidConfig(
      `EncoderConfig.hiddenSize (${config.hiddenSize}) is not a multiple of numHeads (${config.numHeads}), so the heads cannot split the hidden state evenly.`,
      'Choose numHeads that divides hiddenSize (for example 768 and 12).',
      { hiddenSize: config.hiddenSize, numHeads: config.numHeads },
    );
  }
  for (const key of ['hiddenDropout', 'attentionDropout'] as const) {
    const value = config[key];
    if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
      throw invalidConfig(
        `EncoderConfig.${key} must be a rate in [0, 1), got ${JSON.stringify(value)}.`,
        `Use 0.1 as BERT does, or 0 to turn this dropout off.`,
        { key, value },
      );
    }
  }
  for (const key of ['layerNormEpsilon', 'initializerRange'] as const) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw invalidConfig(
        `EncoderConfig.${key} must be a positive finite number, got ${JSON.stringify(value)}.`,
        `Use BERT's value (${bertBaseUncasedConfig[key]}).`,
        { key, value },
      );
    }
  }
  if (config.hiddenActivation !== 'gelu' && config.hiddenActivation !== 'gelu_tanh') {
    throw invalidConfig(
      `EncoderConfig.hiddenActivation must be 'gelu' or 'gelu_tanh', got ${JSON.stringify(config.hiddenActivation)}.`,
      "Use 'gelu' (exact, erf form) as bert-base-uncased does.",
      { value: config.hiddenActivation },
    );
  }
  const copy: EncoderConfig = {
    vocabSize: config.vocabSize,
    hiddenSize: config.hiddenSize,
    numLayers: config.numLayers,
    numHeads: config.numHeads,
    intermediateSize: config.intermediateSize,
    maxPositions: config.maxPositions,
    typeVocabSize: config.typeVocabSize,
    layerNormEpsilon: config.layerNormEpsilon,
    hiddenActivation: config.hiddenActivation,
    hiddenDropout: config.hiddenDropout,
    attentionDropout: config.attentionDropout,
    initializerRange: config.initializerRange,
  };
  const prunedHeads = checkPrunedHeads(config);
  const intermediateSizes = checkIntermediateSizes(config);
  if (prunedHeads !== undefined) copy.prunedHeads = prunedHeads;
  if (intermediateSizes !== undefined) copy.intermediateSizes = intermediateSizes;
  return Object.freeze(copy);
}

/** Hugging Face `hidden_act` values and the activation each one means. */
const ACTIVATIONS_FROM_HF: Readonly<Record<string, HiddenActivation>> = {
  gelu: 'gelu',
  gelu_python: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
};

const REQUIRED_HF_KEYS = [
  'vocab_size',
  'hidden_size',
  'num_hidden_layers',
  'num_attention_heads',
  'intermediate_size',
] as const;

function numberKey(json: Record<string, unknown>, key: string, fallback?: number): number {
  const value = json[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number') {
    throw invalidConfig(
      `config.json key "${key}" must be a number, got ${value === undefined ? 'nothing' : JSON.stringify(value)}.`,
      `Use the config.json of a BERT checkpoint, which sets "${key}".`,
      { key, value },
    );
  }
  return value;
}

/**
 * Reads a Hugging Face BERT `config.json` object into an {@link EncoderConfig}. The five size keys
 * are required; the others default to BertConfig's defaults (512 positions, 2 token types,
 * ε = 1e-12, `gelu`, dropouts 0.1, init range 0.02). `hidden_act` `gelu`/`gelu_python` map to exact
 * GELU, `gelu_new`/`gelu_pytorch_tanh` to `gelu_tanh`. A shrunk encoder's per-layer sizes come from
 * Hugging Face's `pruned_heads` (`{ "<layer>": [removed head, …] }`) and from `intermediate_sizes`
 * (one feed-forward width per layer), both untrusted: a layer out of range, a head index outside
 * `[0, num_attention_heads)` or repeated, or a width list of the wrong length, below 1 or above
 * `intermediate_size` is refused with an error naming the key.
 *
 * @param json - the parsed config.json
 * @returns a validated config
 * @throws FinepruneError `INVALID_ARGUMENT` for a missing or non-numeric size key, an activation
 *   or position-embedding type this encoder does not implement, a `model_type` other than `bert`,
 *   or values that fail {@link validateConfig}
 *
 * @example
 * ```ts
 * const config = configFromHuggingFace(JSON.parse(readFileSync('bert-base-uncased/config.json', 'utf8')));
 * config.numLayers; // 12
 * ```
 */
export function configFromHuggingFace(json: Record<string, unknown>): Readonly<EncoderConfig> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalidConfig(
      'A Hugging Face config must be a JSON object.',
      'Pass the parsed contents of the checkpoint’s config.json.',
    );
  }
  if (json.model_type !== undefined && json.model_type !== 'bert') {
    throw invalidConfig(
      `config.json has model_type ${JSON.stringify(json.model_type)}; this encoder implements BERT only.`,
      'Use a BERT checkpoint (model_type "bert"), such as bert-base-uncased.',
      { modelType: json.model_type },
    );
  }
  const positionType = json.position_embedding_type;
  if (positionType !== undefined && positionType !== 'absolute') {
    throw invalidConfig(
      `config.json has position_embedding_type ${JSON.stringify(positionType)}; only "absolute" is implemented.`,
      'Use a checkpoint with absolute position embeddings (the BERT default).',
    );
  }
  for (const key of REQUIRED_HF_KEYS) numberKey(json, key);
  const act = json.hidden_act ?? 'gelu';
  const hiddenActivation = typeof act === 'string' ? ACTIVATIONS_FROM_HF[act] : undefined;
  if (hiddenActivation === undefined) {
    throw invalidConfig(
      `config.json has hidden_act ${JSON.stringify(act)}; this encoder implements ${Object.keys(ACTIVATIONS_FROM_HF).join(', ')}.`,
      'Use a checkpoint trained with GELU (bert-base-uncased uses "gelu").',
      { hiddenAct: act },
    );
  }
  const sizes = {
    vocabSize: numberKey(json, 'vocab_size'),
    hiddenSize: numberKey(json, 'hidden_size'),
    numLayers: numberKey(json, 'num_hidden_layers'),
    numHeads: numberKey(json, 'num_attention_heads'),
    intermediateSize: numberKey(json, 'intermediate_size'),
    maxPositions: numberKey(json, 'max_position_embeddings', 512),
    typeVocabSize: numberKey(json, 'type_vocab_size', 2),
    layerNormEpsilon: numberKey(json, 'layer_norm_eps', 1e-12),
    hiddenActivation,
    hiddenDropout: numberKey(json, 'hidden_dropout_prob', 0.1),
    attentionDropout: numberKey(json, 'attention_probs_dropout_prob', 0.1),
    initializerRange: numberKey(json, 'initializer_range', 0.02),
  };
  const prunedHeads = prunedHeadsFromHuggingFace(json.pruned_heads, sizes.numLayers);
  const config: EncoderConfig = {
    ...sizes,
    ...(prunedHeads !== undefined ? { prunedHeads } : {}),
    ...(json.intermediate_sizes !== undefined
      ? { intermediateSizes: json.intermediate_sizes as number[] }
      : {}),
  };
  // The per-layer fields first, so that their errors name the config.json keys.
  checkPrunedHeads(config, 'config.json key "pruned_heads": layer');
  checkIntermediateSizes(config, 'config.json key "intermediate_sizes"');
  return validateConfig(config);
}

/**
 * Hugging Face's `pruned_heads` (`{ "<layer>": [head, …] }`, layers without removed heads left out)
 * as one list per layer; undefined when absent or empty.
 */
function prunedHeadsFromHuggingFace(value: unknown, numLayers: number): number[][] | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value))
    throw invalidConfig(
      `config.json key "pruned_heads" must be an object { "<layer>": [head, …] }, got ${JSON.stringify(value)?.slice(0, 200)}.`,
      'Write pruned_heads as Hugging Face does, for example { "0": [1, 3] }, or remove it.',
      { key: 'pruned_heads' },
    );
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 0) return undefined;
  const lists: number[][] = Array.from({ length: numLayers }, () => []);
  for (const [key, heads] of entries) {
    const layer = /^(0|[1-9][0-9]{0,8})$/.test(key) ? Number(key) : -1;
    if (layer < 0 || layer >= numLayers || !Array.isArray(heads))
      throw invalidConfig(
        `config.json key "pruned_heads" has the entry ${JSON.stringify(key.slice(0, 50))}: ${JSON.stringify(heads)?.slice(0, 100)}; keys must be layer indices in [0, ${numLayers}) and values lists of heads.`,
        'Restore config.json from the shrunk checkpoint; pruned_heads names layers of num_hidden_layers.',
        { key: 'pruned_heads', layer: key.slice(0, 50) },
      );
    lists[layer] = heads as number[];
  }
  return lists;
}

/**
 * Writes an {@link EncoderConfig} as Hugging Face BertConfig keys (`model_type: "bert"`, absolute
 * positions). `gelu_tanh` is written as `gelu_new`. A shrunk encoder also gets `pruned_heads` (the
 * removed heads of each layer that lost some, Hugging Face's own key) and `intermediate_sizes` (the
 * feed-forward width of every layer; fineprune's key, which Hugging Face's BertModel ignores).
 *
 * @param config - the encoder configuration
 * @returns a JSON object for config.json
 * @throws FinepruneError `INVALID_ARGUMENT` when the config fails {@link validateConfig}
 *
 * @example
 * ```ts
 * configToHuggingFace(bertBaseUncasedConfig).num_hidden_layers; // 12
 * ```
 */
export function configToHuggingFace(config: EncoderConfig): Record<string, HuggingFaceConfigValue> {
  const valid = validateConfig(config);
  const perLayer: Record<string, HuggingFaceConfigValue> = {};
  const pruned = (valid.prunedHeads ?? []).flatMap((heads, layer) =>
    heads.length > 0 ? [[String(layer), [...heads]] as [string, number[]]] : [],
  );
  if (pruned.length > 0) perLayer.pruned_heads = Object.fromEntries(pruned);
  if (valid.intermediateSizes !== undefined) perLayer.intermediate_sizes = [...valid.intermediateSizes];
  return {
    model_type: 'bert',
    vocab_size: valid.vocabSize,
    hidden_size: valid.hiddenSize,
    num_hidden_layers: valid.numLayers,
    num_attention_heads: valid.numHeads,
    intermediate_size: valid.intermediateSize,
    max_position_embeddings: valid.maxPositions,
    type_vocab_size: valid.typeVocabSize,
    layer_norm_eps: valid.layerNormEpsilon,
    hidden_act: valid.hiddenActivation === 'gelu' ? 'gelu' : 'gelu_new',
    hidden_dropout_prob: valid.hiddenDropout,
    attention_probs_dropout_prob: valid.attentionDropout,
    initializer_range: valid.initializerRange,
    position_embedding_type: 'absolute',
    ...perLayer,
  };
}

/**
 * A value of the config.json object {@link configToHuggingFace} writes: a string or number, a
 * list of widths (`intermediate_sizes`), or `pruned_heads` (`{ "<layer>": [head, …] }`).
 *
 * @example
 * ```ts
 * const value: HuggingFaceConfigValue = { '0': [1, 3] };
 * ```
 */
export type HuggingFaceConfigValue = string | number | number[] | Record<string, number[]>;
