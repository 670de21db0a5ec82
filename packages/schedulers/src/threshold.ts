import type { SparsitySchedule } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { checkStep, checkSteps } from './validate';

/**
 * Options of {@link cubicThreshold}.
 *
 * @example
 * ```ts
 * const options: CubicThresholdOptions = { initialThreshold: 0, finalThreshold: 0.1, totalSteps: 1000, warmupSteps: 100 };
 * ```
 */
export interface CubicThresholdOptions {
  /** τ_i, the threshold during warm-up. */
  initialThreshold: number;
  /** τ_f, the threshold reached at the end of the pruning phase and held through the cool-down. */
  finalThreshold: number;
  /** T, the total number of training steps. */
  totalSteps: number;
  /** t_i, steps of warm-up at τ_i; default 0. */
  warmupSteps?: number;
  /** t_f, steps of cool-down at τ_f; default 0. */
  cooldownSteps?: number;
  /** Δt: the threshold changes every Δt steps; default 1. */
  interval?: number;
  /**
   * What the threshold is compared with. `scores` (default): S itself, M = (S > τ) as in Sec. 4 of
   * Movement Pruning; any finite τ is allowed. `sigmoid`: σ(S), as the reference implementation's
   * `ThresholdBinarizer` does; then τ must lie in [0, 1), since σ(S) < 1 and τ ≥ 1 would keep nothing.
   */
  on?: 'scores' | 'sigmoid';
}

function thresholdError(message: string, fix: string): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_SCHEDULE, message, fix });
}

/**
 * A threshold schedule (kind `threshold`) for soft movement pruning: cubic-shaped from τ_i to τ_f
 * with warm-up and cool-down, as the reference implementation schedules its threshold (the same
 * curve as Eq. (5), with v replaced by τ):
 *
 *   τ(t) = τ_i for t < t_i;  τ_f + (τ_i − τ_f)(1 − (t − t_i)/(nΔt))³ for t_i ≤ t < T − t_f;  τ_f after.
 *
 * τ may rise or fall. A threshold that would keep nothing (not finite, or ≥ 1 with `on: 'sigmoid'`)
 * is refused with `INVALID_SCHEDULE`.
 *
 * @example
 * ```ts
 * const schedule = cubicThreshold({ initialThreshold: 0, finalThreshold: 0.1, totalSteps: 1000, warmupSteps: 100, cooldownSteps: 200 });
 * schedule.kind; // 'threshold'
 * schedule.valueAt(500); // 0.1 + (0 − 0.1)(1 − 400/700)³
 * ```
 */
export function cubicThreshold(options: CubicThresholdOptions): SparsitySchedule {
  const on = options?.on ?? 'scores';
  if (on !== 'scores' && on !== 'sigmoid')
    thresholdError(
      `cubicThreshold: on must be "scores" or "sigmoid", got ${JSON.stringify(on)}.`,
      'Use "scores" (S > τ) or "sigmoid" (σ(S) > τ).',
    );
  for (const [label, value] of [
    ['initialThreshold', options?.initialThreshold],
    ['finalThreshold', options?.finalThreshold],
  ] as const) {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      thresholdError(
        `cubicThreshold: ${label} must be a finite number, got ${String(value)}; an infinite or missing threshold keeps nothing (or everything).`,
        'Pass finite thresholds, for example initialThreshold 0 and finalThreshold 0.1.',
      );
    }
    if (on === 'sigmoid' && !(value >= 0 && value < 1)) {
      thresholdError(
        `cubicThreshold: ${label} is ${value}, but with on: "sigmoid" the mask keeps σ(S) > τ and σ(S) lies in (0, 1): a threshold ≥ 1 would keep nothing (and one < 0 keeps everything).`,
        'Use thresholds in [0, 1) with on: "sigmoid", or on: "scores" to threshold S itself.',
      );
    }
  }
  const initialThreshold = options.initialThreshold;
  const finalThreshold = options.finalThreshold;
  const totalSteps = checkSteps(options.totalSteps, 'cubicThreshold: totalSteps', 1);
  const warmupSteps = checkSteps(options.warmupSteps ?? 0, 'cubicThreshold: warmupSteps');
  const cooldownSteps = checkSteps(options.cooldownSteps ?? 0, 'cubicThreshold: cooldownSteps');
  const interval = checkSteps(options.interval ?? 1, 'cubicThreshold: interval', 1);
  const span = totalSteps - warmupSteps - cooldownSteps; // nΔt
  if (span <= 0) {
    thresholdError(
      `cubicThreshold: the ramp ends before it starts: totalSteps ${totalSteps} − warmupSteps ${warmupSteps} − cooldownSteps ${cooldownSteps} = ${span}.`,
      'Make totalSteps larger than warmupSteps + cooldownSteps.',
    );
  }
  if (interval > span) {
    thresholdError(
      `cubicThreshold: the interval ${interval} is longer than the ramp (${span} steps).`,
      `Use an interval of at most ${span} steps.`,
    );
  }
  return {
    id: 'cubicThreshold',
    kind: 'threshold',
    updateInterval: interval,
    valueAt(step) {
      checkStep(step);
      if (step < warmupSteps) return initialThreshold;
      if (step >= totalSteps - cooldownSteps) return finalThreshold;
      const rampStep = warmupSteps + Math.floor((step - warmupSteps) / interval) * interval;
      // Eq. (5) with τ for v: τ_f + (τ_i − τ_f)(1 − (t − t_i)/(nΔt))³
      return (
        finalThreshold + (initialThreshold - finalThreshold) * (1 - (rampStep - warmupSteps) / span) ** 3
      );
    },
    toConfig: () => ({
      type: 'cubicThreshold',
      initialThreshold,
      finalThreshold,
      totalSteps,
      warmupSteps,
      cooldownSteps,
      interval,
      on,
    }),
  };
}

/**
 * The schedule of a mask that needs no target (kind `none`), such as the hard-concrete gates of L0
 * regularisation, whose sparsity follows from the scores and the penalty. `valueAt` is always 0.
 *
 * @example
 * ```ts
 * new Pruner({ model, scores: l0(), mask: hardConcrete(), schedule: noTarget(), optimizers, lossTerms: [l0Penalty({ lambda: 1e-5 })] });
 * ```
 */
export function noTarget(): SparsitySchedule {
  return {
    id: 'noTarget',
    kind: 'none',
    updateInterval: 1,
    valueAt(step) {
      checkStep(step);
      return 0;
    },
    toConfig: () => ({ type: 'noTarget' }),
  };
}
