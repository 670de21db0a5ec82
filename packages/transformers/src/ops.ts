/**
 * The encoder's building blocks as TF.js ops with short, closed-form gradients: GELU, LayerNorm,
 * batched matrix products without transposed-operand flags, seeded dropout, and row-wise
 * cross-entropy.
 */

import * as tf from '@tensorflow/tfjs-core';
import { batchMatMul, dense, dropoutMask, scaledMaskedSoftmax } from '@fineprune/tensor';

/**
 * GELU exact and tanh (Hendrycks & Gimpel 2016, Eq. 1 and Sec. 2), LayerNorm (Ba et al. 2016, Eq. 4)
 * and the batched product with explicit transposes in its gradient are @fineprune/tensor's, with
 * their closed-form gradients and fused wasm passes; the encoder takes them from here.
 */
export { batchMatMul, gelu, geluTanh, layerNorm } from '@fineprune/tensor';

/**
 * Inverted dropout with a seeded mask (Srivastava et al. 2014): each entry is kept with probability
 * 1 − rate and scaled by 1/(1 − rate). The mask comes from `createRandom(seed)` (xoshiro128**),
 * one 32-bit draw per entry, so the same seed gives the same mask on every backend (`dropoutMask` of
 * @fineprune/tensor, which draws it in WebAssembly on wasm).
 *
 * @param x - any float32 tensor
 * @param rate - the drop probability, in [0, 1)
 * @param seed - a 32-bit seed; the caller advances it between calls
 * @returns the masked tensor (x itself is not changed)
 *
 * @example
 * ```ts
 * const dropped = seededDropout(hidden, 0.1, random.nextUint32());
 * ```
 */
export function seededDropout<T extends tf.Tensor>(x: T, rate: number, seed: number): T {
  if (rate === 0) return x.clone() as T;
  return tf.tidy(() => tf.mul(x, dropoutMask(x.shape, rate, seed))) as T; // dropoutMask checks the rate
}

/**
 * Softmax cross-entropy of each row of logits against an integer label, CE = log Σ_j exp(z_j − m) −
 * (z_label − m) with m = max_j z_j (the log-sum-exp form of −log softmax(z)_label). The gradient is
 * softmax(z) − onehot(label) (Goodfellow et al. 2016, Sec. 6.2.2.3), computed from the exponentials
 * saved by the forward pass: one `Exp` over the [rows, classes] logits per step instead of three, which
 * matters for a 30,522-word vocabulary on wasm.
 *
 * @param logits - [rows, classes]
 * @param labels - int32 [rows], each in [0, classes)
 * @returns float32 [rows]
 *
 * @example
 * ```ts
 * const perRow = rowCrossEntropy(logits, labels); // [rows]
 * ```
 */
export function rowCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  const [rows, classes] = logits.shape;
  const op = tf.customGrad((input, save) => {
    const z = input as tf.Tensor2D;
    const { exps, total, loss } = tf.tidy(() => {
      const shifted = tf.sub(z, tf.max(z, 1, true)); // z − m
      const e = tf.exp(shifted);
      const sum = tf.sum(e, 1, true);
      // z_label − m, by a flat gather at row·classes + label
      const flat = tf.add(tf.mul(tf.range(0, rows, 1, 'int32'), tf.scalar(classes, 'int32')), labels);
      const picked = tf.gather(tf.reshape(shifted, [rows * classes]), flat);
      return { exps: e, total: sum, loss: tf.sub(tf.log(tf.reshape(sum, [rows])), picked) };
    });
    (save as tf.GradSaveFunc)([exps, total]);
    return {
      value: loss,
      gradFunc: (dy, saved) => {
        const [e, sum] = saved as [tf.Tensor, tf.Tensor];
        // ∂CE/∂z = softmax(z) − onehot(label), times the upstream gradient of each row
        const softmax = tf.div(e, sum);
        return tf.mul(tf.sub(softmax, tf.oneHot(labels, classes)), tf.reshape(dy, [rows, 1]));
      },
    };
  });
  return op(logits) as tf.Tensor1D;
}

/**
 * Weights of one attention projection: kernel [H, H] (stored [in, out]) and bias [H].
 *
 * @example
 * ```ts
 * const query: ProjectionWeights = { kernel: parameter.effectiveWeight() as tf.Tensor2D, bias };
 * ```
 */
