import { checkKeptCountRule, type JsonObject, type KeptCountRule, keptCountFor } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * How the sparsity grows over the stages (Algorithm 1, line 5).
 *
 * @example
 * ```ts
 * const kind: StageScheduleKind = 'exponential';
 * ```
 */
export type StageScheduleKind = 'linear' | 'exponential';

/**
 * Options of {@link stageSchedule}.
 *
 * @example
 * ```ts
 * const options: StageScheduleOptions = { stages: 140, finalSparsity: 0.9885, kind: 'linear' };
 * ```
 */
export interface StageScheduleOptions {
  /** Number of pruning stages π ≥ 1. */
  stages: number;
  /** Final sparsity κ in [0, 1). */
  finalSparsity: number;
  /** `exponential` (default; a shrinking count each stage) or `linear` (equal counts). */
  kind?: StageScheduleKind;
  /** Sparsity κ₀ before the first stage; default 0. */
  initialSparsity?: number;
  /**
   * How κ_i·N becomes a count (see `KeptCountRule` of `@fineprune/core`): `round` (default) prunes
   * round(κ_i·N) with halves up; `half-even` prunes it with Python's round, as the loss-modelling
   * reference code does (N = 1,000, κ = 0.0125: 12 pruned instead of 13).
   */
  keptCount?: KeptCountRule;
}

/**
 * The sparsity after each of π stages, and the exact number of weights to keep.
 *
 * @example
 * ```ts
 * const schedule = stageSchedule({ stages: 14, finalSparsity: 0.9885, kind: 'exponential' });
 * schedule.keptCounts(266_200).at(-1); // 3061 = 266200 − round(0.9885 · 266200)
 * ```
 */
export interface StageSchedule {
  readonly id: 'stages';
  readonly stages: number;
  readonly kind: StageScheduleKind;
  readonly finalSparsity: number;
  readonly initialSparsity: number;
  /** The rule that turns κ_i·N into a count. */
  readonly keptCount: KeptCountRule;
  /** The target sparsity κ_i after stage i (1 ≤ i ≤ π); κ_π = κ. */
  sparsityAt(stage: number): number;
  /**
   * How many of `total` weights are kept after each stage, non-increasing, the last exactly
   * `total − round(κ·total)` under the `keptCount` rule (the same count a global Top-v mask with
   * that rule keeps).
   */
  keptCounts(total: number): number[];
  toConfig(): JsonObject;
}

/**
 * Builds the stage schedule of Algorithm 1, line 5.
 *
 * - linear: κ_i = κ_{i−1} + (κ − κ₀)/π, every stage removes the same number of weights;
 * - exponential: 1 − κ_i = (1 − κ₀)·((1 − κ)/(1 − κ₀))^{i/π}, every stage removes the same
 *   fraction of the remaining weights, so a shrinking count.
 *
 * @throws FinepruneError `INVALID_SCHEDULE` when π is not an integer ≥ 1, `INVALID_SPARSITY` when
 *   κ ∉ [0, 1) or κ₀ ∉ [0, κ]
 *
 * @example
 * ```ts
 * stageSchedule({ stages: 2, finalSparsity: 0.75, kind: 'exponential' }).sparsityAt(1); // 0.5
 * stageSchedule({ stages: 2, finalSparsity: 0.75, kind: 'linear' }).sparsityAt(1); // 0.375
 * ```
 */
export function stageSchedule(options: StageScheduleOptions): StageSchedule {
  const { stages, finalSparsity } = options;
  const kind = options.kind ?? 'exponential';
  const initialSparsity = options.initialSparsity ?? 0;
  const rule = options.keptCount ?? 'round';
  checkKeptCountRule('stageSchedule', rule);
  if (!(Number.isInteger(stages) && stages >= 1)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SCHEDULE,
      message: `The number of pruning stages π must be an integer ≥ 1, got ${stages}.`,
      fix: 'Use π = 1 for one-shot pruning, or more stages (the paper uses 14 and 140).',
      details: { stages },
    });
  }
  if (!(finalSparsity >= 0 && finalSparsity < 1)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SPARSITY,
      message: `The final sparsity κ must be in [0, 1), got ${finalSparsity}.`,
      fix: 'Pass the fraction of weights to remove, below 1 (the paper prunes 0.9885 of the MLP).',
      details: { finalSparsity },
    });
  }
  if (!(initialSparsity >= 0 && initialSparsity <= finalSparsity)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SPARSITY,
      message: `The initial sparsity κ₀ must be in [0, κ = ${finalSparsity}], got ${initialSparsity}.`,
      fix: 'Start from the current sparsity of the model (0 for a dense one).',
    });
  }
  if (kind !== 'linear' && kind !== 'exponential') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SCHEDULE,
      message: `Unknown stage schedule kind "${kind}".`,
      fix: "Use 'linear' or 'exponential'.",
    });
  }
  const sparsityAt = (stage: number): number => {
    if (!(Number.isInteger(stage) && stage >= 0 && stage <= stages)) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `Stage must be an integer in [0, ${stages}], got ${stage}.`,
        fix: 'Ask for a stage of this schedule.',
      });
    }
    if (stage === stages) return finalSparsity;
    if (kind === 'linear') return initialSparsity + ((finalSparsity - initialSparsity) * stage) / stages; // κ_i = κ₀ + i(κ − κ₀)/π
    // Exponential: the kept fraction shrinks by the same factor every stage.
    const ratio = (1 - finalSparsity) / (1 - initialSparsity);
    return 1 - (1 - initialSparsity) * ratio ** (stage / stages);
  };
  return {
    id: 'stages',
    stages,
    kind,
    finalSparsity,
    initialSparsity,
    keptCount: rule,
    sparsityAt,
    keptCounts(total) {
      if (!(Number.isInteger(total) && total >= 0)) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: `The number of weights must be a non-negative integer, got ${total}.`,
          fix: 'Pass the total size of the pruned parameters.',
        });
      }
      const counts: number[] = [];
      let previous = keptCountFor(total, initialSparsity, rule);
      for (let stage = 1; stage <= stages; stage += 1) {
        const kept = Math.min(previous, keptCountFor(total, sparsityAt(stage), rule));
        counts.push(kept);
        previous = kept;
      }
      return counts;
    },
    toConfig: () => ({ stages, finalSparsity, kind, initialSparsity, keptCount: rule }),
  };
}
