import type { SparsitySchedule } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { checkSparsity, checkStep, checkSteps } from './validate';

/** Options of {@link cubic}, named after Eq. (5) of Movement Pruning (Sanh et al., 2020). */
export interface CubicScheduleOptions {
  /** v_i, the sparsity during warm-up; default 0. */
  initialSparsity?: number;
  /** v_f, the sparsity reached at the end, in [0, 1). */
  finalSparsity: number;
  /** T, the total number of training steps. */
  totalSteps: number;
  /** t_i, steps of warm-up at v_i; default 0. */
  warmupSteps?: number;
  /** t_f, steps of cool-down at v_f at the end; default 0. */
  cooldownSteps?: number;
  /** Δt, the pruning interval: the target changes (and masks are re-selected) every Δt steps; default 1. */
  interval?: number;
}

/**
 * The cubic sparsity schedule of Zhu & Gupta (2018) with warm-up and cool-down, Eq. (5) of Movement Pruning:
 *
 *   v(t) = v_i                                          for 0 ≤ t < t_i
 *   v(t) = v_f + (v_i − v_f)(1 − (t − t_i)/(nΔt))³      for t_i ≤ t < T − t_f, with nΔt = T − t_i − t_f
 *   v(t) = v_f                                          otherwise
 *
 * where t is rounded down to the last pruning step t_i + kΔt. The paper prints the middle case as
 * (t − t_i − t_f)/(nΔt), which would start below v_i and jump at T − t_f; the authors' code and
 * Zhu & Gupta use (t − t_i), which is continuous at both ends, and so does this function.
 *
 * @example
 * ```ts
 * const schedule = cubic({ finalSparsity: 0.9, totalSteps: 1000, warmupSteps: 100, cooldownSteps: 100, interval: 10 });
 * schedule.valueAt(99); // 0
 * schedule.valueAt(500); // 0.9 + (0 - 0.9) * (1 - 400 / 800) ** 3 = 0.7875
 * schedule.valueAt(900); // 0.9
 * ```
 */
export function cubic(options: CubicScheduleOptions): SparsitySchedule {
  const initialSparsity = checkSparsity(options?.initialSparsity ?? 0, 'cubic: initialSparsity');
  const finalSparsity = checkSparsity(options.finalSparsity, 'cubic: finalSparsity');
  const totalSteps = checkSteps(options.totalSteps, 'cubic: totalSteps', 1);
  const warmupSteps = checkSteps(options.warmupSteps ?? 0, 'cubic: warmupSteps');
  const cooldownSteps = checkSteps(options.cooldownSteps ?? 0, 'cubic: cooldownSteps');
  const interval = checkSteps(options.interval ?? 1, 'cubic: interval', 1);
  if (initialSparsity > finalSparsity) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SCHEDULE,
      message: `cubic: initialSparsity ${initialSparsity} is above finalSparsity ${finalSparsity}; the schedule only prunes more over time.`,
      fix: 'Swap the two values, or use constant() for a fixed sparsity.',
    });
  }
  const span = totalSteps - warmupSteps - cooldownSteps; // nΔt
  if (span <= 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SCHEDULE,
      message: `cubic: the pruning phase ends before it starts: totalSteps ${totalSteps} − warmupSteps ${warmupSteps} − cooldownSteps ${cooldownSteps} = ${span}.`,
      fix: 'Make totalSteps larger than warmupSteps + cooldownSteps.',
    });
  }
  if (interval > span) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SCHEDULE,
      message: `cubic: the interval ${interval} is longer than the pruning phase (${span} steps), so no pruning step would happen.`,
      fix: `Use an interval of at most ${span} steps.`,
    });
  }
  return {
    id: 'cubic',
    kind: 'sparsity',
    updateInterval: interval,
    valueAt(step) {
      checkStep(step);
      if (step < warmupSteps) return initialSparsity;
      if (step >= totalSteps - cooldownSteps) return finalSparsity;
      const pruningStep = warmupSteps + Math.floor((step - warmupSteps) / interval) * interval;
      // Eq. (5): v_f + (v_i − v_f)(1 − (t − t_i)/(nΔt))³
      return (
        finalSparsity + (initialSparsity - finalSparsity) * (1 - (pruningStep - warmupSteps) / span) ** 3
      );
    },
    toConfig: () => ({
      type: 'cubic',
      initialSparsity,
      finalSparsity,
      totalSteps,
      warmupSteps,
      cooldownSteps,
      interval,
    }),
  };
}
