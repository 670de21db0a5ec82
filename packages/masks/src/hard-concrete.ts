import * as tf from '@tensorflow/tfjs-core';
import {
  fusedHardConcreteTestMasks,
  hardConcreteGateTensor,
  hardConcreteMaskedWeightTensor,
  hardConcreteTestMaskTensor,
  hardConcreteTestMaskTensors,
  sigmoidSumTensor,
  uniformNoiseTensor,
} from '@fineprune/tensor';
import { type LossTerm, type MaskFunction, matchesSelector, type ParameterSelector } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { emptyMaskError } from './empty-mask';
import { checkPenalty, type PenaltyReduction, reducePenalty } from './threshold';

/**
 * The parameters of the hard-concrete distribution (Louizos et al., 2017).
 *
 * @example
 * ```ts
 * const options: HardConcreteOptions = { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 };
 * ```
 */
export interface HardConcreteOptions {
  /** b > 0, the temperature; default 2/3. */
  beta?: number;
  /** l < 0, the left end of the stretched interval; default −0.1. */
  limitLeft?: number;
  /** r > 1, the right end of the stretched interval; default 1.1. */
  limitRight?: number;
}

/**
 * {@link HardConcreteOptions} with every default filled in.
 *
 * @example
 * ```ts
 * const parameters: HardConcreteParameters = checkHardConcrete();
 * ```
 */
export type HardConcreteParameters = Required<HardConcreteOptions>;

/**
 * Checks the hard-concrete parameters (b > 0, l < 0, 1 < r) and fills in the defaults b = 2/3,
 * l = −0.1, r = 1.1.
 *
 * @throws FinepruneError `INVALID_ARGUMENT` naming the parameter, the rule and the fix
 *
 * @example
 * ```ts
 * checkHardConcrete({ beta: 0.5 }); // { beta: 0.5, limitLeft: -0.1, limitRight: 1.1 }
 * ```
 */
