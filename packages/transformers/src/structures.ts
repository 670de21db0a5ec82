/**
 * The units of a BERT encoder that prune together: attention heads and feed-forward neurons.
 */

import type { Structure } from '@fineprune/core';
import { type EncoderConfig, layerHeads, layerIntermediateSize } from './config';

/**
 * The structures of an encoder, two per layer:
 *
 * - `layer_{i}/attention/heads` (kind `head`, one unit per head): the head's `headSize` output
 *   columns of the query, key and value kernels (role `output`) and its `headSize` rows of the
 *   attention-output kernel (role `input`). A layer that has lost every head has none.
 * - `layer_{i}/ffn/neurons` (kind `neuron`): a column of the intermediate kernel (`output`) and the
 *   row of the feed-forward output kernel that reads it (`input`).
 *
 * The biases are not prunable parameters, so they are not members; `shrinkBertModel` removes the
 * query, key, value and intermediate bias entries of the units it removes.
 *
 * @param config - a validated encoder config (per-layer sizes of a shrunk encoder included)
 * @returns the structures, layer by layer
 *
 * @example
 * ```ts
 * bertStructures(bertBaseUncasedConfig).map((structure) => structure.name).slice(0, 2);
 * // ['layer_0/attention/heads', 'layer_0/ffn/neurons']
 * ```
 */
export function bertStructures(config: EncoderConfig): Structure[] {
  const headSize = config.hiddenSize / config.numHeads;
  const structures: Structure[] = [];
  for (let layer = 0; layer < config.numLayers; layer += 1) {
    const prefix = `layer_${layer}`;
    const heads = layerHeads(config, layer);
    if (heads > 0) {
      structures.push({
        name: `${prefix}/attention/heads`,
        kind: 'head',
        count: heads,
        members: [
          ...['query', 'key', 'value'].map((projection) => ({
            parameter: `${prefix}/attention/${projection}/kernel`,
            axis: 1,
            role: 'output' as const,
            width: headSize,
          })),
          { parameter: `${prefix}/attention/output/kernel`, axis: 0, role: 'input', width: headSize },
        ],
      });
    }
    structures.push({
      name: `${prefix}/ffn/neurons`,
      kind: 'neuron',
      count: layerIntermediateSize(config, layer),
      members: [
        { parameter: `${prefix}/ffn/intermediate/kernel`, axis: 1, role: 'output' },
        { parameter: `${prefix}/ffn/output/kernel`, axis: 0, role: 'input' },
      ],
    });
  }
  return structures;
}
