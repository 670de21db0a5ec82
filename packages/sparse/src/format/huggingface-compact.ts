/**
 * Compact exports of Hugging Face models (a BERT encoder and its head): written from plain named
 * arrays in the Hugging Face layout (Linear weights [out, in], so each output channel's kept inputs
 * are contiguous and the int8 scales are per output channel), with their 0/1 masks and the model's
 * config.json; read back as that config and as prepared sparse projections. Nothing here knows BERT:
 * the adapter side (`@fineprune/transformers`) supplies the arrays and names which weights are
 * projections, so this package keeps importing only `@fineprune/tensor`.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import * as tf from '@tensorflow/tfjs-core';
import {
  prepareSparseDenseFromRows,
  type SparseDenseMode,
  type SparseDenseWeights,
} from '../inference/sparse-dense';
import type { DenseValues } from '../layout/compressed-rows';
import { type CompactExportOptions, type CompactTensorInput, encodeCompactModel } from './encode';
import type { CompactModel } from './read';

/**
 * One tensor of a Hugging Face model, as stored in its safetensors file: a Linear weight is
 * [out, in].
 *
 * @example
 * ```ts
 * const query: HuggingFaceTensorInput = {
 *   name: 'bert.encoder.layer.0.attention.self.query.weight', shape: [768, 768], values, mask,
 * };
 * ```
 */
export interface HuggingFaceTensorInput {
  name: string;
  shape: readonly number[];
  /** Row-major float32 values (pruned entries may be zero or not: the mask decides). */
  values: Float32Array;
  /**
   * The mask, the size of `values`: an entry whose mask is 0 is left out, any other keeps it (even a
   * zero weight; a soft gate is taken as already folded into `values`). Default: keep the nonzeros.
   */
  mask?: DenseValues;
}

/**
 * What {@link encodeCompactHuggingFace} writes: the model's config.json object and its tensors.
 *
 * @example
 * ```ts
 * const input: CompactHuggingFaceInput = { config: { model_type: 'bert', hidden_size: 128 }, tensors };
 * ```
 */
export interface CompactHuggingFaceInput {
  config: Record<string, unknown>;
  tensors: readonly HuggingFaceTensorInput[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** 1 where the mask keeps the entry (any value but 0), else 0. */
function keptEntries(mask: DenseValues): Uint8Array {
  const kept = new Uint8Array(mask.length);
  for (let index = 0; index < mask.length; index += 1) kept[index] = mask[index] === 0 ? 0 : 1;
  return kept;
}

/**
 * Encodes a Hugging Face model as a compact sparse export (`model.kind: 'huggingface'`, its
 * config.json in the header): every matrix with its output channels on axis 0 (PyTorch's Linear
 * layout), the smallest layout per tensor, values in float32, float16 or int8 (vectors stay
 * float32). The reference size for the never-larger rule defaults to the tensors as float32.
 *
 * @param input - the config.json object and the tensors (with their masks)
 * @param options - value encoding, reference size, `allowLarger`
 * @returns the file bytes
 * @throws FinepruneError `INVALID_ARGUMENT` for a config that is not an object (and everything
 *   `encodeCompactModel` refuses), `LARGER_THAN_SOURCE`
 *
 * @example
 * ```ts
 * const bytes = await encodeCompactHuggingFace({ config, tensors }, { values: 'int8' });
 * const compact = await readCompactModel(bytes);
 * ```
 */
export async function encodeCompactHuggingFace(
  input: CompactHuggingFaceInput,
  options: CompactExportOptions = {},
): Promise<Uint8Array> {
  if (!isPlainObject(input?.config))
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'A Hugging Face compact export needs the model’s config.json as an object.',
      fix: 'Pass { config, tensors } with config the parsed config.json.',
    });
  const tensors: CompactTensorInput[] = input.tensors.map(({ name, shape, values, mask }) => ({
    name,
    shape,
    values,
    ...(mask === undefined ? {} : { mask: keptEntries(mask) }),
    // Linear weights are [out, in]: each output channel is a row.
    ...(shape?.length === 2 ? { channelAxis: 0 } : {}),
  }));
  return encodeCompactModel({ model: { kind: 'huggingface', config: input.config }, tensors }, options);
}

function mismatch(message: string, fix: string, details: Record<string, unknown>): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.CHECKPOINT_MISMATCH, message, fix, details });
}

/**
 * The config.json object of a compact export of a Hugging Face model.
 *
 * @param compact - a checked compact export (`readCompactModel`)
 * @param source - how errors name the file (default: the `source` it was read with)
 * @returns the config object (untrusted: validate it, e.g. with `configFromHuggingFace`)
 * @throws FinepruneError `CHECKPOINT_MISMATCH` when it holds another kind of model
 *
 * @example
 * ```ts
 * const config = configFromHuggingFace(huggingFaceConfigOf(compact, 'model.fpsparse'));
 * ```
 */
