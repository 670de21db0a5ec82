/**
 * Hugging Face BERT checkpoints: the parameter layout, import from a safetensors file (PyTorch
 * Linear weights [out, in] transposed to our [in, out]) and export back, with optional masks.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  decodeFloat32,
  decodeInt32,
  encodeSafetensors,
  readSafetensors,
  type SafetensorsFile,
  type SafetensorsInput,
  type SafetensorsTensor,
} from '@fineprune/safetensors';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import { configToHuggingFace, type EncoderConfig, validateConfig } from './config';
import { type BertLayoutEntry, type BertTask, bertLayout, validateTask } from './layout';
import type { BertModel } from './model';

/**
 * Suffix of the mask entries written next to a pruned weight (`<name>_mask`).
 *
 * @example
 * ```ts
 * file.tensors.get(`bert.encoder.layer.0.attention.self.query.weight${MASK_SUFFIX}`);
 * ```
 */
export const MASK_SUFFIX = '_mask';

/**
 * The Hugging Face (bert-base-uncased) parameter layout of a model: one entry per tensor, with its
 * name and shape in the checkpoint, our name and shape, and whether it is transposed (Linear
 * weights are [out, in] in PyTorch, [in, out] here).
 *
 * @param config - the encoder config
 * @param task - the task head (decides pooler, classifier, qa_outputs or cls.predictions)
 * @returns the entries, embeddings first
 * @throws FinepruneError `INVALID_ARGUMENT` for a bad config or task
 *
 * @example
 * ```ts
 * huggingFaceNames(bertBaseUncasedConfig, { type: 'classification', numLabels: 2 })
 *   .map((entry) => entry.huggingFaceName); // ['bert.embeddings.word_embeddings.weight', …, 'classifier.bias']
 * ```
 */
export function huggingFaceNames(config: EncoderConfig, task: BertTask): BertLayoutEntry[] {
  return bertLayout(validateConfig(config), validateTask(task));
}

/**
 * Options of {@link loadHuggingFaceWeights}.
 *
 * @example
 * ```ts
 * loadHuggingFaceWeights(model, file, { strict: false } satisfies LoadHuggingFaceOptions);
 * ```
 */
export interface LoadHuggingFaceOptions {
  /**
   * Default true: every variable must be in the file, every tensor of the file must be used, and
   * every shape must match. With false, the pooler and task head may be missing or of another shape
   * (they keep their fresh initialisation, the transfer case) and unused tensors are reported, not
   * refused; the embeddings and the encoder layers must still all be present and fit.
   */
  strict?: boolean;
}

/**
 * What {@link loadHuggingFaceWeights} did.
 *
 * @example
 * ```ts
 * const report: HuggingFaceLoadReport = loadHuggingFaceWeights(model, file, { strict: false });
 * console.log(report.missing); // ['bert.pooler.dense.weight', …] in the transfer case
 * ```
 */
export interface HuggingFaceLoadReport {
  /** Our variables' Hugging Face names that were assigned from the file. */
  loaded: string[];
  /** Our variables' Hugging Face names that the file lacks (non-strict only; they keep their values). */
  missing: string[];
  /** Names in the file that no variable took (non-strict only). */
  unexpected: string[];
  /** Head or pooler tensors whose shape differs from ours, left as they were (non-strict only). */
  mismatched: string[];
  /** Prunable weights whose mask came from a `<name>_mask` entry; all others were reset to ones. */
  masks: string[];
}

/** Tensors of a Hugging Face BERT file that no model variable needs and that are never unexpected. */
function isIgnorable(name: string): boolean {
  // A buffer of position indices (older checkpoints), and the decoder weight tied to the word embeddings.
  return /^(bert\.)?embeddings\.position_ids$/.test(name) || name === 'cls.predictions.decoder.weight';
}

