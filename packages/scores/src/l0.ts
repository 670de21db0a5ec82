import type { ScoreStrategy } from '@fineprune/core';
import { checkScoreInit, createScoreVariable, type ScoreInit } from './init';

/**
 * log(0.95 / 0.05) ≈ 2.944: the default initial log α. Every hard-concrete gate then starts open at
 * test time (M̂ = min(1, ReLU(1.2·σ(2.944) − 0.1)) = 1, with the default l = −0.1, r = 1.1), so
 * fine-pruning starts from the dense pretrained model, and a training gate is fully open with
 * probability σ(2.944 − b·log 11) ≈ 0.79 (drop-rate initialisation 0.05 of Louizos et al., 2017).
 *
 * @example
 * ```ts
 * l0({ init: { type: 'constant', value: L0_DEFAULT_INIT } });
 * ```
 */
export const L0_DEFAULT_INIT = Math.log(0.95 / 0.05);

/**
 * Options of {@link l0}.
 *
 * @example
 * ```ts
 * const options: L0Options = { init: { type: 'constant', value: L0_DEFAULT_INIT } };
 * ```
 */
export interface L0Options {
  /** Initial log α; default constant {@link L0_DEFAULT_INIT}. */
  init?: ScoreInit;
}

/**
 * L0-regularisation scores (Louizos et al., 2017; Sec. 4 of Movement Pruning): a learned log α per
 * weight, the location of its hard-concrete gate. Use it with the `hardConcrete` mask and the
 * `l0Penalty` loss term of `@fineprune/masks`; the gradient reaching S is Eq. (3),
 * ∂L/∂S = ∂L/∂a · W · x · f(S̄) with f(S̄) = (r − l)/b · S̄(1 − S̄)·1{0 ≤ Z ≤ 1}.
 *
 * @example
 * ```ts
 * const pruner = new Pruner({
 *   model,
 *   scores: l0(),
 *   mask: hardConcrete(),
 *   schedule: noTarget(),
 *   lossTerms: [l0Penalty({ lambda: 1e-5 })],
 *   optimizers: { weights: adam({ learningRate: 1e-3 }), scores: adam({ learningRate: 1e-2 }) },
 * });
 * ```
 */
export function l0(options: L0Options = {}): ScoreStrategy {
  const init = checkScoreInit(options.init ?? { type: 'constant', value: L0_DEFAULT_INIT }, 'l0');
  return {
    id: 'l0',
    learnable: true,
    createScores: (parameter, context) => createScoreVariable(parameter, init, context),
    compute: ({ scores }) => scores!.clone(),
    toConfig: () => ({ type: 'l0', init }),
  };
}