export interface ProjectionWeights {
  kernel: tf.Tensor2D;
  bias: tf.Tensor1D;
}

/**
 * A projection x ↦ x·W + b computed by the caller (for example with sparse kernels), for inference.
 *
 * @example
 * ```ts
 * const query: ProjectionFunction = (hidden) => sparseDense(hidden, weights) as tf.Tensor2D;
 * ```
 */
export type ProjectionFunction = (hidden: tf.Tensor2D) => tf.Tensor2D;

/**
 * One projection: its weights, or a function that computes it.
 *
 * @example
 * ```ts
 * const project = (projection: Projection, x: tf.Tensor2D) => applyProjection(projection, x);
 * ```
 */
export type Projection = ProjectionWeights | ProjectionFunction;

/**
 * x·W + b for a {@link Projection}: `dense` for weights, the function otherwise.
 *
 * @example
 * ```ts
 * const y = applyProjection({ kernel, bias }, x); // the same as dense(x, kernel, bias)
 * ```
 */
export function applyProjection(projection: Projection, hidden: tf.Tensor2D): tf.Tensor2D {
  return typeof projection === 'function'
    ? projection(hidden)
    : dense(hidden, projection.kernel, projection.bias);
}

/**
 * What {@link multiHeadAttention} needs.
 *
 * @example
 * ```ts
 * const inputs: AttentionInputs = { hidden, batch: 1, length: 3, heads: 2, query, key, value };
 * ```
 */
export interface AttentionInputs {
  /** Hidden states, [B·L, H] (sequence-major: row b·L + t is token t of sequence b). */
  hidden: tf.Tensor2D;
  batch: number;
  length: number;
  heads: number;
  /** Dimensions of each head; default H / heads (a shrunk layer has fewer heads of the same size). */
  headSize?: number;
  query: Projection;
  key: Projection;
  value: Projection;
  /** Additive mask on the keys, [B, 1, 1, L] (0 for real tokens, −10000 for padding), or none. */
  additiveMask?: tf.Tensor;
  /** Applied to the attention probabilities (dropout), when given. */
  dropProbabilities?: (probabilities: tf.Tensor) => tf.Tensor;
}

/**
 * Multi-head self-attention before the output projection: Q, K, V = dense(h) split into heads,
 * softmax(QKᵀ/√d_head + mask)·V per head (Vaswani et al. 2017, Eq. 1 and Sec. 3.2.2), heads
 * concatenated back to [B·L, H]. Projections are 2-D `dense` on [B·L, H]; K is transposed
 * explicitly and the batched products use {@link batchMatMul}, fast on wasm.
 *
 * @param inputs - hidden states, sizes, projection weights, mask
 * @returns the concatenated context vectors, [B·L, heads · headSize]
 *
 * @example
 * ```ts
 * const context = multiHeadAttention({ hidden, batch: 2, length: 8, heads: 4, query, key, value, additiveMask });
 * ```
 */
export function multiHeadAttention(inputs: AttentionInputs): tf.Tensor2D {
  const { hidden, batch: B, length: L, heads } = inputs;
  const headSize = inputs.headSize ?? hidden.shape[1] / heads;
  return tf.tidy(() => {
    const split = (t: tf.Tensor2D) => tf.reshape(t, [B, L, heads, headSize]);
    const project = (projection: Projection) => applyProjection(projection, hidden);
    const query = tf.transpose(split(project(inputs.query)), [0, 2, 1, 3]); // [B, heads, L, d]
    const keyT = tf.transpose(split(project(inputs.key)), [0, 2, 3, 1]); // [B, heads, d, L]
    const value = tf.transpose(split(project(inputs.value)), [0, 2, 1, 3]); // [B, heads, L, d]
    // softmax(QKᵀ/√d + mask): scale, mask and softmax in one fused pass on wasm
    const scores = batchMatMul(query, keyT);
    let probabilities = scaledMaskedSoftmax(scores, 1 / Math.sqrt(headSize), inputs.additiveMask);
    if (inputs.dropProbabilities) probabilities = inputs.dropProbabilities(probabilities);
    const context = batchMatMul(probabilities, value); // [B, heads, L, d]
    return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [B * L, heads * headSize]) as tf.Tensor2D;
  });
}
