/**
 * The layer chain of a saved TF.js layers topology, for the sparse executor: a `Sequential` model,
 * or a functional model whose layers form one chain (each takes the previous one's output).
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';

/**
 * One layer of a chain: its class and config as saved.
 *
 * @example
 * ```ts
 * const layer: ChainLayer = { className: 'Dense', name: 'dense_Dense1', config: { units: 300, activation: 'relu' } };
 * ```
 */
export interface ChainLayer {
  className: string;
  name: string;
  config: Record<string, unknown>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function notAChain(source: string, reason: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.UNSUPPORTED_MODEL,
    message: `${source}: the sparse executor runs chains of layers (a Sequential model, or a functional one without branches); ${reason}.`,
    fix: 'Load it with compactLayersHandler() and tf.loadLayersModel() instead: stock TF.js runs any topology, with the weights densified.',
    details: { file: source },
  });
}

function layerOf(value: unknown, source: string): ChainLayer {
  if (!isPlainObject(value) || typeof value.class_name !== 'string' || !isPlainObject(value.config))
    throw notAChain(source, 'a layer entry has no class_name and config');
  const name = (value.name ?? value.config.name) as unknown;
  if (typeof name !== 'string') throw notAChain(source, `a ${quoteText(value.class_name)} layer has no name`);
  return { className: value.class_name, name, config: value.config };
}

/** The names of the layers a functional layer's inbound nodes read from. */
function inboundNames(value: Record<string, unknown>): string[] {
  const nodes = value.inbound_nodes;
  if (!Array.isArray(nodes)) return [];
  return nodes.flatMap((node) =>
    Array.isArray(node) ? node.map((input) => (Array.isArray(input) ? String(input[0]) : '')) : [],
  );
}

/**
 * The layers of a saved topology in the order they run, when they form one chain.
 *
 * @throws FinepruneError `UNSUPPORTED_MODEL` for a topology with branches, several inputs or outputs,
 *   or unreadable layer entries
 */
export function layerChain(topology: Record<string, unknown>, source: string): ChainLayer[] {
  const root = isPlainObject(topology.model_config) ? topology.model_config : topology;
  const className = root.class_name;
  const config = root.config;
  if (className === 'Sequential') {
    const layers = Array.isArray(config) ? config : isPlainObject(config) ? config.layers : undefined;
    if (!Array.isArray(layers)) throw notAChain(source, 'the Sequential model lists no layers');
    return layers.map((layer) => layerOf(layer, source));
  }
  if (
    (className === 'Model' || className === 'Functional') &&
    isPlainObject(config) &&
    Array.isArray(config.layers)
  ) {
    const entries = config.layers as unknown[];
    const layers = entries.map((layer) => layerOf(layer, source));
    for (let index = 1; index < layers.length; index += 1) {
      const inbound = inboundNames(entries[index] as Record<string, unknown>);
      if (inbound.length !== 1 || inbound[0] !== layers[index - 1]!.name)
        throw notAChain(
          source,
          `the layer ${quoteText(layers[index]!.name)} does not take exactly the previous layer's output`,
        );
    }
    const outputs = config.output_layers;
    if (
      !Array.isArray(outputs) ||
      outputs.length !== 1 ||
      !Array.isArray(outputs[0]) ||
      outputs[0][0] !== layers.at(-1)?.name
    )
      throw notAChain(source, 'its output is not the last layer');
    return layers;
  }
  throw notAChain(source, `its topology is ${quoteText(className)}`);
}
