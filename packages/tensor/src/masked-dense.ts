/**
 * A dense layer on a masked weight, x·(W ⊙ M) + b, that holds no copy of W ⊙ M between its forward
 * and backward passes.
 */

import * as tf from '@tensorflow/tfjs-core';
import { checkShapes, inputAndKernelGradients } from './dense';
import { check } from './errors';
import { columnSums } from './fused-column-sum';
import { gelu, geluGradient } from './fused-gelu';
import { FUSED_KERNELS, fusedKernelAvailable, runRegisteredKernel } from './fused-kernels';
import { checkSameShape } from './masked-weight';
// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';

/** What `maskedDense` applies after x·(W ⊙ M) + b. */
export type MaskedDenseActivation = 'linear' | 'relu' | 'gelu';

/**
 * Options of {@link maskedDense}.
 *
 * @example
 * ```ts
 * const options: MaskedDenseOptions = { activation: 'gelu' };
 * ```
 */
export interface MaskedDenseOptions {
  /** `'linear'` (default), `'relu'` or exact `'gelu'` (x·Φ(x), Hendrycks & Gimpel 2016, Eq. 1). */
  activation?: MaskedDenseActivation;
}

const ACTIVATIONS: readonly MaskedDenseActivation[] = ['linear', 'relu', 'gelu'];

/** One masked dense forward pass: its value and what its backward pass needs beyond x, W and M. */
interface Forward {
  value: tf.Tensor2D;
  /** y for relu, the pre-activation z for gelu; absent when linear. */
  saved?: tf.Tensor2D;
}

/** g = dy ⊙ act′: through the saved output y for relu (1{y > 0}), the saved z for gelu. */
function activationGradient(dy: tf.Tensor2D, activation: MaskedDenseActivation, saved?: tf.Tensor2D) {
  if (activation === 'relu') return tf.mul(dy, tf.step(saved!)) as tf.Tensor2D;
  if (activation === 'gelu') return geluGradient(saved!, dy);
  return dy;
}

/** The op chain's forward pass (any backend): W ⊙ M, then one matMul with bias and relu fused. */
function chainForward(
  x: tf.Tensor2D,
  masked: tf.Tensor2D,
  bias: tf.Tensor1D | undefined,
  activation: MaskedDenseActivation,
): Forward {
  const fusedActivation = activation === 'relu' ? 'relu' : 'linear';
  const product = (
    bias === undefined && fusedActivation === 'linear'
      ? tf.matMul(x, masked)
      : tf.fused.matMul({ a: x, b: masked, ...(bias ? { bias } : {}), activation: fusedActivation })
  ) as tf.Tensor2D;
  if (activation === 'gelu') return { value: gelu(product), saved: product };
  return activation === 'relu' ? { value: product, saved: product } : { value: product };
}

/** The registered fused kernel's forward pass (one dispatch on WebGPU): y, and z for gelu. */
function fusedForward(inputs: tf.NamedTensorMap, activation: MaskedDenseActivation): Forward {
  const outputs = tf.engine().runKernel(FUSED_KERNELS.maskedMatMul, inputs, { activation });
  const [value, preActivation] = (Array.isArray(outputs) ? outputs : [outputs]) as tf.Tensor2D[];
  if (activation === 'gelu') return { value: value!, saved: preActivation! };
  return activation === 'relu' ? { value: value!, saved: value! } : { value: value! };
}

interface GradientPlan {
  withBias: boolean;
  withScores: boolean;
  activation: MaskedDenseActivation;
}

/** The gradients of one masked dense op by the op chain, in the order of its inputs (x, W, b?, S?). */
function chainGradients(dy: tf.Tensor2D, saved: tf.Tensor[], plan: GradientPlan): tf.Tensor[] {
  const [x, weight, mask, activationSaved] = saved as tf.Tensor2D[];
  const g = activationGradient(dy, plan.activation, activationSaved);
  // W ⊙ M again, only for as long as this layer's gradient takes.
  const masked = tf.mul(weight!, mask!) as tf.Tensor2D;
  const [inputGradient, maskedGradient] = inputAndKernelGradients(g, x!, masked);
  const dMasked = maskedGradient(); // dW′ = xᵀ·g, the gradient in W ⊙ M; freed with this tidy
  const gradients = [inputGradient(), tf.mul(dMasked, mask!)]; // ∂L/∂W = dW′ ⊙ M
  if (plan.withBias) gradients.push(columnSums(g)); // ∂L/∂b = Σ_rows g
  // ∂L/∂S = dW′ ⊙ W: straight through the mask (Movement Pruning, Sanh et al. 2020, Eq. 2)
  if (plan.withScores) gradients.push(tf.mul(dMasked, weight!));
  return gradients;
}

