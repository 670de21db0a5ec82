/**
 * The model a run started from, as far as its size goes: the bytes of its model.json topology and
 * stored weights, and the TF.js quantization its weights were stored in. A run records it in its
 * checkpoints, so that its exports are never larger than the model it came from unless the user asks
 * (a uint8 model exports as uint8 by default).
 */

import { artifactsReferenceBytes, TFJS_QUANTIZATIONS, type TfjsQuantization } from '@fineprune/sparse';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * The size and storage of the model a run started from.
 *
 * @example
 * ```ts
 * const source: ModelSource = { bytes: 2_600_000, quantization: 'uint8' };
 * ```
 */
export interface ModelSource {
  /** Bytes of its topology (as JSON) and its stored weights. */
  bytes: number;
  /** The TF.js quantization every float32 weight was stored in, when they all shared one. */
  quantization?: TfjsQuantization;
}

const sources = new WeakMap<object, ModelSource>();

/**
 * The {@link ModelSource} of loaded artifacts.
 *
 * @example
 * ```ts
 * const source = sourceOfArtifacts(await fileSystem(directory).load!());
 * ```
 */
export function sourceOfArtifacts(artifacts: tf.io.ModelArtifacts): ModelSource {
  const float32 = (artifacts.weightSpecs ?? []).filter((spec) => spec.dtype === 'float32');
  const kinds = new Set(float32.map((spec) => spec.quantization?.dtype));
  const [only] = kinds;
  return {
    bytes: artifactsReferenceBytes(artifacts),
    ...(kinds.size === 1 && only !== undefined ? { quantization: only as TfjsQuantization } : {}),
  };
}

/** Remembers where a loaded model came from (see {@link modelSourceOf}). */
export function rememberModelSource(model: object, source: ModelSource): void {
  sources.set(model, source);
}

/**
 * Where a model loaded from a file came from; undefined for models built in memory.
 *
 * @example
 * ```ts
 * modelSourceOf(await loadSavedModel('models/mobilenet', { baseDirectory: '.' })); // { bytes: 2608712, quantization: 'uint8' }
 * ```
 */
export function modelSourceOf(model: object): ModelSource | undefined {
  return sources.get(model);
}

/**
 * A {@link ModelSource} read back from checkpoint metadata, or undefined when absent or malformed.
 *
 * @example
 * ```ts
 * const source = parseModelSource(metadata?.source);
 * ```
 */
export function parseModelSource(value: unknown): ModelSource | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { bytes, quantization } = value as Record<string, unknown>;
  if (!(Number.isSafeInteger(bytes) && (bytes as number) > 0)) return undefined;
  if (quantization !== undefined && !TFJS_QUANTIZATIONS.includes(quantization as TfjsQuantization))
    return undefined;
  return {
    bytes: bytes as number,
    ...(quantization ? { quantization: quantization as TfjsQuantization } : {}),
  };
}
