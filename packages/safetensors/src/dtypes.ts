/**
 * The element types of the safetensors format and what this package knows about each.
 */

import { ErrorCodes, FinepruneError, type FinepruneErrorCode } from '@fineprune/tensor/errors';

/**
 * A safetensors element type this package reads (names as written in the header).
 *
 * Floats: `F64`, `F32`, `F16` (IEEE 754 binary16), `BF16` (bfloat16), `F8_E4M3` (float8 e4m3fn: no
 * infinities, one NaN pattern) and `F8_E5M2`. Integers: `I64`, `I32`, `I16`, `I8`, `U64`, `U32`,
 * `U16`, `U8`. `BOOL` is one byte per element, 0 or 1.
 *
 * @example
 * ```ts
 * const dtype: SafetensorsDtype = 'BF16';
 * ```
 */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/**
 * How the elements of a {@link SafetensorsDtype} decode: `float` (to `Float32Array`), `int` (to
 * `Int32Array`) or `bool` (to 0/1 in a `Uint8Array` or `Int32Array`).
 *
 * @example
 * ```ts
 * const kind: DtypeKind = dtypeInfo('I64').kind; // 'int'
 * ```
 */
export type DtypeKind = 'float' | 'int' | 'bool';

/**
 * Size and kind of one element type.
 *
 * @example
 * ```ts
 * const info: DtypeInfo = dtypeInfo('F16'); // { dtype: 'F16', bytes: 2, kind: 'float' }
 * ```
 */
export interface DtypeInfo {
  /** The header name. */
  readonly dtype: SafetensorsDtype;
  /** Bytes per element. */
  readonly bytes: number;
  /** What the elements decode to. */
  readonly kind: DtypeKind;
}

const TABLE: Readonly<Record<SafetensorsDtype, DtypeInfo>> = {
  F64: { dtype: 'F64', bytes: 8, kind: 'float' },
  F32: { dtype: 'F32', bytes: 4, kind: 'float' },
  F16: { dtype: 'F16', bytes: 2, kind: 'float' },
  BF16: { dtype: 'BF16', bytes: 2, kind: 'float' },
  F8_E4M3: { dtype: 'F8_E4M3', bytes: 1, kind: 'float' },
  F8_E5M2: { dtype: 'F8_E5M2', bytes: 1, kind: 'float' },
  I64: { dtype: 'I64', bytes: 8, kind: 'int' },
  I32: { dtype: 'I32', bytes: 4, kind: 'int' },
  I16: { dtype: 'I16', bytes: 2, kind: 'int' },
  I8: { dtype: 'I8', bytes: 1, kind: 'int' },
  U64: { dtype: 'U64', bytes: 8, kind: 'int' },
  U32: { dtype: 'U32', bytes: 4, kind: 'int' },
  U16: { dtype: 'U16', bytes: 2, kind: 'int' },
  U8: { dtype: 'U8', bytes: 1, kind: 'int' },
  BOOL: { dtype: 'BOOL', bytes: 1, kind: 'bool' },
};

/**
 * Every dtype this package reads (floats, then integers, then `BOOL`).
 *
 * @example
 * ```ts
 * SAFETENSORS_DTYPES.includes('BF16'); // true
 * ```
 */
export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = Object.freeze(
  Object.keys(TABLE) as SafetensorsDtype[],
);

/**
 * True when `value` names a dtype this package reads.
 *
 * @param value - anything, typically a header's `dtype` field
 * @returns whether it is a {@link SafetensorsDtype}
 *
 * @example
 * ```ts
 * isSafetensorsDtype('F16'); // true
 * isSafetensorsDtype('F4'); // false: not supported
 * ```
 */
export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(TABLE, value);
}

/**
 * Size and kind of a dtype.
 *
 * @param dtype - a {@link SafetensorsDtype}
 * @returns its {@link DtypeInfo}
 * @throws FinepruneError `INVALID_ARGUMENT` when the dtype is not one this package reads
 *
 * @example
 * ```ts
 * dtypeInfo('BF16').bytes; // 2
 * ```
 */
export function dtypeInfo(dtype: SafetensorsDtype): DtypeInfo {
  if (!isSafetensorsDtype(dtype)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Unknown safetensors dtype ${JSON.stringify(dtype)}.`,
      fix: `Use one of ${SAFETENSORS_DTYPES.join(', ')}.`,
    });
  }
  return TABLE[dtype];
}

/** A `CHECKPOINT_CORRUPT` error (or another code) with details. @internal */
export function corrupt(
  message: string,
  fix: string,
  details?: Record<string, unknown>,
  cause?: unknown,
  code: FinepruneErrorCode = ErrorCodes.CHECKPOINT_CORRUPT,
): FinepruneError {
  return new FinepruneError({
    code,
    message,
    fix,
    ...(details ? { details } : {}),
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** An `INVALID_ARGUMENT` error. @internal */
export function invalid(message: string, fix: string, details?: Record<string, unknown>): FinepruneError {
  return corrupt(message, fix, details, undefined, ErrorCodes.INVALID_ARGUMENT);
}
