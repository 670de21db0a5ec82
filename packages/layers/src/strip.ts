import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import type { LayersPrunableModel } from './from-layers-model';

/**
 * A tensor with its name, as `tf.io.encodeWeights` takes it.
 *
 * @example
 * ```ts
 * const entry: NamedTensor = { name: 'dense_1/kernel', tensor: kernel };
 * ```
 */
export interface NamedTensor {
  name: string;
  tensor: tf.Tensor;
}

type ModelConfig = Parameters<typeof tfl.models.modelFromJSON>[0];

/** The model's topology as JSON (what `model.json` stores under `modelTopology`). */
export function modelTopology(model: tfl.LayersModel): ModelConfig {
  return model.toJSON(null, false) as ModelConfig;
}

/**
 * Rebuilds a model from its topology JSON, mapping failures to `CHECKPOINT_CORRUPT`.
 */
export async function modelFromTopology(topology: unknown): Promise<tfl.LayersModel> {
  try {
    return await tfl.models.modelFromJSON({ modelTopology: topology } as ModelConfig);
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_CORRUPT,
      message: `The model topology cannot be rebuilt: ${(error as Error).message}`,
      fix: 'Register custom layer classes (tf.serialization.registerClass) before loading, or save the model again.',
      cause: error,
    });
  }
}

/**
 * The weights of a pruned model with its masks applied: W ⊙ M for every prunable parameter, the
 * raw value for every other weight, by the names of {@link LayersPrunableModel.variables}. Masked
 * entries are +0. The caller disposes the tensors.
 *
 * @param prunable - the wrapped model
 * @returns one tensor per model weight, in the order of `model.weights`
 *
 * @example
 * ```ts
 * const weights = maskedWeights(prunable);
 * console.log(weights.map(({ name, tensor }) => `${name} ${tensor.shape}`));
 * tf.dispose(weights.map(({ tensor }) => tensor));
 * ```
 */
export function maskedWeights(prunable: LayersPrunableModel): NamedTensor[] {
  const masks = new Map<tf.Variable, tf.Variable>(
    prunable.parameters().map((parameter) => [parameter.weight, parameter.mask]),
  );
  return tf.tidy(() =>
    prunable.variables().map(({ name, variable }) => {
      const mask = masks.get(variable);
      // + 0 turns the −0 of a masked negative weight into +0.
      return { name, tensor: mask ? tf.add(tf.mul(variable, mask), 0) : variable.clone() };
    }),
  );
}

/**
 * A new plain `tf.LayersModel` with the topology of the pruned model and weights W ⊙ M: masks
 * applied, learned scores and masks dropped. Stock TF.js saves, loads and runs it; it predicts what
 * the pruned model predicts. The pruned model is left as it was. The copy is not compiled.
 *
 * It is asynchronous because TF.js rebuilds models from JSON asynchronously.
 *
 * @param prunable - a model wrapped with {@link fromLayersModel}
 * @returns the stripped copy (dispose it when done)
 * @throws FinepruneError `DISPOSED` when the wrapper was unwrapped, `CHECKPOINT_CORRUPT` when the
 *   topology cannot be rebuilt (a custom layer class that is not registered for serialization)
 *
 * @example
 * ```ts
 * const plain = await strip(prunable);
 * await plain.save(fileSystem('./models/pruned'));
 * plain.dispose();
 * ```
 */
export async function strip(prunable: LayersPrunableModel): Promise<tfl.LayersModel> {
  prunable.parameters(); // throws DISPOSED after unwrap()
  const copy = await modelFromTopology(modelTopology(prunable.model));
  const weights = maskedWeights(prunable);
  try {
    if (copy.weights.length !== weights.length) {
      throw new FinepruneError({
        code: ErrorCodes.SHAPE_MISMATCH,
        message: `The rebuilt model has ${copy.weights.length} weights but the pruned model has ${weights.length}.`,
        fix: "Check the custom layers' getConfig(): rebuilding from it must create the same weights.",
      });
    }
    copy.setWeights(weights.map(({ tensor }) => tensor));
  } catch (error) {
    copy.dispose();
    throw error;
  } finally {
    tf.dispose(weights.map(({ tensor }) => tensor));
  }
  return copy;
}

/**
 * Strips the pruned model ({@link strip}) and saves the plain copy through a TF.js handler: the
 * result is a standard layers model that stock TF.js loads with `tf.loadLayersModel()`.
 *
 * @param prunable - a model wrapped with {@link fromLayersModel}
 * @param handler - an IOHandler such as {@link fileSystem}, or a URL TF.js knows
 *   (`indexeddb://…`, `localstorage://…`, `downloads://…`)
 * @returns what the handler reports
 *
 * @example
 * ```ts
 * await saveStripped(prunable, fileSystem('./models/pruned'));
 * // elsewhere, stock TF.js:
 * const model = await tf.loadLayersModel('https://example.com/models/pruned/model.json');
 * ```
 */
export async function saveStripped(
  prunable: LayersPrunableModel,
  handler: tf.io.IOHandler | string,
): Promise<tf.io.SaveResult> {
  const plain = await strip(prunable);
  try {
    return await plain.save(handler);
  } finally {
    plain.dispose();
  }
}
