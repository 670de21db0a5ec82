/**
 * Structured pruning recipes of the encoder speed/accuracy benchmark (issue 18), as Pruner groups
 * over the shape-only masks of `@fineprune/masks` with movement scores (Eq. 2 of *Movement Pruning*
 * pooled over each block) on the cubic schedule (Eq. 5):
 *
 * - `blockMvP`: 32 × 32 blocks in every projection (nn_pruning's block movement pruning);
 * - `headsNeurons`: attention heads and feed-forward neurons, each scored on the rows that read it
 *   (a head's `headSize` rows of the attention-output kernel, a neuron's row of the feed-forward
 *   output kernel), local Top-v per matrix; `shrinkBertModel` then removes the unread units with
 *   their query, key, value and intermediate columns (`headsRemaining` 1: neurons only);
 * - `hybrid` (nn_pruning's hybrid): 32 × 32 blocks in the four attention matrices, neurons in the
 *   feed-forward layers as in `headsNeurons`;
 * - `units`: heads and neurons as the whole units of the encoder's `structures()` (a head: its
 *   query, key and value columns and its attention-output rows; a neuron: its intermediate column
 *   and feed-forward output row), scored by `unitMovement` (Eq. 2 of Movement Pruning summed over
 *   every weight of the unit) or `unitMagnitude` (the unit's L2 norm), heads selected by `unitTopV`
 *   across the layers (`headSelection` `global`: every head of the encoder competes, each layer
 *   keeping at least one) or per layer, neurons per layer;
 * - `2:4`: movement scores with the 2:4 pattern along the input dimension (50%).
 */
import type { Optimizer, PrunerOptions, PruningGroupOptions } from '@fineprune/core';
import { block, nOfM } from '@fineprune/masks';
import { cubic } from '@fineprune/schedulers';
import { movement } from '@fineprune/scores';
import { unitMagnitude, unitMovement, unitTopV } from '@fineprune/structured';

export type StructuredMethod = 'blockMvP' | 'headsNeurons' | 'hybrid' | 'units' | '2:4';

export const STRUCTURED_METHODS: readonly StructuredMethod[] = [
  'blockMvP',
  'headsNeurons',
  'hybrid',
  'units',
  '2:4',
];

/** How `units` scores heads and neurons: learned unit movement or the units' L2 norms. */
export type UnitScoring = 'movement' | 'magnitude';

export interface StructuredRecipeOptions {
  method: StructuredMethod;
  /** Target share of remaining weights of the pruned matrices (blocks, neurons); 2:4 keeps 50%. */
  remaining: number;
  /** Share of heads kept by `headsNeurons` (local, per layer) and `units` (see `headSelection`). */
  headsRemaining: number;
  /** `units`: rank the heads of all layers together (`global`, default) or per layer (`local`). */
  headSelection?: 'global' | 'local';
  /** `units`: unit movement (default) or unit magnitude scores. */
  unitScoring?: UnitScoring;
  hiddenSize: number;
  headSize: number;
  totalSteps: number;
  warmupSteps: number;
  cooldownSteps: number;
  weights: Optimizer;
  /** One optimizer per group that learns scores (a Pruner refuses one optimizer for two groups). */
  scoreOptimizer: () => Optimizer;
}

const ATTENTION = /attention\/(query|key|value|output)\/kernel$/;
const ATTENTION_OUTPUT = /attention\/output\/kernel$/;
const FFN_OUTPUT = /ffn\/output\/kernel$/;
const FFN = /ffn\/(intermediate|output)\/kernel$/;

/**
 * The `units` groups: heads over the four attention kernels and neurons over the two feed-forward
 * kernels, so that each group sees whole units of `structures()` (every member of a head or neuron).
 */
function unitGroups(options: StructuredRecipeOptions): PruningGroupOptions[] {
  const { totalSteps, warmupSteps, cooldownSteps } = options;
  const scoring = options.unitScoring ?? 'movement';
  const group = (name: string, parameters: RegExp, scope: 'global' | 'local', finalSparsity: number) => ({
    name,
    parameters,
    ...(scoring === 'movement'
      ? { scores: unitMovement(), scoreOptimizer: options.scoreOptimizer(), maskUpdateInterval: 1 }
      : { scores: unitMagnitude() }),
    mask: unitTopV({ scope }),
    schedule: cubic({ finalSparsity, totalSteps, warmupSteps, cooldownSteps, interval: 10 }),
  });
  return [
    ...(options.headsRemaining < 1
      ? [group('heads', ATTENTION, options.headSelection ?? 'global', 1 - options.headsRemaining)]
      : []),
    group('neurons', FFN, 'local', 1 - options.remaining),
  ];
}

/** The recipe (Pruner options but the model) of one structured method. */
export function structuredRecipe(options: StructuredRecipeOptions): Omit<PrunerOptions, 'model'> {
  const { method, totalSteps, warmupSteps, cooldownSteps } = options;
  const group = (
    name: string,
    parameters: RegExp | undefined,
    mask: PruningGroupOptions['mask'],
    finalSparsity: number,
  ): PruningGroupOptions => ({
    name,
    ...(parameters ? { parameters } : {}),
    scores: movement(),
    mask,
    schedule: cubic({ finalSparsity, totalSteps, warmupSteps, cooldownSteps, interval: 10 }),
    maskUpdateInterval: 1,
    scoreOptimizer: options.scoreOptimizer(),
  });
  const blocks = block({ rows: 32, cols: 32 });
  // A neuron is one row (1 × H) of the feed-forward output kernel [I, H].
  const neurons = group(
    'neurons',
    FFN_OUTPUT,
    block({ rows: 1, cols: options.hiddenSize }),
    1 - options.remaining,
  );
  const groups: PruningGroupOptions[] =
    method === 'blockMvP'
      ? [group('blocks', undefined, blocks, 1 - options.remaining)]
      : method === 'hybrid'
        ? [group('attention blocks', ATTENTION, blocks, 1 - options.remaining), neurons]
        : method === 'units'
          ? unitGroups(options)
          : method === 'headsNeurons'
            ? [
                // A head is headSize rows (headSize × H) of the attention-output kernel [H, H]; with
                // every head kept, only the neurons are pruned.
                ...(options.headsRemaining < 1
                  ? [
                      group(
                        'heads',
                        ATTENTION_OUTPUT,
                        block({ rows: options.headSize, cols: options.hiddenSize }),
                        1 - options.headsRemaining,
                      ),
                    ]
                  : []),
                neurons,
              ]
            : [group('2:4', undefined, nOfM({ n: 2, m: 4 }), 0.5)];
  return { groups, optimizers: { weights: options.weights } };
}