/** The names a variable may have in a file: with and without `bert.`, LayerNorm as weight/bias or gamma/beta. */
function candidateNames(huggingFaceName: string): string[] {
  const names = [huggingFaceName];
  if (huggingFaceName.startsWith('bert.')) names.push(huggingFaceName.slice('bert.'.length));
  const legacy = names.flatMap((name) => {
    if (name.endsWith('LayerNorm.weight')) return [name.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma')];
    if (name.endsWith('LayerNorm.bias')) return [name.replace(/LayerNorm\.bias$/, 'LayerNorm.beta')];
    return [];
  });
  if (huggingFaceName === 'cls.predictions.bias') legacy.push('cls.predictions.decoder.bias');
  return [...names, ...legacy];
}

function listSome(names: readonly string[]): string {
  const shown = names.slice(0, 10).join(', ');
  return names.length > 10 ? `${shown} and ${names.length - 10} more` : shown;
}

function isFloatDtype(dtype: string): boolean {
  return dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F64';
}

/** Row-major [rows, columns] → [columns, rows]. */
function transposeValues(values: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < columns; c += 1) out[c * rows + r] = values[r * columns + c]!;
  }
  return out;
}

/** What a Hugging Face file gives each variable, checked and decoded, before anything is assigned. */
export interface HuggingFaceLoadPlan {
  /** Decoded values (in our layout, transposed where needed) by our variable name. */
  values: Map<string, Float32Array>;
  /** Decoded masks (in our layout) by our parameter name. */
  masks: Map<string, Float32Array>;
  report: HuggingFaceLoadReport;
}

/** The index of the first NaN or ±Infinity, or −1. */
function firstNonFinite(values: Float32Array): number {
  for (let index = 0; index < values.length; index += 1) if (!Number.isFinite(values[index]!)) return index;
  return -1;
}

/**
 * Checks a Hugging Face BERT file against the layout of `config` and `task` and decodes what it
 * gives each variable, without a model: names, shapes and dtypes first (so a config whose sizes the
 * file does not have fails before any model is built), then every value finite.
 *
 * @throws FinepruneError `CHECKPOINT_MISMATCH` listing missing, unexpected or mismatched tensors;
 *   `CHECKPOINT_CORRUPT` naming tensors that hold NaN or ±Infinity
 */
