import { ErrorCodes, FinepruneError, type FinepruneErrorCode } from '@fineprune/tensor/errors';

/**
 * Throws a {@link FinepruneError} with the cause and the fix (`INVALID_ARGUMENT` unless a code is
 * given). Internal to the package: the mask functions' option checks.
 *
 * @example
 * ```ts
 * if (!(n < m)) invalid(`n must be below m, got ${n}:${m}.`, 'Pass n: 2, m: 4.');
 * ```
 */
export function invalid(
  message: string,
  fix: string,
  code: FinepruneErrorCode = ErrorCodes.INVALID_ARGUMENT,
): never {
  throw new FinepruneError({ code, message, fix });
}
