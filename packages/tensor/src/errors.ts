/**
 * The one error type of fineprune. Every failure caused by the user's input or environment is a
 * `FinepruneError` with a stable `code`, a sentence on the cause, and a sentence on the fix.
 *
 * It lives in `@fineprune/tensor` (the package every other one depends on), also on the subpath
 * `@fineprune/tensor/errors` (no side effects, nothing else imported), and is re-exported by
 * `@fineprune/core`.
 */

const FINEPRUNE_ERROR_MARKER = Symbol.for('fineprune.error');

/**
 * Stable error codes. Codes are part of the public API: they never change meaning, and new ones
 * are only added.
 */
export const ErrorCodes = {
  /** An argument has the wrong type or is out of range. */
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** A sparsity (or kept fraction) is outside its allowed range. */
  INVALID_SPARSITY: 'INVALID_SPARSITY',
  /** A schedule's steps are inconsistent (for example it ends before it starts). */
  INVALID_SCHEDULE: 'INVALID_SCHEDULE',
  /** A backend name is not known. */
  UNKNOWN_BACKEND: 'UNKNOWN_BACKEND',
  /** No requested backend could be initialised. */
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  /** A model exposes no weight that can be pruned. */
  NO_PRUNABLE_PARAMETERS: 'NO_PRUNABLE_PARAMETERS',
  /** A layer type cannot be pruned by the adapter. */
  UNSUPPORTED_LAYER: 'UNSUPPORTED_LAYER',
  /** Two shapes that must agree do not. */
  SHAPE_MISMATCH: 'SHAPE_MISMATCH',
  /** A loss, score or gradient became NaN or infinite. */
  NON_FINITE: 'NON_FINITE',
  /** A data file is malformed (truncated, wrong magic number, wrong counts). */
  INVALID_DATA: 'INVALID_DATA',
  /** A saved model or checkpoint does not match the model it is loaded into. */
  CHECKPOINT_MISMATCH: 'CHECKPOINT_MISMATCH',
  /** A saved model or checkpoint is unreadable or incomplete. */
  CHECKPOINT_CORRUPT: 'CHECKPOINT_CORRUPT',
  /** Reading or writing a file failed. */
  IO_FAILED: 'IO_FAILED',
  /** A plugin threw inside one of its hooks. */
  PLUGIN_HOOK_FAILED: 'PLUGIN_HOOK_FAILED',
  /** Plugins were composed in a way that cannot work (for example a threshold schedule with a Top-v mask). */
  INCOMPATIBLE_PLUGINS: 'INCOMPATIBLE_PLUGINS',
  /** A block of code left tensors allocated. */
  TENSOR_LEAK: 'TENSOR_LEAK',
  /** The object was used after `dispose()`. */
  DISPOSED: 'DISPOSED',
  /** A data-driven score (a saliency criterion) was read before it was measured on data. */
  NOT_MEASURED: 'NOT_MEASURED',
  /** A recipe does not follow the recipe format (wrong type, missing field, out-of-range number). */
  INVALID_RECIPE: 'INVALID_RECIPE',
  /** A recipe names a plugin id that no registered plugin package provides. */
  UNKNOWN_PLUGIN: 'UNKNOWN_PLUGIN',
  /** A plugin package named in a recipe cannot be imported or registers nothing valid. */
  PLUGIN_PACKAGE_FAILED: 'PLUGIN_PACKAGE_FAILED',
  /** A run was interrupted (Ctrl-C) after writing a checkpoint. */
  INTERRUPTED: 'INTERRUPTED',
  /** A mask would keep no weight at all (for example a threshold above every score, with no floor). */
  EMPTY_MASK: 'EMPTY_MASK',
  /** An optional peer dependency that a feature needs is not installed, or installed but unusable. */
  MISSING_DEPENDENCY: 'MISSING_DEPENDENCY',
  /** A model adapter was given something it cannot wrap (a graph model, a plain object, a promise). */
  UNSUPPORTED_MODEL: 'UNSUPPORTED_MODEL',
  /** Training diverged: the loss grew beyond the divergence guard's factor of its running minimum. */
  DIVERGED: 'DIVERGED',
  /** An export would be larger than the model it came from (and the user did not allow it). */
  LARGER_THAN_SOURCE: 'LARGER_THAN_SOURCE',
  /** What a step needs does not fit the wasm backend's heap (at most 4 GiB, wasm32). */
  WASM_HEAP_EXHAUSTED: 'WASM_HEAP_EXHAUSTED',
} as const;

/** One of the stable {@link ErrorCodes}. */
export type FinepruneErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** What a {@link FinepruneError} is made from. */
export interface FinepruneErrorOptions {
  /** Stable machine-readable code. */
  code: FinepruneErrorCode;
  /** What went wrong, in one or two sentences. */
  message: string;
  /** What the user should do about it. */
  fix: string;
  /** The underlying error, when one was caught. */
  cause?: unknown;
  /** Structured facts for scripts (names, shapes, values). */
  details?: Record<string, unknown>;
}

/**
 * The error every fineprune package throws for bad input or environment.
 *
 * @example
 * ```ts
 * try {
 *   await setBackend('tpu');
 * } catch (error) {
 *   if (FinepruneError.is(error) && error.code === 'UNKNOWN_BACKEND') console.error(error.fix);
 * }
 * ```
 */
export class FinepruneError extends Error {
  readonly code: FinepruneErrorCode;
  readonly fix: string;
  readonly details: Record<string, unknown> | undefined;
  readonly [FINEPRUNE_ERROR_MARKER] = true;

  constructor(options: FinepruneErrorOptions) {
    super(`[${options.code}] ${options.message} Fix: ${options.fix}`, { cause: options.cause });
    this.name = 'FinepruneError';
    this.code = options.code;
    this.fix = options.fix;
    this.details = options.details;
  }

  /** True for any `FinepruneError`, also one from another copy of the package. */
  static is(value: unknown): value is FinepruneError {
    return (
      typeof value === 'object' &&
      value !== null &&
      (value as Record<symbol, unknown>)[FINEPRUNE_ERROR_MARKER] === true
    );
  }
}

/**
 * `error instanceof FinepruneError` holds for an error from any copy of the package (the ES-module
 * and the CommonJS build in one process each define the class): it checks the marker, as
 * {@link FinepruneError.is} does. For a subclass, `instanceof` keeps its usual meaning (`this` is
 * the class on the right of `instanceof`).
 */
Object.defineProperty(FinepruneError, Symbol.hasInstance, {
  value: function hasInstance(this: unknown, value: unknown): boolean {
    if (this === FinepruneError) return FinepruneError.is(value);
    return Function.prototype[Symbol.hasInstance].call(this, value);
  },
});

/**
 * Throws an `INVALID_ARGUMENT` {@link FinepruneError} unless `condition` holds.
 *
 * @example
 * ```ts
 * check(batchSize > 0, 'batchSize must be positive, got 0.', 'Pass a batchSize of 1 or more.');
 * ```
 */
export function check(
  condition: unknown,
  message: string,
  fix: string,
  code: FinepruneErrorCode = ErrorCodes.INVALID_ARGUMENT,
): asserts condition {
  if (!condition) throw new FinepruneError({ code, message, fix });
}
