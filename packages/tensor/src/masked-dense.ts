/**
 * A dense layer on a masked weight, x·(W ⊙ M) + b, that holds no copy of W ⊙ M between its forward
 * and backward passes.
 */

import * as tf from '@tensorflow/tfjs-core';
import { checkShapes, inputAndKernelGradients, type LazyGradient, opWithLazyGradients } from './dense';
import { check } from './errors';
import { columnSums } from './fused-column-sum';
import { gelu, geluGradient } from './fused-gelu';
import { FUSED_KERNELS, fusedKernelAvailable, runRegisteredKernel } from './fused-kernels';
import {
  sparseMaskedInputGradient,
  sparseMaskedProduct,
  sparseMaskedWeight,
  straightThroughGradients,
  transposedPadded,
} from './masked-sparse';
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

/**
 * How the backward pass gets each of the op's gradients; `weightAndScores` makes ∂L/∂W and, when the
 * op has scores, ∂L/∂S from one dW′, and `scores` makes ∂L/∂S alone (W not differentiated).
 */
interface GradientParts {
  input: LazyGradient;
  weightAndScores: () => tf.Tensor[];
  scores: LazyGradient;
  bias: LazyGradient;
}

/** The parts from the registered fused kernels (WebGPU): dx; ∂L/∂W with ∂L/∂S; ∂L/∂b. act′ is folded in. */
function fusedParts(dy: tf.Tensor2D, saved: tf.Tensor[], plan: GradientPlan): GradientParts {
  const [x, weight, mask, activationSaved] = saved as tf.Tensor2D[];
  const extra: tf.NamedTensorMap = activationSaved ? { saved: activationSaved } : {};
  const attrs = { activation: plan.activation };
  const weightGradients = (withScores: boolean) => {
    const outputs = tf
      .engine()
      .runKernel(
        FUSED_KERNELS.maskedMatMulWeightGrad,
        { x: x!, dy, weight: weight!, mask: mask!, ...extra },
        { ...attrs, withScores },
      );
    return (Array.isArray(outputs) ? outputs : [outputs]) as tf.Tensor[];
  };
  return {
    input: () =>
      runRegisteredKernel(
        FUSED_KERNELS.maskedMatMulInputGrad,
        { dy, weight: weight!, mask: mask!, ...extra },
        attrs,
      ),
    weightAndScores: () => weightGradients(plan.withScores),
    scores: () => tf.tidy(() => weightGradients(true)[1]!),
    bias: () => runRegisteredKernel(FUSED_KERNELS.maskedMatMulBiasGrad, { dy, ...extra }, attrs),
  };
}

function checkActivation(activation: unknown): asserts activation is MaskedDenseActivation {
  check(
    ACTIVATIONS.includes(activation as MaskedDenseActivation),
    `maskedDense() activation must be 'linear', 'relu' or 'gelu', got ${JSON.stringify(activation)}.`,
    "Pass { activation: 'linear' | 'relu' | 'gelu' } or leave it out (linear).",
  );
}

/**
 * The sparse route's forward pass (wasm, few weights kept; masked-sparse.ts): y from the kept
 * entries of W ⊙ M, listed now, with bias and ReLU in the product's last pass; `undefined` where the
 * route does not apply. `transposed` is xᵀ, kept for the weight gradient when the batch needed no
 * padding.
 */
function sparseForward(
  x: tf.Tensor2D,
  weight: tf.Tensor2D,
  mask: tf.Tensor,
  bias: tf.Tensor1D | undefined,
  activation: MaskedDenseActivation,
): (Forward & { transposed?: tf.Tensor2D }) | undefined {
  const sparse = sparseMaskedWeight(weight, mask, x.shape[0]);
  if (sparse === undefined) return undefined;
  const transposedInput = transposedPadded(x, sparse.paddedBatch);
  const product = sparseMaskedProduct(transposedInput, x.shape[0], sparse, bias, activation === 'relu');
  const transposed = sparse.paddedBatch === x.shape[0] ? transposedInput : undefined;
  if (activation === 'gelu') return { value: gelu(product), saved: product, transposed };
  return activation === 'relu'
    ? { value: product, saved: product, transposed }
    : { value: product, transposed };
}

/** What the lazy backward pass needs to know of its forward pass. */
interface LazyPlan extends GradientPlan {
  /** The forward pass took the sparse route. */
  sparse: boolean;
  /** Which of the saved tensors after x, W and M are there. */
  activationSaved: boolean;
  transposedSaved: boolean;
}

/**
 * The parts off the fused kernels: g = dy ⊙ act′ is made once, here, for all of them; dx over the
 * kept entries where the forward pass took the sparse route.
 */
