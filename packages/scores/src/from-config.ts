import type { JsonObject, ScoreStrategy } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import type { ScoreInit } from './init';
import { l0 } from './l0';
import { magnitude } from './magnitude';
import { movement } from './movement';

/**
 * Rebuilds a score strategy from its `toConfig()` output.
 *
 * @example
 * ```ts
 * const copy = scoresFromConfig(movement({ init: { type: 'uniform', scale: 0.01 } }).toConfig());
 * ```
 */
export function scoresFromConfig(config: JsonObject): ScoreStrategy {
  const { type, init } = config as { type?: unknown; init?: ScoreInit };
  if (type === 'magnitude') return magnitude();
  if (type === 'movement') return movement(init ? { init } : {});
  if (type === 'l0') return l0(init ? { init } : {});
  throw new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `Unknown score strategy type ${JSON.stringify(type)}.`,
    fix: 'Use one of: "magnitude", "movement", "l0".',
  });
}
