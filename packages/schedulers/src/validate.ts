import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/** Throws INVALID_SPARSITY unless `value` is a sparsity in [0, 1). */
export function checkSparsity(value: unknown, what: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value < 1)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SPARSITY,
      message: `${what} must be a number in [0, 1), got ${String(value)}.`,
      fix: 'A sparsity is the fraction of weights removed: 0.9 keeps 10%. It cannot reach 1 (nothing kept).',
    });
  }
  return value;
}

/** Throws INVALID_SCHEDULE unless `value` is an integer ≥ `minimum`. */
export function checkSteps(value: unknown, what: string, minimum = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_SCHEDULE,
      message: `${what} must be an integer ≥ ${minimum}, got ${String(value)}.`,
      fix: `Pass a whole number of steps, at least ${minimum}.`,
    });
  }
  return value;
}

/** Throws INVALID_ARGUMENT unless `step` is a non-negative integer. */
export function checkStep(step: number): void {
  if (!Number.isInteger(step) || step < 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `A schedule was asked for step ${step}; steps are non-negative integers.`,
      fix: 'Pass the number of optimizer steps completed.',
    });
  }
}
