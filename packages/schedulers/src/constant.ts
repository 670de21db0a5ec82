import type { SparsitySchedule } from '@fineprune/core';
import { checkSparsity, checkStep } from './validate';

/** Options of {@link constant}. */
export interface ConstantScheduleOptions {
  /** The sparsity at every step, in [0, 1). */
  sparsity: number;
  /** How often masks are re-selected; default 1 (every step). */
  updateInterval?: number;
}

/**
 * The same sparsity at every step: one-shot pruning, or a fixed sparsity during fine-tuning.
 *
 * @example
 * ```ts
 * const schedule = constant({ sparsity: 0.5 });
 * schedule.valueAt(1234); // 0.5
 * ```
 */
export function constant(options: ConstantScheduleOptions): SparsitySchedule {
  const sparsity = checkSparsity(options?.sparsity, 'constant: sparsity');
  const updateInterval = options.updateInterval ?? 1;
  return {
    id: 'constant',
    kind: 'sparsity',
    updateInterval,
    valueAt(step) {
      checkStep(step);
      return sparsity;
    },
    toConfig: () => ({ type: 'constant', sparsity, updateInterval }),
  };
}
