import { ErrorCodes, FinepruneError } from '@fineprune/core';

/**
 * The `EMPTY_MASK` error of a mask function whose selection would keep no weight: a Top-v target
 * that rounds the kept count to 0, hard-concrete gates that are all closed. A mask that keeps
 * nothing disconnects the network, so every mask of this package refuses it, naming what it
 * selected over (a parameter, or the group for global selection) and how many weights that held.
 *
 * @param mask - the mask function, for the message (`topV`)
 * @param over - what the selection covered (`"dense_1/kernel"`, or `the group of 3 parameters`)
 * @param total - how many weights that holds
 * @param reason - why nothing is kept, as a clause (`at sparsity 0.999999`)
 * @param fix - what to change
 *
 * @example
 * ```ts
 * throw emptyMaskError('topV', '"dense_1/kernel"', 235200, 'at sparsity 0.999999', 'Lower the final sparsity.');
 * ```
 */
export function emptyMaskError(
  mask: string,
  over: string,
  total: number,
  reason: string,
  fix: string,
): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.EMPTY_MASK,
    message: `${mask}: ${reason} the mask of ${over} (${total} weights) would keep none of them.`,
    fix,
    details: { mask, total },
  });
}
