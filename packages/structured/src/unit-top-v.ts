import { checkKeptCountRule, type KeptCountRule, type MaskFunction } from '@fineprune/core';
import { checkChoice } from './errors';
import { masksFromWeightScores } from './pooled-units';
import { readUnitScores, topUnits, unitMaskTensors } from './unit-selection';

/**
 * Options of {@link unitTopV}.
 *
 * @example
 * ```ts
 * const options: UnitTopVOptions = { scope: 'global' };
 * ```
 */
export interface UnitTopVOptions {
  /**
   * `local` (default): keep the top (1 − v) of the units of each structure (each layer keeps the
   * same share of neurons); `global`: rank the units of all the group's structures together.
   */
  scope?: 'local' | 'global';
  /** How v · count becomes a kept count (`KeptCountRule` of `@fineprune/core`); default `round`. */
  keptCount?: KeptCountRule;
}

/**
 * Top-v over whole units — neurons, filters with the next layer's input channels, attention heads —
 * of the model's `structures()` (Eq. 1 of Movement Pruning with a unit in place of a weight). With
 * unit scores (`unitMagnitude()`, `unitMovement()`) it ranks one score per unit; with per-weight
 * scores (`magnitude()`, `movement()` of `@fineprune/scores`) it ranks the sum of each unit's scores
 * over every member. `local` keeps exactly `count − round(v · count)` units of each structure;
 * `global` keeps that many of the group's units together (a structure that would lose every unit
 * keeps its best one). Composes with every sparsity schedule (cubic with warm-up and cool-down).
 *
 * @example
 * ```ts
 * new Pruner({ model: prunable, scores: unitMovement(), mask: unitTopV({ scope: 'local' }),
 *   schedule: cubic({ finalSparsity: 0.75, totalSteps: 600 }), optimizers });
 * ```
 */
export function unitTopV(options: UnitTopVOptions = {}): MaskFunction {
  const scope = checkChoice('unitTopV', 'scope', options.scope ?? 'local', ['local', 'global'] as const);
  const keptCount = options.keptCount ?? 'round';
  checkKeptCountRule('unitTopV', keptCount);
  const mask: MaskFunction = {
    id: 'unitTopV',
    targetKind: 'sparsity',
    requiresStructures: true,
    async computeUnits(inputs, sparsity) {
      const scores = await readUnitScores(inputs);
      const names = inputs.map((input) => input.structure.name);
      return unitMaskTensors(topUnits(scores, names, sparsity, scope, keptCount));
    },
    compute: (inputs, sparsity, context) =>
      masksFromWeightScores(inputs, context, (units) =>
        Promise.resolve(mask.computeUnits!(units, sparsity, context)),
      ),
    toConfig: () => ({ type: 'unitTopV', scope, keptCount }),
  };
  return mask;
}