export function checkHardConcrete(
  options: HardConcreteOptions = {},
  owner = 'hardConcrete',
): HardConcreteParameters {
  const beta = options.beta ?? 2 / 3;
  const limitLeft = options.limitLeft ?? -0.1;
  const limitRight = options.limitRight ?? 1.1;
  const fail = (message: string, fix: string): never => {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${owner}: ${message}`,
      fix,
      details: { beta, limitLeft, limitRight },
    });
  };
  if (!(beta > 0 && Number.isFinite(beta)))
    fail(
      `the temperature beta (b) must be a finite number > 0, got ${beta}.`,
      'Use b = 2/3, the value of Louizos et al. and Movement Pruning.',
    );
  if (!(limitLeft < 0 && Number.isFinite(limitLeft)))
    fail(
      `limitLeft (l) must be a finite number < 0, got ${limitLeft}; the stretched interval (l, r) must contain [0, 1] so that gates can be exactly 0.`,
      'Use l = −0.1.',
    );
  if (!(limitRight > 1 && Number.isFinite(limitRight)))
    fail(
      `limitRight (r) must be a finite number > 1, got ${limitRight}; the stretched interval (l, r) must contain [0, 1] so that gates can be exactly 1.`,
      'Use r = 1.1.',
    );
  return { beta, limitLeft, limitRight };
}

/**
 * The stochastic hard-concrete gate for given uniform noise u (Sec. 4 of Movement Pruning):
 * S̄ = σ((log u − log(1 − u) + S)/b), Z = (r − l)S̄ + l, M = min(1, ReLU(Z)). Differentiable in S;
 * its gradient is the f(S̄) = (r − l)/b · S̄(1 − S̄)·1{0 ≤ Z ≤ 1} of Eq. (3). On `wasm` it runs as one
 * fused SIMD pass (`fusedHardConcreteGate` of @fineprune/tensor, within 1e-6 of the op chain).
 *
 * @example
 * ```ts
 * const gate = hardConcreteGate(scores, tf.randomUniform(scores.shape), checkHardConcrete());
 * ```
 */
export function hardConcreteGate(
  scores: tf.Tensor,
  u: tf.Tensor,
  parameters: HardConcreteParameters,
): tf.Tensor {
  // S̄ = σ((log u − log(1 − u) + S)/b), Z = (r − l)S̄ + l, M = min(1, ReLU(Z))
  return hardConcreteGateTensor(scores, u, parameters);
}

/**
 * The deterministic test-time gate M̂ = min(1, ReLU((r − l)σ(S) + l)) (Sec. 4). Entries at 0 are
 * pruned; the others are in (0, 1] and scale their weight.
 *
 * @example
 * ```ts
 * const mask = hardConcreteTestMask(scores, checkHardConcrete());
 * ```
 */
export function hardConcreteTestMask(scores: tf.Tensor, parameters: HardConcreteParameters): tf.Tensor {
  // M̂ = min(1, ReLU((r − l)σ(S) + l))
  return hardConcreteTestMaskTensor(scores, parameters);
}

/**
 * The closed-form expected L0 norm of hard-concrete gates with log α = S:
 * E[L0] = Σ σ(S − b·log(−l/r)) (Sec. 4; the probability that each gate is non-zero).
 *
 * @example
 * ```ts
 * const expected = expectedL0(scores, checkHardConcrete()); // a scalar
 * ```
 */
export function expectedL0(scores: tf.Tensor, parameters: HardConcreteParameters): tf.Scalar {
  const { beta, limitLeft, limitRight } = parameters;
  // E[L0] = Σ σ(S − b log(−l/r)), one fused pass on wasm
  return sigmoidSumTensor(scores, beta * Math.log(-limitLeft / limitRight));
}

/** u is drawn from [ε, 1 − ε] so that log u and log(1 − u) stay finite (Louizos et al. clamp the same way). */
const NOISE_EPSILON = 1e-6;

/**
 * Uniform noise u ~ U(ε, 1 − ε) of a given shape, drawn from a seeded random source (the run's
 * `context.random`, saved in checkpoints), so a resumed run draws the same gates. On `wasm` the
 * draws run in WebAssembly from the generator's state (`fusedUniformNoise`): the same values, bit
 * for bit, and the same state afterwards.
 *
 * @example
 * ```ts
 * const u = uniformNoise([784, 300], context.random);
 * ```
 */
export function uniformNoise(shape: readonly number[], random: { next(): number }): tf.Tensor {
  return uniformNoiseTensor(shape, random, NOISE_EPSILON, 1 - 2 * NOISE_EPSILON);
}

/**
 * The hard-concrete mask of L0 regularisation (Louizos et al., 2017; Sec. 4 of Movement Pruning),
 * for learned log α scores (`l0()` of `@fineprune/scores`). In training, each forward pass samples
 * u ~ U(0, 1) from the run's seeded random source and uses W ⊙ M with the stochastic gate of
 * {@link hardConcreteGate}; the gradient reaching S is Eq. (3). Outside training it uses the
 * deterministic M̂ of {@link hardConcreteTestMask}, which is also what `compute` writes into each
 * parameter's mask (soft values in [0, 1], zeros pruned) for reports and export; a group whose
 * gates are all closed is an `EMPTY_MASK` error. Training never reads that mask, so the Pruner
 * writes M̂ on demand (`masksOnDemand`: checkpoints, `pruned()`, evaluations, the end of `run()`)
 * and runs the check every `maskUpdateInterval` steps (default 50). The sparsity follows from λ_l0 of
 * {@link l0Penalty}; the schedule is `noTarget()` (kind `none`).
 *
 * @example
 * ```ts
 * const pruner = new Pruner({
 *   model, scores: l0(), mask: hardConcrete(), schedule: noTarget(),
 *   lossTerms: [l0Penalty({ lambda: 1e-5 })],
 *   optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) },
 * });
 * ```
 */
export function hardConcrete(options: HardConcreteOptions = {}): MaskFunction {
  const parameters = checkHardConcrete(options);
  return {
    id: 'hardConcrete',
    targetKind: 'none',
    requiresLearnableScores: true,
    async compute(inputs) {
      const { masks, counts } = await hardConcreteTestMaskTensors(
        inputs.map((input) => input.scores),
        parameters,
      );
      const kept = counts.reduce((sum, count) => sum + count, 0);
      const total = inputs.reduce((sum, input) => sum + input.scores.size, 0);
      if (total > 0 && kept === 0) {
        tf.dispose(masks);
        throw emptyMaskError(
          'hardConcrete',
          `the group of ${inputs.length} parameters`,
          total,
          'every gate is closed:',
          'Lower λ of l0Penalty (or start log α higher) so that some gates stay open.',
        );
      }
      return masks;
    },
    masksOnDemand(inputs) {
      const scores = inputs.map((input) => input.scores);
      // the same M̂ = min(1, ReLU((r − l)σ(S) + l)) as compute: one fused pass on wasm, the op chain elsewhere
      return (
        fusedHardConcreteTestMasks(scores, parameters)?.masks ??
        scores.map((tensor) => hardConcreteTestMask(tensor, parameters))
      );
    },
    transform({ parameter, scores, training }, context) {
      if (!scores)
        throw new FinepruneError({
          code: ErrorCodes.INCOMPATIBLE_PLUGINS,
          message: `hardConcrete needs learned scores for "${parameter.name}".`,
          fix: 'Use l0() scores with the hardConcrete mask.',
        });
      // a = (W ⊙ M)x; in training one fused pass on wasm gives W ⊙ M and what Eq. (3) needs
      return tf.tidy(() =>
        training
          ? hardConcreteMaskedWeightTensor(
              parameter.weight,
              scores,
              uniformNoise(parameter.shape, context.random),
              parameters,
            )
          : tf.mul(parameter.weight, hardConcreteTestMask(scores, parameters)),
      );
    },
    toConfig: () => ({ type: 'hardConcrete', ...parameters }),
  };
}

/**
 * Options of {@link l0Penalty}.
 *
 * @example
 * ```ts
 * const options: L0PenaltyOptions = { lambda: 1e-4, reduction: 'sum' };
 * ```
 */
export interface L0PenaltyOptions extends HardConcreteOptions {
  /** λ_l0 ≥ 0. */
  lambda: number;
  /** `sum` (default, as written), `mean` over every gate, or `meanPerParameter`. */
  reduction?: PenaltyReduction;
  /** Only the scores of these parameters; default every pruned parameter with learned scores. */
  parameters?: ParameterSelector;
}

/**
 * The expected-L0 penalty λ_l0 E[L0] = λ_l0 Σ σ(S − b·log(−l/r)) (Sec. 4), in closed form. Give it the
 * same b, l, r as the `hardConcrete` mask (the defaults agree).
 *
 * @example
 * ```ts
 * const penalty = l0Penalty({ lambda: 1e-5, reduction: 'sum' });
 * ```
 */
export function l0Penalty(options: L0PenaltyOptions): LossTerm {
  const parameters = checkHardConcrete(options, 'l0Penalty');
  const lambda = options.lambda;
  const reduction = options.reduction ?? 'sum';
  checkPenalty('l0Penalty', lambda, reduction);
  return {
    id: 'l0Penalty',
    compute: ({ pruned }) =>
      tf.tidy(() => {
        const terms = pruned
          .filter(
            ({ parameter, scores }) =>
              scores && (options.parameters === undefined || matchesSelector(parameter, options.parameters)),
          )
          .map(({ scores }) => ({ sum: expectedL0(scores!, parameters), size: scores!.size }));
        return tf.mul(reducePenalty(terms, reduction), lambda) as tf.Scalar;
      }),
    toConfig: () => ({ type: 'l0Penalty', lambda, reduction, ...parameters }),
  };
}