/** The same gradients by the registered fused kernels: dx, then ∂L/∂W with ∂L/∂S, then ∂L/∂b. */
function fusedGradients(dy: tf.Tensor2D, saved: tf.Tensor[], plan: GradientPlan): tf.Tensor[] {
  const [x, weight, mask, activationSaved] = saved as tf.Tensor2D[];
  const extra: tf.NamedTensorMap = activationSaved ? { saved: activationSaved } : {};
  const attrs = { activation: plan.activation };
  const inputGradient = runRegisteredKernel(
    FUSED_KERNELS.maskedMatMulInputGrad,
    { dy, weight: weight!, mask: mask!, ...extra },
    attrs,
  );
  const weightOutputs = tf
    .engine()
    .runKernel(
      FUSED_KERNELS.maskedMatMulWeightGrad,
      { x: x!, dy, weight: weight!, mask: mask!, ...extra },
      { ...attrs, withScores: plan.withScores },
    );
  const [weightGradient, scoreGradient] = (
    Array.isArray(weightOutputs) ? weightOutputs : [weightOutputs]
  ) as tf.Tensor[];
  const gradients = [inputGradient, weightGradient!];
  if (plan.withBias)
    gradients.push(runRegisteredKernel(FUSED_KERNELS.maskedMatMulBiasGrad, { dy, ...extra }, attrs));
  if (plan.withScores) gradients.push(scoreGradient!);
  return gradients;
}

function checkActivation(activation: unknown): asserts activation is MaskedDenseActivation {
  check(
    ACTIVATIONS.includes(activation as MaskedDenseActivation),
    `maskedDense() activation must be 'linear', 'relu' or 'gelu', got ${JSON.stringify(activation)}.`,
    "Pass { activation: 'linear' | 'relu' | 'gelu' } or leave it out (linear).",
  );
}

/**
 * `dense(x, maskedWeight(W, M, S), b)` as one op: y = x·(W ⊙ M) + b, with the same gradients —
 * dx = dy·(W ⊙ M)ᵀ, ∂L/∂W = (xᵀ·dy) ⊙ M, ∂L/∂b = Σ_rows dy and, when the scores S behind the mask
 * are given, ∂L/∂S = (xᵀ·dy) ⊙ W (straight-through, Movement Pruning Eq. 2). What it saves for the
 * backward pass is x, W and M themselves: W ⊙ M is a temporary of the forward pass and is made again
 * in the backward pass, and the gradient in W ⊙ M is turned into those of W and S at once and freed.
 * The composition instead keeps W ⊙ M (and, on wasm, XNNPACK's packed copy of it) and the gradient
 * in W ⊙ M until the whole backward pass ends: three copies of every masked weight in a training
 * step (at BERT-base scale, about 1 GB).
 *
 * With `activation`, y = act(x·(W ⊙ M) + b) and g = dy ⊙ act′ takes dy's place in every gradient. Where
 * a backend package registered the fused kernels of `FUSED_KERNELS.maskedMatMul…` (WebGPU), the
 * forward pass is one kernel that reads W ⊙ M in its tile loads and adds b and the activation at the
 * end, and the backward pass is three (dx; ∂L/∂W with ∂L/∂S; ∂L/∂b); elsewhere it is the op chain
 * (W ⊙ M, then `tf.fused.matMul` with the bias and relu, then GELU).
 *
 * @param x - input, [batch, inputs]
 * @param weight - W, [inputs, units], float32
 * @param mask - M, same shape as W (0/1 or soft values; cast to float32); a constant of the op
 * @param bias - optional b, [units]
 * @param scores - optional S, same shape as W; pass it to get ∂L/∂S from `tf.variableGrads`
 * @param options - `activation`: y = act(x·(W ⊙ M) + b) with act `'linear'` (default), `'relu'` (its
 *   gradient dy ⊙ 1{y > 0}) or exact `'gelu'` (the pre-activation is kept for the gradient)
 * @returns [batch, units]
 * @throws FinepruneError `SHAPE_MISMATCH` when the input, weight, bias, mask or scores do not fit together;
 *   `INVALID_ARGUMENT` for an unknown activation
 *
 * @example
 * ```ts
 * const { grads } = tf.variableGrads(() => tf.sum(maskedDense(x, kernel, mask, bias, scores)));
 * const hidden = maskedDense(x, kernel, mask, bias, scores, { activation: 'gelu' });
 * ```
 */
export function maskedDense(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  mask: tf.Tensor,
  bias?: tf.Tensor1D,
  scores?: tf.Tensor,
  options: MaskedDenseOptions = {},
): tf.Tensor2D {
  checkShapes(x, weight, bias);
  checkSameShape('mask', mask, weight);
  if (scores !== undefined) checkSameShape('scores', scores, weight);
  const activation = options.activation ?? 'linear';
  checkActivation(activation);
  const inputs: tf.Tensor[] = [x, weight];
  if (bias !== undefined) inputs.push(bias);
  if (scores !== undefined) inputs.push(scores);
  const plan: GradientPlan = { withBias: bias !== undefined, withScores: scores !== undefined, activation };
  // One dispatch each way where a backend package registered the fused kernels (WebGPU).
  const fused = fusedKernelAvailable(FUSED_KERNELS.maskedMatMul) && x.size > 0 && weight.size > 0;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const floatMask = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
    // y = act(x·(W ⊙ M) + b); the forward runs in a tidy of the engine, which frees W ⊙ M on return
    const forward = fused
      ? fusedForward({ x, weight, mask: floatMask, ...(bias ? { bias } : {}) }, activation)
      : chainForward(x, tf.mul(weight, floatMask) as tf.Tensor2D, bias, activation);
    save(forward.saved ? [x, weight, floatMask, forward.saved] : [x, weight, floatMask]);
    const gradients = fused ? fusedGradients : chainGradients;
    return {
      value: forward.value,
      gradFunc: (dy, saved) => tf.tidy(() => gradients(dy as tf.Tensor2D, saved, plan)),
    };
  });
  return op(...inputs) as tf.Tensor2D;
}
