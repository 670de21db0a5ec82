/**
 * The activations of tfjs-layers (by their names in a saved topology), as tfjs-core ops computing the
 * same formulas, so a sparse model runs without tfjs-layers.
 */

import * as tf from '@tensorflow/tfjs-core';

type Activation = (x: tf.Tensor) => tf.Tensor;

/** The activation functions by their serialized names (tfjs-layers' activation_config.ts). */
const ACTIVATIONS: Record<string, Activation> = {
  linear: (x) => x,
  relu: (x) => tf.relu(x),
  relu6: (x) => tf.minimum(6, tf.relu(x)),
  elu: (x) => tf.elu(x),
  selu: (x) => tf.selu(x),
  sigmoid: (x) => tf.sigmoid(x),
  hard_sigmoid: (x) => tf.clipByValue(tf.add(0.5, tf.mul(0.2, x)), 0, 1),
  tanh: (x) => tf.tanh(x),
  softmax: (x) => tf.softmax(x, -1),
  softplus: (x) => tf.softplus(x),
  softsign: (x) => tf.div(x, tf.add(tf.abs(x), 1)),
  swish: (x) => tf.mul(tf.sigmoid(x), x),
  mish: (x) => tf.mul(x, tf.tanh(tf.softplus(x))),
  // Φ(x) = ½(1 + erf(x/√2)) (Hendrycks & Gimpel 2016, Eq. 1 context), and its tanh approximation.
  gelu: (x) => tf.mul(x, tf.mul(0.5, tf.add(1, tf.erf(tf.div(x, Math.sqrt(2)))))),
  gelu_new: (x) =>
    tf.mul(
      0.5,
      tf.mul(
        x,
        tf.add(1, tf.tanh(tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3)))))),
      ),
    ),
};

/** The activation of a serialized name (`undefined`, `null` and `'linear'` are the identity). */
export function activationByName(name: unknown): Activation | undefined {
  if (name === undefined || name === null) return ACTIVATIONS.linear;
  return typeof name === 'string' && Object.hasOwn(ACTIVATIONS, name) ? ACTIVATIONS[name] : undefined;
}

/** The names {@link activationByName} knows. */
export const ACTIVATION_NAMES = Object.keys(ACTIVATIONS);
