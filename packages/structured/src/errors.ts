import { ErrorCodes, FinepruneError } from '@fineprune/core';

/**
 * Throws the `FinepruneError` of a bad option or input of this package: the cause, then the fix.
 *
 * @example
 * ```ts
 * if (!(lambda >= 0)) invalid(`unitSigmoidPenalty: lambda must be ≥ 0, got ${lambda}.`, 'Use 1e-4.');
 * ```
 */
export function invalid(
  message: string,
  fix: string,
  code: FinepruneError['code'] = ErrorCodes.INVALID_ARGUMENT,
): never {
  throw new FinepruneError({ code, message, fix });
}

/**
 * Checks that `value` is one of `allowed`, naming the owner and option in the error.
 *
 * @example
 * ```ts
 * checkChoice('unitTopV', 'scope', options.scope ?? 'local', ['local', 'global']);
 * ```
 */
export function checkChoice<T extends string>(
  owner: string,
  option: string,
  value: unknown,
  allowed: readonly T[],
): T {
  if (!allowed.includes(value as T))
    invalid(
      `${owner}: ${option} must be ${allowed.map((choice) => JSON.stringify(choice)).join(' or ')}, got ${JSON.stringify(value)}.`,
      `Use ${JSON.stringify(allowed[0])} (the default) or another allowed value.`,
    );
  return value as T;
}
