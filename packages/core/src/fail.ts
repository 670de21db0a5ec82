import { ErrorCodes, FinepruneError, type FinepruneErrorCode } from '@fineprune/tensor/errors';

/**
 * Throws a {@link FinepruneError} with the cause and the fix (`INVALID_ARGUMENT` unless a code is
 * given). Internal to the package.
 *
 * @example
 * ```ts
 * if (!(sparsity < 1)) fail(`sparsity must be below 1, got ${sparsity}.`, 'Pass 0.9.', ErrorCodes.INVALID_SPARSITY);
 * ```
 */
export function fail(
  message: string,
  fix: string,
  code: FinepruneErrorCode = ErrorCodes.INVALID_ARGUMENT,
): never {
  throw new FinepruneError({ code, message, fix });
}
