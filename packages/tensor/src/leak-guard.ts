/**
 * A guard that fails when a block of code leaves tensors allocated.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';

/**
 * Options of {@link withLeakGuard}.
 *
 * @example
 * ```ts
 * const options: LeakGuardOptions = { allowed: 1, label: 'forward pass' };
 * ```
 */
export interface LeakGuardOptions {
  /** How many more tensors may exist after `fn` than before (for example those it returns). Default 0. */
  allowed?: number;
  /** Names the guarded block in the error message. */
  label?: string;
}

/**
 * How many tensors TF.js holds now (`tf.memory().numTensors`).
 *
 * @returns the live tensor count
 *
 * @example
 * ```ts
 * const before = countTensors();
 * tf.tidy(() => tf.ones([2]).square());
 * countTensors() === before; // true
 * ```
 */
export function countTensors(): number {
  return tf.memory().numTensors;
}

/**
 * Runs `fn` and throws `TENSOR_LEAK` if more tensors exist afterwards than before, beyond
 * `options.allowed`. Tensors that `fn` returns count as leaked unless allowed. When `fn` throws, its
 * error propagates unchanged.
 *
 * @param fn - the code to check, synchronous or asynchronous
 * @param options - tensors allowed to remain and a label for the message
 * @returns what `fn` returns
 * @throws FinepruneError `TENSOR_LEAK` with the counts before and after
 *
 * @example
 * ```ts
 * const y = await withLeakGuard(() => tf.tidy(() => model.predict(x) as tf.Tensor), { allowed: 1 });
 * y.dispose();
 * ```
 */
export async function withLeakGuard<T>(fn: () => T | Promise<T>, options: LeakGuardOptions = {}): Promise<T> {
  const allowed = options.allowed ?? 0;
  if (!Number.isInteger(allowed) || allowed < 0) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `allowed must be a non-negative integer, got ${allowed}.`,
      fix: 'Pass how many tensors the block may leave behind, for example { allowed: 1 } for one returned tensor.',
    });
  }
  const before = countTensors();
  const result = await fn();
  const after = countTensors();
  const leaked = after - before;
  if (leaked > allowed) {
    const where = options.label ? `'${options.label}'` : 'The guarded code';
    throw new FinepruneError({
      code: ErrorCodes.TENSOR_LEAK,
      message: `${where} left ${leaked} tensor(s) allocated (${before} before, ${after} after, ${allowed} allowed).`,
      fix: 'Wrap tensor code in tf.tidy(), dispose() intermediate tensors, or raise `allowed` for tensors returned on purpose.',
      details: { before, after, leaked, allowed, label: options.label },
    });
  }
  return result;
}