export function planHuggingFaceLoad(
  config: EncoderConfig,
  task: BertTask,
  file: SafetensorsFile,
  strict: boolean,
): HuggingFaceLoadPlan {
  const layout = bertLayout(validateConfig(config), validateTask(task));
  const used = new Set<string>();
  const plan: HuggingFaceLoadPlan = {
    values: new Map(),
    masks: new Map(),
    report: { loaded: [], missing: [], unexpected: [], mismatched: [], masks: [] },
  };
  const { report } = plan;
  const fatalMissing: string[] = [];
  const fatalShapes: string[] = [];
  const nonFinite: string[] = [];
  const headPart = (entry: BertLayoutEntry) => entry.part === 'head' || entry.part === 'pooler';

  const decode = (tensor: SafetensorsTensor, entry: BertLayoutEntry): Float32Array | undefined => {
    const expected = entry.huggingFaceShape;
    if (!isFloatDtype(tensor.dtype) || !tf.util.arraysEqual([...tensor.shape], [...expected])) {
      const problem = `${quoteText(tensor.name)}: ${tensor.dtype} [${tensor.shape}] in the file, F32 [${expected}] expected`;
      if (!strict && headPart(entry)) report.mismatched.push(tensor.name);
      else fatalShapes.push(problem);
      return undefined;
    }
    const values = decodeFloat32(tensor);
    const bad = firstNonFinite(values);
    if (bad >= 0) nonFinite.push(`${quoteText(tensor.name)} holds ${values[bad]} at index ${bad}`);
    return entry.transpose ? transposeValues(values, expected[0]!, expected[1]!) : values;
  };

  for (const entry of layout) {
    const found = candidateNames(entry.huggingFaceName).find((name) => file.tensors.has(name));
    if (found === undefined) {
      if (strict || !headPart(entry)) fatalMissing.push(entry.huggingFaceName);
      report.missing.push(entry.huggingFaceName);
      continue;
    }
    used.add(found);
    const values = decode(file.tensors.get(found)!, entry);
    if (values === undefined) continue;
    plan.values.set(entry.name, values);
    report.loaded.push(entry.huggingFaceName);
    if (entry.prunableGroup === undefined) continue;
    const maskName = `${found}${MASK_SUFFIX}`;
    const maskTensor = file.tensors.get(maskName);
    if (maskTensor === undefined) continue;
    used.add(maskName);
    if (!tf.util.arraysEqual([...maskTensor.shape], [...entry.huggingFaceShape])) {
      fatalShapes.push(
        `${quoteText(maskName)}: [${maskTensor.shape}] in the file, [${entry.huggingFaceShape}] expected`,
      );
      continue;
    }
    const raw = isFloatDtype(maskTensor.dtype)
      ? decodeFloat32(maskTensor)
      : Float32Array.from(decodeInt32(maskTensor));
    if (raw.some((value) => !(value >= 0 && value <= 1))) {
      fatalShapes.push(`${quoteText(maskName)}: mask values must lie in [0, 1]`);
      continue;
    }
    const [rows, columns] = entry.huggingFaceShape as [number, number];
    plan.masks.set(entry.name, transposeValues(raw, rows, columns));
    report.masks.push(entry.huggingFaceName);
  }
  for (const name of file.tensors.keys()) {
    if (!used.has(name) && !isIgnorable(name)) report.unexpected.push(name);
  }
  const problems: string[] = [];
  if (fatalMissing.length > 0) problems.push(`missing ${listSome(fatalMissing)}`);
  if (strict && report.unexpected.length > 0)
    problems.push(`unexpected ${listSome(report.unexpected.map((name) => quoteText(name)))}`);
  if (fatalShapes.length > 0) problems.push(`mismatched ${listSome(fatalShapes)}`);
  if (problems.length > 0) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `The checkpoint does not fit this ${task.type} model (${config.numLayers} layers, hidden ${config.hiddenSize}): ${problems.join('; ')}.`,
      fix: strict
        ? 'Check that config.json matches the weights; to start a new task head from an encoder checkpoint, pass { strict: false }.'
        : 'Build the model from the checkpoint’s config.json (configFromHuggingFace) so that the encoder fits.',
      details: {
        missing: fatalMissing,
        unexpected: strict ? report.unexpected.slice(0, 100).map((name) => name.slice(0, 200)) : [],
        mismatched: fatalShapes,
      },
    });
  }
  if (nonFinite.length > 0) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_CORRUPT,
      message: `The checkpoint holds weights that are not finite numbers: ${listSome(nonFinite)}.`,
      fix: 'The model that was saved had diverged, or the file is damaged; export it again from a healthy model or restore the file.',
      details: { tensors: nonFinite },
    });
  }
  return plan;
}

/** Assigns a checked plan to the model's variables; masks not in the plan are reset to ones. */
export function applyHuggingFaceLoad(model: BertModel, plan: HuggingFaceLoadPlan): void {
  const variables = new Map(model.variables().map((entry) => [entry.name, entry.variable]));
  tf.tidy(() => {
    for (const [name, values] of plan.values) {
      const variable = variables.get(name)!;
      variable.assign(tf.tensor(values, variable.shape, 'float32'));
    }
    for (const parameter of model.parameters()) {
      const mask = plan.masks.get(parameter.name);
      parameter.mask.assign(
        mask ? tf.tensor(mask, [...parameter.shape], 'float32') : tf.ones([...parameter.shape]),
      );
    }
  });
}

