/**
 * The hard-concrete and sigmoid-sum computations of L0 and soft movement pruning, routed: the fused
 * WebAssembly SIMD passes of fused-gates.ts on `wasm`, the TF.js op chains (or a JavaScript loop)
 * everywhere else. @fineprune/masks and the conformance suite call these.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  fusedHardConcreteGate,
  fusedHardConcreteMaskedWeight,
  fusedHardConcreteTestMasks,
  fusedSigmoidSum,
  fusedUniformNoise,
  type HardConcreteGateParameters,
} from './fused-gates';

/**
 * Uniform noise float32(offset + span·U), U the next draws of `random` in [0, 1): generated in
 * WebAssembly on `wasm` when `random` is `createRandom`'s generator ({@link fusedUniformNoise}),
 * else by a JavaScript loop over `random.next()` — the same values either way.
 *
 * @example
 * ```ts
 * const u = uniformNoiseTensor([784, 300], createRandom(1), 1e-6, 1 - 2e-6);
 * ```
 */
export function uniformNoiseTensor(
  shape: readonly number[],
  random: { next(): number },
  offset: number,
  span: number,
): tf.Tensor {
  const fused = fusedUniformNoise(shape, random, offset, span);
  if (fused !== undefined) return fused;
  const values = new Float32Array(tf.util.sizeFromShape([...shape]));
  for (let index = 0; index < values.length; index += 1) values[index] = offset + span * random.next();
  return tf.tensor(values, [...shape], 'float32');
}

/**
 * The stochastic hard-concrete gate M = min(1, ReLU((r − l)·σ((log u − log(1 − u) + S)/b) + l)),
 * differentiable in S: {@link fusedHardConcreteGate} on `wasm`, the TF.js op chain elsewhere.
 *
 * @example
 * ```ts
 * const gate = hardConcreteGateTensor(scores, u, { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
 * ```
 */
export function hardConcreteGateTensor(
  scores: tf.Tensor,
  u: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor {
  const fused = fusedHardConcreteGate(scores, u, parameters);
  if (fused !== undefined) return fused;
  const { beta, limitLeft, limitRight } = parameters;
  return tf.tidy(() => {
    // S̄ = σ((log u − log(1 − u) + S)/b)
    const stretched = tf.sigmoid(tf.div(tf.add(tf.sub(tf.log(u), tf.log1p(tf.neg(u))), scores), beta));
    // Z = (r − l)S̄ + l; M = min(1, ReLU(Z))
    return tf.minimum(tf.relu(tf.add(tf.mul(stretched, limitRight - limitLeft), limitLeft)), 1);
  });
}

/**
 * The deterministic gate M̂ = min(1, ReLU((r − l)σ(S) + l)) by the TF.js op chain (any backend).
 *
 * @example
 * ```ts
 * const mask = hardConcreteTestMaskTensor(scores, { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 });
 * ```
 */
export function hardConcreteTestMaskTensor(
  scores: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor {
  const { limitLeft, limitRight } = parameters;
  // M̂ = min(1, ReLU((r − l)σ(S) + l))
  return tf.tidy(() =>
    tf.minimum(tf.relu(tf.add(tf.mul(tf.sigmoid(scores), limitRight - limitLeft), limitLeft)), 1),
  );
}

/**
 * M̂ of every score tensor and the number of open gates (M̂ > 0) in each: one fused pass per tensor
 * on `wasm` ({@link fusedHardConcreteTestMasks}), the op chain and one read-back elsewhere.
 *
 * @example
 * ```ts
 * const { masks, counts } = await hardConcreteTestMaskTensors([scores], parameters);
 * ```
 */
export async function hardConcreteTestMaskTensors(
  scores: readonly tf.Tensor[],
  parameters: HardConcreteGateParameters,
): Promise<{ masks: tf.Tensor[]; counts: number[] }> {
  const fused = fusedHardConcreteTestMasks(scores, parameters);
  if (fused !== undefined) return fused;
  const masks = scores.map((tensor) => hardConcreteTestMaskTensor(tensor, parameters));
  if (masks.length === 0) return { masks, counts: [] };
  const open = tf.tidy(() => tf.stack(masks.map((mask) => tf.sum(tf.cast(tf.greater(mask, 0), 'float32')))));
  const counts = Array.from(await open.data());
  open.dispose();
  return { masks, counts };
}

/**
 * Σ σ(S − shift), differentiable in S: {@link fusedSigmoidSum} on `wasm`, `tf.sum(tf.sigmoid(S −
 * shift))` elsewhere.
 *
 * @example
 * ```ts
 * const penalty = sigmoidSumTensor(scores, 0); // Σ σ(S)
 * ```
 */
export function sigmoidSumTensor(scores: tf.Tensor, shift: number): tf.Scalar {
  return (
    fusedSigmoidSum(scores, shift) ??
    tf.tidy(() => tf.sum(tf.sigmoid(shift === 0 ? scores : tf.sub(scores, shift))) as tf.Scalar)
  );
}

/**
 * W ⊙ M for the stochastic hard-concrete gate M, differentiable in W and S:
 * {@link fusedHardConcreteMaskedWeight} on `wasm`, `W ⊙ hardConcreteGateTensor(S, u)` elsewhere.
 *
 * @example
 * ```ts
 * const masked = hardConcreteMaskedWeightTensor(weight, scores, u, parameters);
 * ```
 */
export function hardConcreteMaskedWeightTensor(
  weight: tf.Tensor,
  scores: tf.Tensor,
  u: tf.Tensor,
  parameters: HardConcreteGateParameters,
): tf.Tensor {
  return (
    fusedHardConcreteMaskedWeight(weight, scores, u, parameters) ??
    tf.tidy(() => tf.mul(weight, hardConcreteGateTensor(scores, u, parameters)))
  );
}
