import * as tf from '@tensorflow/tfjs-core';
import { softmaxCrossEntropy } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * A loss function on one output: targets first, predictions second, a scalar result.
 *
 * @example
 * ```ts
 * const meanAbsolute: LossFunction = (yTrue, yPred) => tf.mean(tf.abs(tf.sub(yTrue, yPred)));
 * fromLayersModel(model, { loss: meanAbsolute });
 * ```
 */
export type LossFunction = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar;

/**
 * The task loss of a wrapped model: a built-in name or your own function.
 *
 * - `sparseCategoricalCrossentropy`: integer class labels `[…]`, predictions `[…, classes]`.
 * - `categoricalCrossentropy`: one-hot (or soft) targets with the shape of the predictions.
 * - `meanSquaredError`: targets with the shape of the predictions.
 *
 * @example
 * ```ts
 * const loss: LayersLoss = 'sparseCategoricalCrossentropy';
 * const huber: LayersLoss = (yTrue, yPred) => tf.losses.huberLoss(yTrue, yPred);
 * ```
 */
export type LayersLoss =
  | 'sparseCategoricalCrossentropy'
  | 'categoricalCrossentropy'
  | 'meanSquaredError'
  | LossFunction;

/** Probabilities are clipped to [ε, 1 − ε] before the logarithm, as Keras does. */
const EPSILON = 1e-7;

function lossError(message: string, fix: string): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.SHAPE_MISMATCH, message, fix });
}

/** Log-probabilities of the predictions, `[rows, classes]`. */
function logProbabilities(yPred: tf.Tensor, fromLogits: boolean): tf.Tensor2D {
  const classes = yPred.shape[yPred.rank - 1]!;
  const rows = tf.reshape(yPred, [-1, classes]) as tf.Tensor2D;
  if (fromLogits) return tf.logSoftmax(rows);
  return tf.log(tf.clipByValue(rows, EPSILON, 1 - EPSILON));
}

function sparseCrossEntropy(yTrue: tf.Tensor, yPred: tf.Tensor, fromLogits: boolean): tf.Scalar {
  if (yPred.rank < 1) {
    throw lossError(
      `sparseCategoricalCrossentropy needs predictions [batch, classes], got a scalar.`,
      'Give the model an output with one entry per class.',
    );
  }
  const classes = yPred.shape[yPred.rank - 1]!;
  const rows = yPred.size / classes;
  if (yTrue.size !== rows) {
    throw lossError(
      `sparseCategoricalCrossentropy needs one label per prediction row: labels [${yTrue.shape}], predictions [${yPred.shape}].`,
      'Pass integer class labels of shape [batch] (or [batch, 1]); use categoricalCrossentropy for one-hot targets.',
    );
  }
  if (fromLogits) {
    // One op each way on wasm (@fineprune/tensor's fused cross-entropy), the chain below elsewhere.
    return softmaxCrossEntropy(
      tf.reshape(yPred, [rows, classes]) as tf.Tensor2D,
      tf.reshape(yTrue, [rows]) as tf.Tensor1D,
    );
  }
  const labels = tf.cast(tf.reshape(yTrue, [rows]), 'int32') as tf.Tensor1D;
  const picked = tf.mul(tf.oneHot(labels, classes), logProbabilities(yPred, fromLogits));
  return tf.neg(tf.mean(tf.sum(picked, -1))) as tf.Scalar;
}

function categoricalCrossEntropy(yTrue: tf.Tensor, yPred: tf.Tensor, fromLogits: boolean): tf.Scalar {
  if (!tf.util.arraysEqual(yTrue.shape, yPred.shape)) {
    throw lossError(
      `categoricalCrossentropy needs targets shaped like the predictions: targets [${yTrue.shape}], predictions [${yPred.shape}].`,
      'Pass one-hot targets [batch, classes]; use sparseCategoricalCrossentropy for integer labels.',
    );
  }
  const classes = yPred.shape[yPred.rank - 1]!;
  const targets = tf.reshape(tf.cast(yTrue, 'float32'), [-1, classes]);
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, logProbabilities(yPred, fromLogits)), -1))) as tf.Scalar;
}

function meanSquaredError(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
  if (yTrue.size !== yPred.size) {
    throw lossError(
      `meanSquaredError needs targets with the size of the predictions: targets [${yTrue.shape}], predictions [${yPred.shape}].`,
      'Pass targets with the shape of the model output.',
    );
  }
  return tf.mean(tf.squaredDifference(tf.reshape(tf.cast(yTrue, 'float32'), yPred.shape), yPred));
}

/**
 * Resolves a {@link LayersLoss} to a function of one output.
 *
 * @param loss - a built-in name or a function
 * @param fromLogits - whether the predictions are logits (cross-entropies only)
 * @returns the loss of one output
 * @throws FinepruneError `INVALID_ARGUMENT` for an unknown name
 *
 * @example
 * ```ts
 * const lossFn = resolveLoss('sparseCategoricalCrossentropy', true);
 * const value = lossFn(labels, logits);
 * ```
 */
export function resolveLoss(loss: LayersLoss, fromLogits: boolean): LossFunction {
  if (typeof loss === 'function') return loss;
  switch (loss) {
    case 'sparseCategoricalCrossentropy':
      return (yTrue, yPred) => sparseCrossEntropy(yTrue, yPred, fromLogits);
    case 'categoricalCrossentropy':
      return (yTrue, yPred) => categoricalCrossEntropy(yTrue, yPred, fromLogits);
    case 'meanSquaredError':
      return meanSquaredError;
    default:
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `Unknown loss ${JSON.stringify(loss)}.`,
        fix: "Use 'sparseCategoricalCrossentropy', 'categoricalCrossentropy', 'meanSquaredError' or a function (yTrue, yPred) => tf.Scalar.",
      });
  }
}