/**
 * Assigns a model's variables from a Hugging Face BERT safetensors file (as read by
 * `readSafetensors` of `@fineprune/safetensors`). Names may carry the `bert.` prefix
 * (BertFor… checkpoints) or not (BertModel checkpoints); LayerNorm parameters may be `weight`/`bias`
 * or the legacy `gamma`/`beta`; `cls.predictions.decoder.weight` (tied to the word embeddings) and
 * `position_ids` are ignored. Linear weights are transposed from [out, in]. F32, F16, BF16 and F64
 * tensors are accepted; every value must be finite. Masks: a `<name>_mask` entry (U8 0/1, or float
 * in [0, 1]) sets the mask of a pruned weight; every other mask is reset to ones. Everything is
 * checked before anything is assigned, so a failed load leaves the model unchanged.
 *
 * @param model - the model to fill
 * @param file - the parsed safetensors file
 * @param options - `strict` (default true)
 * @returns what was loaded, missing, unexpected, mismatched, and which masks came from the file
 * @throws FinepruneError `CHECKPOINT_MISMATCH` listing (first 10 and a count) the missing names,
 *   unexpected names, shape or dtype mismatches that the mode does not allow; `CHECKPOINT_CORRUPT`
 *   naming the tensors that hold NaN or ±Infinity
 *
 * @example
 * ```ts
 * const file = await readSafetensorsFile('bert-base-uncased/model.safetensors');
 * const model = createBertModel({ config: bertBaseUncasedConfig, task: { type: 'classification', numLabels: 2 } });
 * const report = loadHuggingFaceWeights(model, file, { strict: false }); // pooler, classifier stay fresh
 * ```
 */
export function loadHuggingFaceWeights(
  model: BertModel,
  file: SafetensorsFile,
  options: LoadHuggingFaceOptions = {},
): HuggingFaceLoadReport {
  if (typeof file !== 'object' || file === null || !(file.tensors instanceof Map)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'loadHuggingFaceWeights() needs a parsed safetensors file.',
      fix: 'Pass readSafetensors(bytes) or await readSafetensorsFile(path) from @fineprune/safetensors.',
    });
  }
  const plan = planHuggingFaceLoad(model.config, model.task, file, options.strict ?? true);
  applyHuggingFaceLoad(model, plan);
  return plan.report;
}

/**
 * Options of {@link exportHuggingFace}.
 *
 * @example
 * ```ts
 * await exportHuggingFace(model, { dtype: 'F16', includeMasks: true } satisfies ExportHuggingFaceOptions);
 * ```
 */
export interface ExportHuggingFaceOptions {
  /** Storage type of the weights: F32 (default) or F16 (round to nearest even). */
  dtype?: 'F32' | 'F16';
  /**
   * Also write each pruned weight's mask as `<name>_mask` ([out, in] like the weight): U8 0/1, or
   * F32 when a mask holds soft values. Default false.
   */
  includeMasks?: boolean;
}

/** The architecture name Hugging Face gives a BERT model with this task head. */
function architectureOf(task: BertTask): string {
  if (task.type === 'classification') return 'BertForSequenceClassification';
  if (task.type === 'span') return 'BertForQuestionAnswering';
  return 'BertForMaskedLM';
}

/**
 * One tensor of a model in the Hugging Face layout, as plain arrays.
 *
 * @example
 * ```ts
 * const [first]: HuggingFaceTensor[] = await huggingFaceTensors(model);
 * console.log(first.name, first.shape); // 'bert.embeddings.word_embeddings.weight' [30522, 768]
 * ```
 */
export interface HuggingFaceTensor {
  /** The Hugging Face name, e.g. `bert.encoder.layer.0.attention.self.query.weight`. */
  name: string;
  /** The Hugging Face shape (Linear weights [out, in]). */
  shape: number[];
  /** Row-major float32 values; pruned weights hold W ⊙ M, so pruned entries are zeros. */
  values: Float32Array;
  /** The mask of a pruned weight ([out, in] like it), with `includeMasks`. */
  mask?: Float32Array;
  /** Whether it is one of the six prunable projections of a layer. */
  prunable: boolean;
}

