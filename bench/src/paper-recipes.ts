/**
 * The pruning methods of *Movement Pruning* (Sanh et al. 2020) as Pruner recipes, shared by the
 * reproductions (movement-fashion.ts on the MLP, encoder-transfer.ts on the encoder):
 *
 * - dense: fine-tuning only (a magnitude Top-v at sparsity 0 that never re-selects);
 * - MaP: magnitude scores, Top-v on the cubic schedule (Eq. 5), masks every 10 steps;
 * - MvP: movement scores (Eq. 2, learned with their own optimizer), Top-v on the cubic schedule,
 *   masks re-selected every step;
 * - SMvP: movement scores, M = (σ(S) > τ) with τ 0 → 0.1 on the cubic schedule, as the reference
 *   implementation's `ThresholdBinarizer` (the scores start at 0, σ(0) = 0.5 > τ = 0, so the warm-up
 *   keeps every weight), and λ Σ σ(S) ramped by τ/τ_f (Sec. 4), a floor of 0.5% kept per matrix;
 * - L0: log α scores, hard-concrete gates (b = 2/3, l = −0.1, r = 1.1) and λ E[L0] (Eq. 3).
 */
import type { Optimizer, PrunerOptions } from '@fineprune/core';
import { hardConcrete, l0Penalty, sigmoidPenalty, threshold, topV } from '@fineprune/masks';
import { constant, cubic, cubicThreshold, noTarget } from '@fineprune/schedulers';
import { l0, magnitude, movement } from '@fineprune/scores';

export type PaperMethod = 'dense' | 'MaP' | 'MvP' | 'SMvP' | 'L0';

export interface PaperRecipeOptions {
  method: PaperMethod;
  /** Target share of remaining weights (MaP, MvP); ignored by the others. */
  remaining: number;
  totalSteps: number;
  warmupSteps: number;
  cooldownSteps: number;
  /** Top-v selection for MaP and MvP; default local. */
  scope?: 'local' | 'global';
  /** λ of SMvP's Σ σ(S) or of L0's E[L0] (required for those two). */
  lambda?: number;
  /** The weights' optimizer. */
  weights: Optimizer;
  /** The scores' optimizer; disposed here when the method learns no scores. */
  scores: Optimizer;
}

/** The recipe (all Pruner options but the model) of one method. */
export function paperRecipe(options: PaperRecipeOptions): Omit<PrunerOptions, 'model'> {
  const { method, totalSteps, warmupSteps, cooldownSteps, weights, scores, scope = 'local' } = options;
  const needsLambda = () => {
    if (options.lambda === undefined) throw new Error(`${method} needs a λ`);
    return options.lambda;
  };
  if (method === 'dense' || method === 'MaP') scores.dispose();
  switch (method) {
    case 'dense':
      return {
        scores: magnitude(),
        mask: topV(),
        schedule: constant({ sparsity: 0, updateInterval: totalSteps }),
        optimizers: { weights },
      };
    case 'MaP':
    case 'MvP':
      return {
        scores: method === 'MaP' ? magnitude() : movement(),
        mask: topV({ scope }),
        schedule: cubic({
          finalSparsity: 1 - options.remaining,
          totalSteps,
          warmupSteps,
          cooldownSteps,
          interval: 10,
        }),
        ...(method === 'MvP'
          ? { maskUpdateInterval: 1, optimizers: { weights, scores } }
          : { optimizers: { weights } }),
      };
    case 'SMvP': {
      // τ bounds σ(S), not S: with M = (S > τ) and τ = 0, scores that start at 0 keep nothing.
      const finalThreshold = 0.1;
      return {
        scores: movement(),
        mask: threshold({ on: 'sigmoid', minKeptFraction: 0.005 }),
        schedule: cubicThreshold({
          initialThreshold: 0,
          finalThreshold,
          totalSteps,
          warmupSteps,
          cooldownSteps,
          on: 'sigmoid',
        }),
        lossTerms: [sigmoidPenalty({ lambda: needsLambda(), rampWithThreshold: { finalThreshold } })],
        optimizers: { weights, scores },
      };
    }
    case 'L0':
      return {
        scores: l0(),
        mask: hardConcrete(),
        schedule: noTarget(),
        lossTerms: [l0Penalty({ lambda: needsLambda() })],
        optimizers: { weights, scores },
      };
  }
}
