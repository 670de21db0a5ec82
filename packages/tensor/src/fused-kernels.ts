/**
 * Names and contracts of fineprune's fused training kernels: one TF.js kernel in place of a chain of
 * element-wise ops. A backend package registers a kernel under one of these names (for its own
 * backend name) together with its gradient; model code asks {@link fusedKernelAvailable} and calls
 * `tf.engine().runKernel(name, inputs, attrs)` when it is there, else the plain op chain. The
 * contracts below are what every registration must compute, within float32 rounding of that chain.
 */

import * as tf from '@tensorflow/tfjs-core';

/**
 * The fused kernels. Inputs and attributes:
 * - `attentionSoftmax`: inputs `{ scores }` [..., rows, L] and optionally `{ mask }` [B, 1, 1, L]
 *   (additive, broadcast over heads and query rows); attribute `scale`. Output softmax(scale ·
 *   scores + mask) over the last axis (Vaswani et al. 2017, Eq. 1).
 * - `attentionSoftmaxGrad`: inputs `{ probabilities, dy }`, attribute `scale`. Output
 *   scale · p ⊙ (dy − Σ_j dy ⊙ p), the gradient of the above with respect to `scores`.
 * - `layerNorm`: inputs `{ x, gamma, beta }` ([rows, F], [F], [F]); attribute `epsilon`. Output
 *   γ ⊙ (x − μ)/√(σ² + ε) + β per row (Ba et al. 2016, Eq. 4; biased variance).
 * - `layerNormGrad`: inputs `{ dy, x, gamma }`, attribute `epsilon`. Output dx.
 * - `layerNormParamGrad`: inputs `{ dy, x }`, attribute `epsilon`. Output dγ = Σ_rows dy ⊙ x̂, [F]
 *   (dβ = Σ_rows dy is a plain `tf.sum`).
 * - `gelu`: input `{ x }`. Output x·Φ(x), Φ from the erf of Abramowitz & Stegun 7.1.26 (as TF.js's Erf).
 * - `geluGrad`: inputs `{ x, dy }`. Output dy ⊙ (Φ(x) + x·φ(x)).
 * - `maskedMatMul`: inputs `{ x, weight, mask }` and optionally `{ bias }` ([R, K], [K, N], [K, N],
 *   [N]); attribute `activation` (`'linear' | 'relu' | 'gelu'`). Output y = act(x·(W ⊙ M) + b), and
 *   for `'gelu'` a second output, the pre-activation z = x·(W ⊙ M) + b, which the gradients need.
 * - `maskedMatMulInputGrad`: inputs `{ dy, weight, mask }` and, unless linear, `{ saved }` (y for
 *   relu, z for gelu); attribute `activation`. Output dx = g·(W ⊙ M)ᵀ with g = dy ⊙ act′, [R, K].
 * - `maskedMatMulWeightGrad`: inputs `{ x, dy, weight, mask }` (+ `saved`); attributes `activation`
 *   and `withScores`. Outputs ∂L/∂W = (xᵀ·g) ⊙ M and, when `withScores`, ∂L/∂S = (xᵀ·g) ⊙ W
 *   (Movement Pruning, Sanh et al. 2020, Eq. 2).
 * - `maskedMatMulBiasGrad`: inputs `{ dy }` (+ `saved`); attribute `activation`. Output Σ_rows g, [N].
 *   The four are reached through `maskedDense`, whose custom gradient calls the three gradient
 *   kernels (no `tf.registerGradient` for them: S is not an input of the forward kernel).
 *
 * @example
 * ```ts
 * if (fusedKernelAvailable(FUSED_KERNELS.gelu)) y = tf.engine().runRegisteredKernel(FUSED_KERNELS.gelu, { x }) as tf.Tensor;
 * ```
 */