/**
 * The model's tensors in the Hugging Face layout, as plain float32 arrays: Linear weights
 * transposed to [out, in], pruned weights as their effective values W ⊙ M, and (with
 * `includeMasks`) each pruned weight's mask. What `exportHuggingFace` writes, before encoding.
 *
 * @param model - the model
 * @param options - `includeMasks` (default false)
 * @returns the tensors, in the layout's order (embeddings first)
 *
 * @example
 * ```ts
 * const tensors = await huggingFaceTensors(model, { includeMasks: true });
 * const kept = tensors.filter((tensor) => tensor.prunable).map((tensor) => tensor.mask!.reduce((a, b) => a + b, 0));
 * ```
 */
export async function huggingFaceTensors(
  model: BertModel,
  options: { includeMasks?: boolean } = {},
): Promise<HuggingFaceTensor[]> {
  const layout = new Map(bertLayout(model.config, model.task).map((entry) => [entry.name, entry]));
  const prunable = new Map(model.parameters().map((parameter) => [parameter.name, parameter]));
  const tensors: HuggingFaceTensor[] = [];
  for (const variable of model.variables()) {
    const entry = layout.get(variable.name)!;
    const parameter = prunable.get(variable.name);
    // The effective weight W ⊙ M, so pruned entries are exported as zeros.
    const effective = parameter ? tf.mul(parameter.weight, parameter.mask) : variable.variable;
    let values = (await effective.data()) as Float32Array;
    if (parameter) effective.dispose();
    if (entry.transpose) values = transposeValues(values, entry.shape[0]!, entry.shape[1]!);
    const tensor: HuggingFaceTensor = {
      name: entry.huggingFaceName,
      shape: [...entry.huggingFaceShape],
      values,
      prunable: parameter !== undefined,
    };
    if (parameter && options.includeMasks)
      tensor.mask = transposeValues(
        (await parameter.mask.data()) as Float32Array,
        entry.shape[0]!,
        entry.shape[1]!,
      );
    tensors.push(tensor);
  }
  return tensors;
}

/**
 * The config.json object of a model: its encoder config in Hugging Face's keys, the architecture of
 * its task head, the weights' dtype, and for a classifier its labels.
 *
 * @param model - the model
 * @param dtype - the dtype its weights are stored in (default F32)
 * @returns the config object
 *
 * @example
 * ```ts
 * writeFileSync('config.json', JSON.stringify(huggingFaceConfig(model), null, 2));
 * ```
 */
export function huggingFaceConfig(model: BertModel, dtype: 'F32' | 'F16' = 'F32'): Record<string, unknown> {
  const config: Record<string, unknown> = {
    architectures: [architectureOf(model.task)],
    ...configToHuggingFace(model.config),
    torch_dtype: dtype === 'F32' ? 'float32' : 'float16',
  };
  if (model.task.type === 'classification') {
    const labels = Array.from({ length: model.task.numLabels }, (_, index) => index);
    config.id2label = Object.fromEntries(labels.map((index) => [String(index), `LABEL_${index}`]));
    config.label2id = Object.fromEntries(labels.map((index) => [`LABEL_${index}`, index]));
  }
  return config;
}

/**
 * Loads plain float32 tensors in the Hugging Face layout (names and shapes as in its safetensors
 * file) into a model, with every check of {@link loadHuggingFaceWeights}: names, shapes, finite
 * values, `strict`.
 *
 * @param model - the model to fill
 * @param tensors - the tensors (for example a compact export's, densified)
 * @param options - `strict` (default true)
 * @returns what was loaded, missing and unexpected
 * @throws FinepruneError as {@link loadHuggingFaceWeights}
 *
 * @example
 * ```ts
 * loadHuggingFaceTensors(model, compact.tensors.map((tensor) => ({ name: tensor.name, shape: [...tensor.shape], values: tensor.dense() })));
 * ```
 */