function chainParts(dy: tf.Tensor2D, saved: tf.Tensor[], plan: LazyPlan): GradientParts {
  const [x, weight, mask] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const activationSaved = plan.activationSaved ? (saved[3] as tf.Tensor2D) : undefined;
  const transposedInput = plan.transposedSaved
    ? (saved[plan.activationSaved ? 4 : 3] as tf.Tensor2D)
    : undefined;
  const g = activationGradient(dy, plan.activation, activationSaved);
  // dx = g·(W ⊙ M)ᵀ, W ⊙ M made again only for as long as this takes
  const denseInputGradient = () =>
    tf.tidy(() => inputAndKernelGradients(g, x, tf.mul(weight, mask) as tf.Tensor2D)[0]());
  // the same over the kept entries, listed again (nothing of the list is held between the passes)
  const sparseInputGradient = () =>
    tf.tidy(() => {
      const sparse = sparseMaskedWeight(weight, mask, x.shape[0]);
      if (sparse === undefined) return denseInputGradient();
      const dx = sparseMaskedInputGradient(g, sparse);
      tf.dispose([sparse.structure, sparse.values]);
      return dx;
    });
  // dW′ = xᵀ·g, the gradient in W ⊙ M, from the forward pass's xᵀ where the sparse route made one
  const kernelGradient = transposedInput
    ? () => tf.matMul(transposedInput, g)
    : inputAndKernelGradients(g, x, weight)[1]; // this thunk reads only x and g
  return {
    input: plan.sparse ? sparseInputGradient : denseInputGradient,
    weightAndScores: () => {
      const dMasked = kernelGradient();
      // ∂L/∂W = dW′ ⊙ M, and ∂L/∂S = dW′ ⊙ W (Movement Pruning Eq. 2) in the same pass
      return plan.withScores ? straightThroughGradients(dMasked, weight, mask) : [tf.mul(dMasked, mask)];
    },
    scores: () => tf.tidy(() => tf.mul(kernelGradient(), weight)),
    bias: () => columnSums(g), // ∂L/∂b = Σ_rows g
  };
}

/**
 * The op's gradients as thunks, each computed only when the backward pass asks for it, in the order
 * of its inputs (x, W, then b and S if given): a network's first layer never computes dx.
 */
function lazyGradients(parts: GradientParts, plan: GradientPlan): LazyGradient[] {
  // ∂L/∂S of the ∂L/∂W thunk, which makes both from one dW′; the ∂L/∂S thunk takes it
  let pendingScores: tf.Tensor | undefined;
  const gradients: LazyGradient[] = [
    parts.input,
    () =>
      tf.tidy(() => {
        const [dWeight, dScores] = parts.weightAndScores();
        if (dScores !== undefined) {
          pendingScores = tf.keep(dScores);
          // Freed here if the backward pass does not ask for ∂L/∂S (scores not differentiated).
          queueMicrotask(() => {
            pendingScores?.dispose();
            pendingScores = undefined;
          });
        }
        return dWeight!;
      }),
  ];
  if (plan.withBias) gradients.push(parts.bias);
  if (plan.withScores) {
    // ∂L/∂S = dW′ ⊙ W: straight through the mask (Movement Pruning, Sanh et al. 2020, Eq. 2)
    gradients.push(() => {
      const ready = pendingScores;
      pendingScores = undefined;
      if (ready === undefined) return parts.scores();
      const gradient = tf.clone(ready);
      ready.dispose();
      return gradient;
    });
  }
  return gradients;
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
 * (W ⊙ M, then `tf.fused.matMul` with the bias and relu, then GELU). On wasm, when at most
 * `SPARSE_ROUTE_MAX_DENSITY` (30%) of W is kept, the forward product and dx run over the kept
 * entries only (masked-sparse.ts); ∂L/∂W and ∂L/∂S still come from the dense dW′. Off the fused
 * kernels each gradient is computed only when the backward pass asks for it (a network's first
 * layer never computes dx).
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
  // One dispatch forward and three backward where a backend package registered the fused kernels
  // (WebGPU); else the sparse route (wasm, few weights kept) or the op chain.
  const fused = fusedKernelAvailable(FUSED_KERNELS.maskedMatMul) && x.size > 0 && weight.size > 0;
  const lazy: LazyPlan = { ...plan, sparse: false, activationSaved: false, transposedSaved: false };
  return opWithLazyGradients(
    inputs,
    (save) =>
      tf.tidy(() => {
        const floatMask = mask.dtype === 'float32' ? mask : tf.cast(mask, 'float32');
        // W ⊙ M, where made, is a temporary of this tidy
        const sparse = fused ? undefined : sparseForward(x, weight, floatMask, bias, activation);
        const forward = fused
          ? fusedForward({ x, weight, mask: floatMask, ...(bias ? { bias } : {}) }, activation)
          : (sparse ?? chainForward(x, tf.mul(weight, floatMask) as tf.Tensor2D, bias, activation));
        lazy.sparse = sparse !== undefined;
        lazy.activationSaved = forward.saved !== undefined;
        lazy.transposedSaved = sparse?.transposed !== undefined;
        save([
          x,
          weight,
          floatMask,
          ...(forward.saved ? [forward.saved] : []),
          ...(sparse?.transposed ? [sparse.transposed] : []),
        ]);
        return forward.value;
      }),
    (dy, saved) =>
      lazyGradients(
        fused ? fusedParts(dy as tf.Tensor2D, saved, plan) : chainParts(dy as tf.Tensor2D, saved, lazy),
        plan,
      ),
  ) as tf.Tensor2D;
}
