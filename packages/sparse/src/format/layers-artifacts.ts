/**
 * TF.js layers models and the compact export: a model's saved artifacts (`model.save()` output) to
 * a compact export, and a compact export back to artifacts with dense float32 weights, through an
 * IOHandler that stock `tf.loadLayersModel` reads.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import {
  type CompactExportOptions,
  type CompactTensorInput,
  encodeCompactModel,
  planCompactModel,
  type CompactPlan,
} from './encode';
import type { LayersModelFields } from './header';
import { type CompactModel, type ReadCompactOptions, readCompactModel } from './read';

/** The stored bytes of a weights manifest entry (quantized entries take 1 or 2 bytes per value). */
function storedBytes(spec: tf.io.WeightsManifestEntry): number {
  const size = spec.shape.reduce((product, dimension) => product * dimension, 1);
  const quantized = spec.quantization?.dtype;
  return size * (quantized === 'uint8' ? 1 : quantized === 'uint16' || quantized === 'float16' ? 2 : 4);
}

/** The weight data of artifacts as one byte array. */
function weightBytes(artifacts: tf.io.ModelArtifacts): Uint8Array {
  const data = artifacts.weightData;
  if (data === undefined) return new Uint8Array(0);
  const buffers = Array.isArray(data) ? data : [data];
  return new Uint8Array(tf.io.concatenateArrayBuffers(buffers));
}

function unsupported(message: string, fix: string): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix });
}

/** The model.json fields a compact export keeps (all but the weights). */
function layersFields(artifacts: tf.io.ModelArtifacts): LayersModelFields {
  const topology = artifacts.modelTopology;
  if (typeof topology !== 'object' || topology === null || topology instanceof ArrayBuffer)
    throw unsupported(
      'A compact export of a layers model needs its JSON topology; these artifacts have none (or a binary graph).',
      'Export a tf.LayersModel (model.save() gives its topology); graph models are not supported.',
    );
  return {
    modelTopology: topology as Record<string, unknown>,
    ...(artifacts.format !== undefined ? { format: artifacts.format } : {}),
    ...(artifacts.generatedBy !== undefined ? { generatedBy: artifacts.generatedBy } : {}),
    ...(artifacts.convertedBy !== undefined ? { convertedBy: artifacts.convertedBy } : {}),
    ...(artifacts.trainingConfig
      ? { trainingConfig: artifacts.trainingConfig as unknown as Record<string, unknown> }
      : {}),
    ...(artifacts.signature ? { signature: artifacts.signature as Record<string, unknown> } : {}),
    ...(artifacts.userDefinedMetadata
      ? { userDefinedMetadata: artifacts.userDefinedMetadata as Record<string, unknown> }
      : {}),
  };
}

/**
 * The tensors of a layers model's artifacts, decoded to float32 (TF.js quantized entries are
 * expanded): weights of rank ≥ 2 are matrices with their output channels on the last axis (Dense
 * [inputs, units], Conv2D [h, w, in, out]); their zeros are what pruning removed.
 *
 * @throws FinepruneError `INVALID_ARGUMENT` for a weight that is not float32
 */
export function tensorsOfArtifacts(artifacts: tf.io.ModelArtifacts): CompactTensorInput[] {
  const specs = artifacts.weightSpecs ?? [];
  for (const spec of specs)
    if (spec.dtype !== 'float32')
      throw unsupported(
        `The weight ${quoteText(spec.name)} is ${spec.dtype}; the compact export stores float32 weights.`,
        'Export models whose weights are float32 (as every layer of tfjs-layers makes them).',
      );
  const decoded = tf.io.decodeWeights(weightBytes(artifacts).buffer as ArrayBuffer, specs);
  try {
    return specs.map((spec) => ({
      name: spec.name,
      shape: spec.shape,
      values: Float32Array.from(decoded[spec.name]!.dataSync() as Float32Array),
    }));
  } finally {
    tf.dispose(Object.values(decoded));
  }
}

