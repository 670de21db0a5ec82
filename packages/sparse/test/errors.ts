/** Assertions helpers for typed errors. */
import { FinepruneError } from '@fineprune/tensor';

/** The `code` of the FinepruneError `run` throws; a description when it throws something else. */
export function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return FinepruneError.is(error) ? error.code : `not a FinepruneError: ${String(error)}`;
  }
  return undefined;
}

/** The message of what `run` throws ('' when it does not throw). */
export function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}
