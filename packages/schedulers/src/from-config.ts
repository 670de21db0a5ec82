import type { JsonObject, SparsitySchedule } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { constant } from './constant';
import { cubic } from './cubic';
import { cubicThreshold, noTarget } from './threshold';

/**
 * Rebuilds a schedule from its `toConfig()` output.
 *
 * @example
 * ```ts
 * const copy = scheduleFromConfig(cubic({ finalSparsity: 0.9, totalSteps: 100 }).toConfig());
 * ```
 */
export function scheduleFromConfig(config: JsonObject): SparsitySchedule {
  const { type, ...options } = config as JsonObject & { type?: unknown };
  if (type === 'cubic') return cubic(options as never);
  if (type === 'constant') return constant(options as never);
  if (type === 'cubicThreshold') return cubicThreshold(options as never);
  if (type === 'noTarget') return noTarget();
  throw new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `Unknown schedule type ${JSON.stringify(type)}.`,
    fix: 'Use one of: "cubic", "constant", "cubicThreshold", "noTarget".',
  });
}