/**
 * The reference size of a layers model: its weights as stored (quantized entries at 1 or 2 bytes per
 * value) plus its model.json topology.
 *
 * @example
 * ```ts
 * const bytes = artifactsReferenceBytes(artifacts); // what encodeCompactArtifacts compares with
 * ```
 */
export function artifactsReferenceBytes(artifacts: tf.io.ModelArtifacts): number {
  const weights = (artifacts.weightSpecs ?? []).reduce((sum, spec) => sum + storedBytes(spec), 0);
  return weights + JSON.stringify(artifacts.modelTopology ?? {}).length;
}

/**
 * Plans the compact export of a layers model's artifacts without writing it (sizes per tensor and
 * layout): for reports.
 *
 * @param artifacts - what `model.save()` hands a handler
 * @param options - value encoding; `referenceBytes` defaults to the artifacts' own size
 * @returns the plan
 *
 * @example
 * ```ts
 * const plan = planCompactArtifacts(artifacts, { values: 'int8' });
 * console.log(plan.dataBytes, plan.referenceBytes);
 * ```
 */
export function planCompactArtifacts(
  artifacts: tf.io.ModelArtifacts,
  options: CompactExportOptions = {},
): CompactPlan {
  return planCompactModel(
    {
      model: { kind: 'layers-model', artifacts: layersFields(artifacts) },
      tensors: tensorsOfArtifacts(artifacts),
    },
    { referenceBytes: artifactsReferenceBytes(artifacts), ...options },
  );
}

/**
 * The compact export of a TF.js layers model, from the artifacts `model.save()` hands a handler: the
 * topology and model.json fields in the header, every weight as a tensor (matrices with channels
 * last; zeros are pruned entries). Refused when larger than the artifacts themselves (weights as
 * stored plus topology) unless `allowLarger`.
 *
 * @param artifacts - the model's artifacts (for a pruned model: stripped, W ⊙ M)
 * @param options - value encoding, `referenceBytes` (default: the artifacts' size), `allowLarger`
 * @returns the file bytes
 * @throws FinepruneError `INVALID_ARGUMENT` for a non-float32 weight or a graph model,
 *   `LARGER_THAN_SOURCE` (see {@link encodeCompactModel})
 *
 * @example
 * ```ts
 * let bytes: Uint8Array | undefined;
 * await stripped.save(tf.io.withSaveHandler(async (artifacts) => {
 *   bytes = await encodeCompactArtifacts(artifacts, { values: 'int8' });
 *   return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
 * }));
 * ```
 */
export async function encodeCompactArtifacts(
  artifacts: tf.io.ModelArtifacts,
  options: CompactExportOptions = {},
): Promise<Uint8Array> {
  return encodeCompactModel(
    {
      model: { kind: 'layers-model', artifacts: layersFields(artifacts) },
      tensors: tensorsOfArtifacts(artifacts),
    },
    { referenceBytes: artifactsReferenceBytes(artifacts), ...options },
  );
}

/**
 * What TF.js's `save(handler)` hands a handler: a model's artifacts (topology, weight specs and
 * data), in memory.
 *
 * @param model - a `tf.LayersModel` (anything with `save(handler)`)
 * @returns the artifacts
 *
 * @example
 * ```ts
 * const artifacts = await modelArtifacts(model);
 * console.log(artifacts.weightSpecs?.map((spec) => spec.name));
 * ```
 */
export async function modelArtifacts(model: {
  save(handler: tf.io.IOHandler): Promise<tf.io.SaveResult>;
}): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return saved!;
}

/**
 * Saves any object with TF.js's `save(handler)` (a `tf.LayersModel`) as compact export bytes.
 *
 * @param model - the model (for a pruned model, its stripped copy)
 * @param options - value encoding, reference size, `allowLarger`
 * @returns the file bytes
 *
 * @example
 * ```ts
 * const bytes = await compactBytesOfModel(await strip(prunable), { values: 'int8' });
 * ```
 */
