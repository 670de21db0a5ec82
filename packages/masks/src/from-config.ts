import type { JsonObject, LossTerm, MaskFunction } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { block } from './block';
import { hardConcrete, l0Penalty } from './hard-concrete';
import { nOfM } from './n-of-m';
import { sigmoidPenalty, threshold } from './threshold';
import { topV } from './top-v';

/**
 * Rebuilds a mask function from its `toConfig()` output.
 *
 * @example
 * ```ts
 * const copy = maskFromConfig(threshold({ minKeptFraction: 0.01 }).toConfig());
 * ```
 */
export function maskFromConfig(config: JsonObject): MaskFunction {
  const { type, ...options } = config as JsonObject & { type?: unknown };
  if (type === 'topV') return topV(options as never);
  if (type === 'threshold') return threshold(options as never);
  if (type === 'hardConcrete') return hardConcrete(options as never);
  if (type === 'nOfM') return nOfM(options as never);
  if (type === 'block') return block(options as never);
  throw new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `Unknown mask type ${JSON.stringify(type)}.`,
    fix: 'Use one of: "topV", "threshold", "hardConcrete", "nOfM", "block".',
  });
}

/**
 * Rebuilds a loss term of this package from its `toConfig()` output.
 *
 * @example
 * ```ts
 * const copy = lossTermFromConfig(l0Penalty({ lambda: 1e-5 }).toConfig());
 * ```
 */
export function lossTermFromConfig(config: JsonObject): LossTerm {
  const { type, ...options } = config as JsonObject & { type?: unknown };
  if (type === 'sigmoidPenalty') return sigmoidPenalty(options as never);
  if (type === 'l0Penalty') return l0Penalty(options as never);
  throw new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `Unknown loss term type ${JSON.stringify(type)}.`,
    fix: 'Use one of: "sigmoidPenalty", "l0Penalty".',
  });
}
