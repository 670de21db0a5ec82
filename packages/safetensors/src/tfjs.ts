/**
 * TensorFlow.js glue: safetensors tensors to `tf.Tensor`s and back.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { decodeFloat32, decodeInt32 } from './decode';
import { dtypeInfo, invalid } from './dtypes';
import {
  type EncodableDtype,
  type EncodeSafetensorsOptions,
  encodeSafetensors,
  type SafetensorsInput,
} from './encode';
import type { SafetensorsFile } from './read';

/**
 * Options of {@link tensorsFromSafetensors}.
 *
 * @example
 * ```ts
 * const options: TensorsFromSafetensorsOptions = { names: ['fc1.weight', 'fc1.bias'] };
 * ```
 */
export interface TensorsFromSafetensorsOptions {
  /** Load only these tensors (each must exist). Default: all. */
  names?: readonly string[];
}

/**
 * Makes TF.js tensors of a parsed file: float dtypes become `float32` tensors, integer dtypes
 * `int32` tensors (values outside int32 throw), `BOOL` becomes `bool`. The caller owns (and must
 * dispose) the returned tensors; when one fails to load, those already made are disposed.
 *
 * @param file - a file of {@link readSafetensors}
 * @param options - `names` to load a subset
 * @returns tensor name → `tf.Tensor` with the file's shape
 * @throws FinepruneError `CHECKPOINT_MISMATCH` when a requested name is not in the file,
 *   `INVALID_DATA` when an integer does not fit in int32
 *
 * @example
 * ```ts
 * const file = readSafetensors(bytes);
 * const weights = tensorsFromSafetensors(file, { names: ['fc1.weight'] });
 * weights['fc1.weight']?.print();
 * tf.dispose(Object.values(weights));
 * ```
 */
export function tensorsFromSafetensors(
  file: SafetensorsFile,
  options: TensorsFromSafetensorsOptions = {},
): Record<string, tf.Tensor> {
  if (typeof file !== 'object' || file === null || !(file.tensors instanceof Map)) {
    throw invalid(
      'tensorsFromSafetensors() needs a file returned by readSafetensors().',
      'Pass readSafetensors(bytes) (or await readSafetensorsFile(path)).',
    );
  }
  const names = options.names ?? [...file.tensors.keys()];
  if (!Array.isArray(names)) {
    throw invalid('options.names must be an array of tensor names.', "Pass names such as ['fc1.weight'].");
  }
  const missing = names.filter((name) => !file.tensors.has(name));
  if (missing.length > 0) {
    const available = [...file.tensors.keys()].sort();
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `The safetensors file has no tensor named ${missing.map((name) => JSON.stringify(name)).join(', ')}; it has ${available.length} tensors (${available.slice(0, 8).join(', ')}${available.length > 8 ? ', …' : ''}).`,
      fix: 'Check the names (file.tensors.keys() lists them) or load the file the model was saved to.',
      details: { missing, available },
    });
  }
  // No prototype, so a tensor named "__proto__" is an ordinary key.
  const out: Record<string, tf.Tensor> = Object.create(null);
  try {
    for (const name of names) {
      const tensor = file.tensors.get(name)!;
      const kind = dtypeInfo(tensor.dtype).kind;
      const shape = [...tensor.shape];
      out[name] =
        kind === 'float'
          ? tf.tensor(decodeFloat32(tensor), shape, 'float32')
          : kind === 'int'
            ? tf.tensor(decodeInt32(tensor), shape, 'int32')
            : tf.tensor(Uint8Array.from(decodeInt32(tensor)), shape, 'bool');
    }
  } catch (error) {
    tf.dispose(Object.values(out));
    throw error;
  }
  return out;
}

/**
 * Options of {@link safetensorsFromTensors}.
 *
 * @example
 * ```ts
 * const options: SafetensorsFromTensorsOptions = { dtype: 'BF16', metadata: { format: 'pt' } };
 * ```
 */
export interface SafetensorsFromTensorsOptions {
  /** How to store `float32` tensors. Default `'F32'`. `int32` is stored as `I32`, `bool` as `BOOL`. */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** `__metadata__` strings. */
  metadata?: Record<string, string>;
  /** See {@link EncodeSafetensorsOptions.overflow}: `'error'` (default) or `'saturate'`. */
  overflow?: EncodeSafetensorsOptions['overflow'];
}

/**
 * Reads TF.js tensors (with `data()`, so any backend) and encodes them as a safetensors file with
 * {@link encodeSafetensors}. The tensors are not disposed.
 *
 * @param tensors - name → tensor (`float32`, `int32` or `bool`)
 * @param options - the float `dtype` (default `'F32'`) and `metadata`
 * @returns the file's bytes
 * @throws FinepruneError `INVALID_ARGUMENT` for another tensor dtype or a bad option,
 *   `DISPOSED` for a disposed tensor, and whatever {@link encodeSafetensors} throws
 *
 * @example
 * ```ts
 * const bytes = await safetensorsFromTensors({ 'fc.weight': tf.ones([2, 2]) }, { dtype: 'F16' });
 * await writeSafetensorsFile('model.safetensors', bytes); // from '@fineprune/safetensors/node'
 * ```
 */
export async function safetensorsFromTensors(
  tensors: Record<string, tf.Tensor>,
  options: SafetensorsFromTensorsOptions = {},
): Promise<Uint8Array> {
  const floatDtype = options.dtype ?? 'F32';
  if (floatDtype !== 'F32' && floatDtype !== 'F16' && floatDtype !== 'BF16') {
    throw invalid(
      `safetensorsFromTensors() stores float tensors as F32, F16 or BF16, got ${JSON.stringify(floatDtype)}.`,
      "Pass dtype: 'F32', 'F16' or 'BF16'.",
    );
  }
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors)) {
    throw invalid(
      'safetensorsFromTensors() needs an object mapping names to tf.Tensors.',
      "Pass for example { 'fc.weight': kernel }.",
    );
  }
  const entries = Object.entries(tensors);
  for (const [name, tensor] of entries) {
    if (!(tensor instanceof tf.Tensor)) {
      throw invalid(`The value for ${JSON.stringify(name)} is not a tf.Tensor.`, 'Pass tf.Tensor values.', {
        name,
      });
    }
    if (tensor.isDisposed) {
      throw new FinepruneError({
        code: ErrorCodes.DISPOSED,
        message: `Tensor ${JSON.stringify(name)} was disposed before safetensorsFromTensors() read it.`,
        fix: 'Save the tensors before disposing them.',
        details: { name },
      });
    }
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32' && tensor.dtype !== 'bool') {
      throw invalid(
        `Tensor ${JSON.stringify(name)} has dtype ${tensor.dtype}; safetensorsFromTensors() stores float32, int32 and bool.`,
        'Cast it first (tf.cast(t, "float32")), or save it another way.',
        { name, dtype: tensor.dtype },
      );
    }
  }
  const inputs: Record<string, SafetensorsInput> = Object.create(null);
  for (const [name, tensor] of entries) {
    const data = (await tensor.data()) as Float32Array | Int32Array | Uint8Array;
    const dtype: EncodableDtype =
      tensor.dtype === 'float32' ? floatDtype : tensor.dtype === 'int32' ? 'I32' : 'BOOL';
    inputs[name] = { dtype, shape: tensor.shape, data };
  }
  return encodeSafetensors(inputs, options.metadata, options.overflow ? { overflow: options.overflow } : {});
}