export const FUSED_KERNELS = {
  attentionSoftmax: 'FinepruneFusedAttentionSoftmax',
  attentionSoftmaxGrad: 'FinepruneFusedAttentionSoftmaxGrad',
  layerNorm: 'FinepruneFusedLayerNorm',
  layerNormGrad: 'FinepruneFusedLayerNormGrad',
  layerNormParamGrad: 'FinepruneFusedLayerNormParamGrad',
  gelu: 'FinepruneFusedGelu',
  geluGrad: 'FinepruneFusedGeluGrad',
  maskedMatMul: 'FinepruneFusedMaskedMatMul',
  maskedMatMulInputGrad: 'FinepruneFusedMaskedMatMulInputGrad',
  maskedMatMulWeightGrad: 'FinepruneFusedMaskedMatMulWeightGrad',
  maskedMatMulBiasGrad: 'FinepruneFusedMaskedMatMulBiasGrad',
} as const;

/**
 * One of {@link FUSED_KERNELS}' names.
 *
 * @example
 * ```ts
 * const name: FusedKernelName = FUSED_KERNELS.layerNorm;
 * ```
 */
export type FusedKernelName = (typeof FUSED_KERNELS)[keyof typeof FUSED_KERNELS];

/**
 * Whether the active backend has a kernel registered under `name` (a fused kernel of
 * {@link FUSED_KERNELS}, or any other).
 *
 * @param name - the kernel name
 * @returns true when `tf.engine().runKernel(name, …)` would run on the active backend
 *
 * @example
 * ```ts
 * fusedKernelAvailable(FUSED_KERNELS.layerNorm); // true on webgpu once @fineprune/backend-webgpu set it up
 * ```
 */
export function fusedKernelAvailable(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** Runs a fused kernel by name on the active backend (its gradient is registered with it). */
export const runRegisteredKernel = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs) as tf.Tensor;

/** Gradients of the forward kernels, through the gradient kernels (on any backend that has them). */
const gradients: tf.GradConfig[] = [
  {
    kernelName: FUSED_KERNELS.attentionSoftmax,
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [probabilities] = saved as [tf.Tensor];
      const scale = (attrs as { scale: number }).scale;
      const dScores = () =>
        runRegisteredKernel(
          FUSED_KERNELS.attentionSoftmaxGrad,
          { probabilities, dy: dy as tf.Tensor },
          { scale },
        );
      return {
        scores: dScores,
        // The mask is added to every head's and every query's logits: its gradient sums dScores/scale there.
        mask: () => {
          const [batch, , , length] = probabilities.shape as number[];
          const summed = tf.sum(tf.reshape(dScores(), [batch!, -1, length!]), 1);
          return tf.reshape(tf.div(summed, scale), [batch!, 1, 1, length!]);
        },
      };
    },
  },
  {
    kernelName: FUSED_KERNELS.layerNorm,
    inputsToSave: ['x', 'gamma'],
    gradFunc: (dy, saved, attrs) => {
      const [x, gamma] = saved as [tf.Tensor, tf.Tensor];
      const epsilon = (attrs as { epsilon: number }).epsilon;
      const g = dy as tf.Tensor;
      return {
        x: () => runRegisteredKernel(FUSED_KERNELS.layerNormGrad, { dy: g, x, gamma }, { epsilon }),
        gamma: () => runRegisteredKernel(FUSED_KERNELS.layerNormParamGrad, { dy: g, x }, { epsilon }),
        beta: () => tf.sum(g, 0), // dβ = Σ_rows dy
      };
    },
  },
  {
    kernelName: FUSED_KERNELS.gelu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved as [tf.Tensor];
      return { x: () => runRegisteredKernel(FUSED_KERNELS.geluGrad, { x, dy: dy as tf.Tensor }) };
    },
  },
];

/**
 * Registers (once) the gradients of the fused forward kernels, written with the fused gradient kernels
 * of {@link FUSED_KERNELS}: a backend package that registers the forward and gradient kernels calls it
 * so that its kernels train. Idempotent.
 *
 * @example
 * ```ts
 * tf.registerKernel({ kernelName: FUSED_KERNELS.gelu, backendName: 'webgpu', kernelFunc });
 * registerFusedKernelGradients();
 * ```
 */
export function registerFusedKernelGradients(): void {
  for (const gradient of gradients) {
    if (tf.getGradient(gradient.kernelName) === undefined) tf.registerGradient(gradient);
  }
}