export function huggingFaceConfigOf(
  compact: CompactModel,
  source = compact.source ?? 'the compact export',
): Record<string, unknown> {
  const description = compact.header.model;
  if (description.kind !== 'huggingface' || !isPlainObject(description.config))
    throw mismatch(
      `${source} holds a ${quoteText(description.kind)} model, not a Hugging Face model.`,
      'Load layers models with loadSparseLayersModel() or loadDenseLayersModel() of @fineprune/sparse/layers.',
      { file: source },
    );
  return description.config;
}

/** The bias name Hugging Face gives a Linear weight: `….weight` → `….bias`. */
function biasName(weightName: string): string {
  return weightName.replace(/weight$/, 'bias');
}

/** The bias of a projection as a tensor, checked against its output channels (undefined: none). */
function projectionBias(
  compact: CompactModel,
  weightName: string,
  outputs: number,
  source: string,
): tf.Tensor1D | undefined {
  const name = biasName(weightName);
  const bias = compact.tensors.find((tensor) => tensor.name === name);
  if (name === weightName || bias === undefined) return undefined;
  if (bias.shape.length !== 1 || bias.shape[0] !== outputs)
    throw mismatch(
      `${source}: ${quoteText(name)} has the shape [${bias.shape.join(', ')}], not [${outputs}] like the output channels of ${quoteText(weightName)}.`,
      'Export the model again with fineprune export --format sparse.',
      { file: source, tensor: name.slice(0, 200) },
    );
  return tf.tensor1d(bias.dense());
}

/** The compact tensor of a projection weight, checked to be a matrix with its channels on axis 0. */
function projectionTensor(compact: CompactModel, name: string, source: string) {
  const tensor = compact.tensors.find((candidate) => candidate.name === name);
  if (tensor === undefined)
    throw mismatch(
      `${source} holds no tensor ${quoteText(name)}, which the model needs.`,
      'Export the model again with fineprune export --format sparse, or load it with the config it was written for.',
      { file: source, tensor: name.slice(0, 200) },
    );
  if (!tensor.isMatrix || tensor.shape.length !== 2 || tensor.entry.channelAxis !== 0)
    throw mismatch(
      `${source}: ${quoteText(name)} is not stored as a [out, in] matrix with its output channels first.`,
      'Export the model again with fineprune export --format sparse.',
      { file: source, tensor: name.slice(0, 200) },
    );
  return tensor;
}

/**
 * Options of {@link prepareCompactProjections}.
 *
 * @example
 * ```ts
 * const options: PrepareProjectionsOptions = { mode: 'sparse', source: 'model.fpsparse' };
 * ```
 */
export interface PrepareProjectionsOptions {
  /** `auto` (default): sparse or dense per matrix from the measured break-even; `sparse`; `dense`. */
  mode?: SparseDenseMode;
  /** How errors name the file. Default: the `source` it was read with. */
  source?: string;
}

/**
 * Prepares the named Linear weights ([out, in]) of a Hugging Face compact export, each with its bias
 * (`….bias`, when stored), for `sparseDense`: x · Wᵀ + b over the kept weights only.
 *
 * @param compact - a checked compact export
 * @param weightNames - the Hugging Face names of the projection weights
 * @param options - `mode`, `source`
 * @returns the prepared weights by name (dispose each)
 * @throws FinepruneError `CHECKPOINT_MISMATCH` naming the file and tensor when one is missing, not a
 *   matrix with its output channels first, or its bias has another length; `CHECKPOINT_CORRUPT` from
 *   decoding a damaged tensor
 *
 * @example
 * ```ts
 * const prepared = prepareCompactProjections(compact, ['bert.encoder.layer.0.attention.self.query.weight']);
 * const output = sparseDense(hidden, prepared.get('bert.encoder.layer.0.attention.self.query.weight')!);
 * ```
 */
export function prepareCompactProjections(
  compact: CompactModel,
  weightNames: readonly string[],
  options: PrepareProjectionsOptions = {},
): Map<string, SparseDenseWeights> {
  const source = options.source ?? compact.source ?? 'the compact export';
  const prepared = new Map<string, SparseDenseWeights>();
  try {
    for (const name of weightNames) {
      const tensor = projectionTensor(compact, name, source);
      const bias = projectionBias(compact, name, tensor.shape[0]!, source);
      try {
        prepared.set(
          name,
          prepareSparseDenseFromRows(tensor.rows(), {
            ...(bias ? { bias } : {}),
            mode: options.mode ?? 'auto',
          }),
        );
      } finally {
        bias?.dispose();
      }
    }
    return prepared;
  } catch (error) {
    for (const weights of prepared.values()) weights.dispose();
    throw error;
  }
}
