/**
 * `@fineprune/sparse/layers`: a compact export of a TF.js layers model loaded as a stock
 * `tf.LayersModel` (weights densified to float32). A subpath of its own, because it needs
 * `@tensorflow/tfjs-layers` (an optional peer), which the sparse kernels and the sparse executor do not.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import * as tfl from '@tensorflow/tfjs-layers';
import { type CompactSource, compactLayersHandler } from './format/layers-artifacts';
import type { ReadCompactOptions } from './format/read';

/**
 * Loads a compact export of a TF.js layers model as a plain `tf.LayersModel` with dense float32
 * weights: predict, save, fit, any layer. The file is checked as untrusted (see `readCompactModel`);
 * weights that do not fit the topology are a typed error, not TF.js's own.
 *
 * @param source - the file bytes, or a model read already
 * @param options - `source` name, `maxDenseBytes`
 * @returns the model
 * @throws FinepruneError `CHECKPOINT_CORRUPT` for a damaged file, `CHECKPOINT_MISMATCH` for a file of
 *   another kind or weights that do not fit the topology
 *
 * @example
 * ```ts
 * import { loadDenseLayersModel } from '@fineprune/sparse/layers';
 * const model = await loadDenseLayersModel(new Uint8Array(await (await fetch('mlp.fpsparse')).arrayBuffer()));
 * model.predict(tf.zeros([1, 784]));
 * ```
 */
export async function loadDenseLayersModel(
  source: CompactSource,
  options: ReadCompactOptions = {},
): Promise<tfl.LayersModel> {
  const name = options.source ?? 'the compact export';
  try {
    return await tfl.loadLayersModel(compactLayersHandler(source, options));
  } catch (error) {
    if (FinepruneError.is(error)) throw error;
    const reason = String((error as Error)?.message ?? error);
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `${name}: TF.js cannot build the model from its topology and weights: ${reason.length > 300 ? `${reason.slice(0, 300)}…` : reason}`,
      fix: 'Register custom layer classes (tf.serialization.registerClass) before loading; otherwise the file was edited or damaged: export the model again.',
      cause: error,
      details: { file: name },
    });
  }
}