export async function compactBytesOfModel(
  model: { save(handler: tf.io.IOHandler): Promise<tf.io.SaveResult> },
  options: CompactExportOptions = {},
): Promise<Uint8Array> {
  return encodeCompactArtifacts(await modelArtifacts(model), options);
}

/**
 * A compact export as bytes, or one read already.
 *
 * @example
 * ```ts
 * const source: CompactSource = await readCompactModel(bytes);
 * ```
 */
export type CompactSource = Uint8Array | CompactModel;

/** The checked model of a source. */
export async function compactModelOf(
  source: CompactSource,
  options: ReadCompactOptions = {},
): Promise<CompactModel> {
  return source instanceof Uint8Array ? readCompactModel(source, options) : source;
}

/** The layers fields of a compact model, or a typed error when it holds another kind of model. */
export function layersFieldsOf(model: CompactModel, source: string): LayersModelFields {
  const description = model.header.model;
  if (description.kind !== 'layers-model')
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `${source} holds a ${description.kind} model, not a TF.js layers model.`,
      fix: 'Read its tensors with readCompactModel() (Hugging Face models: by their Hugging Face names).',
      details: { file: source, kind: description.kind },
    });
  return description.artifacts;
}

/**
 * The artifacts of a compact export of a layers model with every weight densified to float32: what
 * `tf.loadLayersModel` needs. Every tensor is decoded and checked.
 *
 * @param source - the file bytes, or a model read already
 * @param options - `source` name, `maxDenseBytes`
 * @returns standard TF.js model artifacts
 * @throws FinepruneError `CHECKPOINT_CORRUPT` / `CHECKPOINT_MISMATCH` (see {@link readCompactModel}),
 *   `CHECKPOINT_MISMATCH` for a compact export of another kind of model
 *
 * @example
 * ```ts
 * const artifacts = await denseArtifactsOfCompact(bytes);
 * const model = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
 * ```
 */
export async function denseArtifactsOfCompact(
  source: CompactSource,
  options: ReadCompactOptions = {},
): Promise<tf.io.ModelArtifacts> {
  const model = await compactModelOf(source, options);
  const fields = layersFieldsOf(model, options.source ?? 'the compact export');
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const data = new Float32Array(model.tensors.reduce((sum, tensor) => sum + shapeLength(tensor.shape), 0));
  let offset = 0;
  for (const tensor of model.tensors) {
    const values = tensor.dense();
    data.set(values, offset);
    offset += values.length;
    weightSpecs.push({ name: tensor.name, shape: [...tensor.shape], dtype: 'float32' });
  }
  return {
    ...(fields as Omit<tf.io.ModelArtifacts, 'modelTopology'>),
    modelTopology: fields.modelTopology as tf.io.ModelArtifacts['modelTopology'],
    weightSpecs,
    weightData: data.buffer,
  } as tf.io.ModelArtifacts;
}

function shapeLength(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

/**
 * An IOHandler that loads a compact export of a layers model with dense float32 weights, for stock
 * `tf.loadLayersModel`: the model it returns is a plain `tf.LayersModel` (predict, save, fit).
 *
 * @param source - the file bytes, or a model read already
 * @param options - `source` name, `maxDenseBytes`
 * @returns the handler (loading checks the file; see {@link readCompactModel})
 *
 * @example
 * ```ts
 * const bytes = new Uint8Array(await (await fetch('model.fpsparse')).arrayBuffer());
 * const model = await tf.loadLayersModel(compactLayersHandler(bytes, { source: 'model.fpsparse' }));
 * ```
 */
export function compactLayersHandler(
  source: CompactSource,
  options: ReadCompactOptions = {},
): tf.io.IOHandler {
  return { load: () => denseArtifactsOfCompact(source, options) };
}
