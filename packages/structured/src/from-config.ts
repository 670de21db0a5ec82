import type { JsonObject, LossTerm, MaskFunction, ScoreStrategy } from '@fineprune/core';
import { blockMovement } from './block-movement';
import { invalid } from './errors';
import { unitMagnitude } from './unit-magnitude';
import { unitMovement } from './unit-movement';
import { unitSigmoidPenalty } from './unit-sigmoid-penalty';
import { unitThreshold } from './unit-threshold';
import { unitTopV } from './unit-top-v';

const FACTORIES = {
  unitTopV,
  unitThreshold,
  unitMagnitude,
  unitMovement,
  blockMovement,
  unitSigmoidPenalty,
} as const;

/**
 * Rebuilds a plugin of this package (mask, score strategy or loss term) from its `toConfig()`.
 *
 * @example
 * ```ts
 * const copy = structuredFromConfig(unitTopV({ scope: 'global' }).toConfig()) as MaskFunction;
 * ```
 */
export function structuredFromConfig(config: JsonObject): MaskFunction | ScoreStrategy | LossTerm {
  const { type, ...options } = config as JsonObject & { type?: unknown };
  const factory = FACTORIES[type as keyof typeof FACTORIES];
  if (typeof type !== 'string' || !Object.hasOwn(FACTORIES, type) || !factory)
    invalid(
      `Unknown @fineprune/structured plugin type ${JSON.stringify(type)}.`,
      `Use one of: ${Object.keys(FACTORIES)
        .map((name) => JSON.stringify(name))
        .join(', ')}.`,
    );
  return (factory as (options: never) => MaskFunction | ScoreStrategy | LossTerm)(options as never);
}
