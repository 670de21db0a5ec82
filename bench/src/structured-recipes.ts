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
 * - `2:4`: movement scores with the 2:4 pattern along the input dimension (50%).
 */
import type { Optimizer, PrunerOptions, PruningGroupOptions } from '@fineprune/core';
import { block, nOfM } from '@fineprune/masks';
import { cubic } from '@fineprune/schedulers';
import { movement } from '@fineprune/scores';

export type StructuredMethod = 'blockMvP' | 'headsNeurons' | 'hybrid' | '2:4';

export const STRUCTURED_METHODS: readonly StructuredMethod[] = ['blockMvP', 'headsNeurons', 'hybrid', '2:4'];

export interface StructuredRecipeOptions {
  method: StructuredMethod;
  /** Target share of remaining weights of the pruned matrices (blocks, neurons); 2:4 keeps 50%. */
  remaining: number;
  /** Share of heads kept by `headsNeurons` (local, per layer). */
  headsRemaining: number;
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