export function loadHuggingFaceTensors(
  model: BertModel,
  tensors: Iterable<{ name: string; shape: readonly number[]; values: Float32Array }>,
  options: LoadHuggingFaceOptions = {},
): HuggingFaceLoadReport {
  const inputs: Record<string, SafetensorsInput> = {};
  for (const tensor of tensors)
    inputs[tensor.name] = { dtype: 'F32', shape: [...tensor.shape], data: tensor.values };
  return loadHuggingFaceWeights(model, readSafetensors(encodeSafetensors(inputs)), options);
}

/**
 * Exports a model as a Hugging Face BERT checkpoint: a safetensors file (metadata
 * `format: "pt"`, Linear weights transposed to [out, in]) and a config.json object. Pruned weights
 * are written as their effective values W ⊙ M, so pruned entries are zeros. The MLM decoder is tied
 * to the word embeddings and not written separately, as Hugging Face does.
 *
 * @param model - the model to export
 * @param options - `dtype` (F32 or F16), `includeMasks`
 * @returns the safetensors bytes and the config.json object
 *
 * @example
 * ```ts
 * const { safetensors, config } = await exportHuggingFace(model, { includeMasks: true });
 * const reloaded = createBertModel({ config: configFromHuggingFace(config), task: model.task });
 * loadHuggingFaceWeights(reloaded, readSafetensors(safetensors));
 * ```
 */
export async function exportHuggingFace(
  model: BertModel,
  options: ExportHuggingFaceOptions = {},
): Promise<{ safetensors: Uint8Array; config: Record<string, unknown> }> {
  const dtype = options.dtype ?? 'F32';
  if (dtype !== 'F32' && dtype !== 'F16') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `exportHuggingFace() writes F32 or F16 weights, not ${JSON.stringify(dtype)}.`,
      fix: "Pass { dtype: 'F32' } (exact) or { dtype: 'F16' } (half the size).",
    });
  }
  const tensors: Record<string, SafetensorsInput> = {};
  for (const tensor of await huggingFaceTensors(model, { includeMasks: options.includeMasks === true })) {
    tensors[tensor.name] = { dtype, shape: tensor.shape, data: tensor.values };
    if (tensor.mask) {
      const binary = tensor.mask.every((value) => value === 0 || value === 1);
      tensors[`${tensor.name}${MASK_SUFFIX}`] = {
        dtype: binary ? 'U8' : 'F32',
        shape: tensor.shape,
        data: binary ? Uint8Array.from(tensor.mask) : tensor.mask,
      };
    }
  }
  return {
    safetensors: encodeSafetensors(tensors, { format: 'pt' }),
    config: huggingFaceConfig(model, dtype),
  };
}

/**
 * The task a Hugging Face config.json describes, from its `architectures` (and `id2label` for the
 * number of labels); undefined when it names none of BertForSequenceClassification,
 * BertForQuestionAnswering or BertForMaskedLM.
 *
 * @param json - the parsed config.json
 * @param maxPredictions - masked positions per sequence for an MLM task (default 20)
 * @returns the task, or undefined
 *
 * @example
 * ```ts
 * taskFromHuggingFace({ architectures: ['BertForSequenceClassification'], id2label: { 0: 'neg', 1: 'pos' } });
 * // { type: 'classification', numLabels: 2 }
 * ```
 */
export function taskFromHuggingFace(
  json: Record<string, unknown>,
  maxPredictions = 20,
): BertTask | undefined {
  const architectures = Array.isArray(json.architectures) ? json.architectures : [];
  if (architectures.includes('BertForSequenceClassification')) {
    const labels = json.id2label;
    const numLabels =
      typeof json.num_labels === 'number'
        ? json.num_labels
        : typeof labels === 'object' && labels !== null
          ? Object.keys(labels).length
          : 2;
    return validateTask({ type: 'classification', numLabels });
  }
  if (architectures.includes('BertForQuestionAnswering')) return { type: 'span' };
  if (architectures.includes('BertForMaskedLM') || architectures.includes('BertForPreTraining')) {
    return validateTask({ type: 'mlm', maxPredictions });
  }
  return undefined;
}
