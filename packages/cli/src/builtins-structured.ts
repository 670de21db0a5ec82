import * as masks from '@fineprune/masks';
import type { OptionsSchema } from '@fineprune/recipes';
import * as structured from '@fineprune/structured';
import type { Candidate } from './builtins';

/** How learned unit or block scores start (`GroupScoreInit` of `@fineprune/structured`). */
const GROUP_SCORE_INIT: OptionsSchema = {
  init: {
    type: 'object',
    description: 'how the scores start: { type: constant | uniform | magnitude, value?, scale? }',
    properties: {
      type: { type: 'string', required: true, values: ['constant', 'uniform', 'magnitude'] },
      value: { type: 'number' },
      scale: { type: 'number', exclusiveMinimum: 0 },
    },
  },
};

/** A block size over the last two axes: a whole number ≥ 1, or "all" (the factories check it). */
const BLOCK_SIZE: OptionsSchema = {
  rows: { type: 'json', required: true, description: 'block height: a whole number ≥ 1 or "all"' },
  cols: { type: 'json', required: true, description: 'block width: a whole number ≥ 1 or "all"' },
};

/**
 * The structured-pruning plugins (issue 18): the shape-only patterns `nOfM` and `block` of
 * `@fineprune/masks`, and the unit masks, unit and block scores and penalty of
 * `@fineprune/structured`, with their options schemas.
 */
export const STRUCTURED_CANDIDATES: Candidate[] = [
  {
    kind: 'mask',
    id: 'nOfM',
    namespace: masks,
    exportName: 'nOfM',
    description: 'N:M along the input dimension (2:4, 4:8): exactly n of every m entries kept',
    options: {
      n: { type: 'integer', required: true, minimum: 1 },
      m: { type: 'integer', required: true, minimum: 1 },
      axis: {
        type: 'integer',
        minimum: 0,
        description: 'the axis of the groups; default the input dimension',
      },
      scope: { type: 'string', values: ['local', 'global'] },
      withinPrevious: { type: 'boolean', description: 'select inside the mask the parameter already has' },
    },
  },
  {
    kind: 'mask',
    id: 'block',
    namespace: masks,
    exportName: 'block',
    description: 'whole rows × cols blocks kept or removed by pooled scores (Top-v or threshold)',
    options: {
      ...BLOCK_SIZE,
      selection: { type: 'string', values: ['top', 'threshold'] },
      scope: { type: 'string', values: ['local', 'global'] },
      pool: { type: 'string', values: ['sum', 'l2', 'mean', 'max'] },
      keptCount: { type: 'string', description: 'how n − v·n blocks is rounded to a kept count' },
    },
  },
  {
    kind: 'mask',
    id: 'unitTopV',
    namespace: structured,
    exportName: 'unitTopV',
    description:
      'keep the top (1 − v) units (neurons, filters, heads) of the model’s structures, local or global',
    options: {
      scope: { type: 'string', values: ['local', 'global'] },
      keptCount: { type: 'string', description: 'how v·count is rounded to a kept count' },
    },
  },
  {
    kind: 'mask',
    id: 'unitThreshold',
    namespace: structured,
    exportName: 'unitThreshold',
    description: 'keep the units scored above τ (soft movement pruning by units)',
    options: {
      on: { type: 'string', values: ['scores', 'sigmoid'] },
      minKeptUnits: { type: 'integer', minimum: 1, description: 'units each structure keeps at least' },
    },
  },
  {
    kind: 'scores',
    id: 'unitMagnitude',
    namespace: structured,
    exportName: 'unitMagnitude',
    description: 'a unit’s norm over every weight it owns',
    options: { norm: { type: 'string', values: ['l2', 'l1'] } },
  },
  {
    kind: 'scores',
    id: 'unitMovement',
    namespace: structured,
    exportName: 'unitMovement',
    description: 'one learned score per unit, Eq. 2 of Movement Pruning summed over the unit',
    options: GROUP_SCORE_INIT,
  },
  {
    kind: 'scores',
    id: 'blockMovement',
    namespace: structured,
    exportName: 'blockMovement',
    description: 'one learned score per rows × cols block (block movement pruning)',
    options: { ...BLOCK_SIZE, ...GROUP_SCORE_INIT },
  },
  {
    kind: 'lossTerm',
    id: 'unitSigmoidPenalty',
    namespace: structured,
    exportName: 'unitSigmoidPenalty',
    description: 'λ Σ σ(S) over learned unit scores',
    options: { lambda: { type: 'number', required: true, minimum: 0, description: 'λ ≥ 0' } },
  },
];
