import { ErrorCodes, FinepruneError, type FinepruneErrorCode } from '@fineprune/core';

/**
 * Where a problem in a user's data file is: the file and, when known, the line (1-based).
 *
 * @example
 * ```ts
 * const place: DataPlace = { file: 'data/train.csv', line: 12 };
 * ```
 */
export interface DataPlace {
  file: string;
  line?: number;
}

/**
 * A typed error about a user's data file, its message starting with the file and line
 * (`data/train.csv line 12: …`), both also in `details`.
 *
 * @example
 * ```ts
 * throw dataError({ file, line: 3 }, 'has no "label" field', 'Add the label to every row.');
 * ```
 */
export function dataError(
  place: DataPlace,
  message: string,
  fix: string,
  options: { code?: FinepruneErrorCode; cause?: unknown; details?: Record<string, unknown> } = {},
): FinepruneError {
  const where = place.line === undefined ? place.file : `${place.file} line ${place.line}`;
  return new FinepruneError({
    code: options.code ?? ErrorCodes.INVALID_DATA,
    message: `${where}: ${message}`,
    fix,
    ...(options.cause !== undefined ? { cause: options.cause } : {}),
    details: {
      ...options.details,
      file: place.file,
      ...(place.line !== undefined ? { line: place.line } : {}),
    },
  });
}
