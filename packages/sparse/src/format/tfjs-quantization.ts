/**
 * TF.js's own weight quantization, for users who need stock `tf.loadLayersModel` to read the file:
 * float32 weights stored as uint8 or uint16 (affine, with 0 exactly representable so pruned weights
 * stay exactly 0) or float16, described by `quantization` in the weights manifest. Stock TF.js
 * expands them to float32 at load (v = q · scale + min); run-time memory is float32 either way.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { firstNonFiniteFloat16, float16FromFloat32 } from '@fineprune/tensor/float16';
import { quoteText } from '@fineprune/tensor/untrusted';

/**
 * The storage types of TF.js's weight quantization.
 *
 * @example
 * ```ts
 * const dtype: TfjsQuantization = 'uint8';
 * ```
 */
export type TfjsQuantization = 'uint8' | 'uint16' | 'float16';

/**
 * Every {@link TfjsQuantization}.
 *
 * @example
 * ```ts
 * TFJS_QUANTIZATIONS.includes('uint8'); // true
 * ```
 */
export const TFJS_QUANTIZATIONS: readonly TfjsQuantization[] = ['uint8', 'uint16', 'float16'];

/** Affine parameters with a zero point: v ≈ q · scale + min, and q = −min / scale decodes to exactly 0. */
export interface AffineQuantization {
  scale: number;
  min: number;
  /** The largest code (255 or 65535). */
  levels: number;
}

/**
 * Affine parameters covering [min(values, 0), max(values, 0)] with 0 on a code: scale = range /
 * levels, then min moved to −round(−min / scale) · scale (by at most scale / 2), so the error of a
 * value is at most one scale step (half a step inside the range).
 */
export function affineQuantization(values: Float32Array, levels: number): AffineQuantization {
  let low = 0;
  let high = 0;
  for (const value of values) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  if (high === low) return { scale: 1, min: 0, levels };
  const scale = (high - low) / levels;
  const zeroPoint = Math.round(-low / scale);
  return { scale, min: -zeroPoint * scale, levels };
}

/** The codes of `values` under affine parameters, clamped to [0, levels]. */
export function affineCodes(
  values: Float32Array,
  { scale, min, levels }: AffineQuantization,
): Uint8Array | Uint16Array {
  const codes = levels === 255 ? new Uint8Array(values.length) : new Uint16Array(values.length);
  const zeroPoint = Math.round(-min / scale);
  for (let index = 0; index < values.length; index += 1)
    codes[index] = Math.max(0, Math.min(levels, Math.round(values[index]! / scale) + zeroPoint));
  return codes;
}

function weightBytes(artifacts: tf.io.ModelArtifacts): ArrayBuffer {
  const data = artifacts.weightData;
  if (data === undefined) return new ArrayBuffer(0);
  return tf.io.concatenateArrayBuffers(Array.isArray(data) ? data : [data]);
}

/** One weight's stored bytes and manifest entry under the quantization. */
function quantizeWeight(
  spec: tf.io.WeightsManifestEntry,
  values: Float32Array,
  dtype: TfjsQuantization,
): { spec: tf.io.WeightsManifestEntry; bytes: Uint8Array } {
  if (dtype === 'float16') {
    const bits = float16FromFloat32(values);
    const overflow = firstNonFiniteFloat16(bits);
    if (overflow >= 0)
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `The weight ${quoteText(spec.name)} holds ${values[overflow]} (index ${overflow}), which float16 cannot hold (its largest value is 65504).`,
        fix: "Quantize to 'uint8' or 'uint16' (scaled per weight), or keep float32.",
        details: { tensor: spec.name.slice(0, 200), index: overflow },
      });
    return { spec: { ...spec, quantization: { dtype: 'float16' } }, bytes: new Uint8Array(bits.buffer) };
  }
  const affine = affineQuantization(values, dtype === 'uint8' ? 255 : 65535);
  const codes = affineCodes(values, affine);
  return {
    spec: { ...spec, quantization: { dtype, scale: affine.scale, min: affine.min } },
    bytes: new Uint8Array(codes.buffer),
  };
}

/**
 * A copy of layers-model artifacts with every float32 weight stored in TF.js's quantized form
 * (`quantization` in the weights manifest): uint8 or uint16 affine per weight with 0 exactly
 * representable, or float16. Stock `tf.loadLayersModel` reads the result. Other dtypes stay as they
 * are; weights already quantized are decoded first.
 *
 * Error bounds per value: uint8 and uint16, one step (range / 255 or range / 65535, range =
 * max(w, 0) − min(w, 0)); float16, half a unit in the last place (2⁻¹¹ relative in the normal range).
 *
 * @param artifacts - what `model.save()` hands a handler
 * @param dtype - `'uint8'`, `'uint16'` or `'float16'`
 * @returns the quantized artifacts (weights in one buffer)
 * @throws FinepruneError `INVALID_ARGUMENT` for an unknown dtype, or a weight float16 cannot hold
 *
 * @example
 * ```ts
 * await stripped.save(tf.io.withSaveHandler(async (artifacts) => inner.save(quantizeArtifacts(artifacts, 'uint8'))));
 * ```
 */
export function quantizeArtifacts(
  artifacts: tf.io.ModelArtifacts,
  dtype: TfjsQuantization,
): tf.io.ModelArtifacts {
  if (!TFJS_QUANTIZATIONS.includes(dtype))
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `TF.js quantizes weights to ${TFJS_QUANTIZATIONS.join(', ')}, not ${quoteText(dtype)}.`,
      fix: "Pass 'uint8', 'uint16' or 'float16'.",
    });
  const specs = artifacts.weightSpecs ?? [];
  const decoded = tf.io.decodeWeights(weightBytes(artifacts), specs);
  try {
    const parts = specs.map((spec) => {
      const tensor = decoded[spec.name]!;
      if (tensor.dtype !== 'float32') {
        const raw = tensor.dataSync() as Int32Array | Uint8Array;
        return { spec, bytes: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) };
      }
      return quantizeWeight(
        { name: spec.name, shape: spec.shape, dtype: 'float32' },
        tensor.dataSync() as Float32Array,
        dtype,
      );
    });
    const total = parts.reduce((sum, part) => sum + part.bytes.length, 0);
    const data = new Uint8Array(total);
    let offset = 0;
    for (const part of parts) {
      data.set(part.bytes, offset);
      offset += part.bytes.length;
    }
    return { ...artifacts, weightSpecs: parts.map((part) => part.spec), weightData: data.buffer };
  } finally {
    tf.dispose(Object.values(decoded));
  }
}
