import type * as tfl from '@tensorflow/tfjs-layers';
import type { Structure, StructureMember } from '@fineprune/core';
import { type ChannelSpace, channelSpaces, type SkippedStructure } from './channel-spaces';

type Layer = tfl.layers.Layer;

/** The weight of a layer that holds its channels: `kernel`, or `depthwiseKernel` of a DepthwiseConv2D. */
export function channelKernel(layer: Layer): tfl.LayerVariable | undefined {
  const record = layer as unknown as { kernel?: tfl.LayerVariable; depthwiseKernel?: tfl.LayerVariable };
  return layer.getClassName() === 'DepthwiseConv2D' ? record.depthwiseKernel : record.kernel;
}

/** Where the channels lie in each layer's kernel: a producer's last axis, a reader's input axis, a depthwise kernel's channel axis. */
function memberPlaces(space: ChannelSpace): Array<{ layer: Layer } & Omit<StructureMember, 'parameter'>> {
  const places: Array<{ layer: Layer } & Omit<StructureMember, 'parameter'>> = [];
  for (const layer of space.producers)
    places.push({ layer, axis: layer.getClassName() === 'Dense' ? 1 : 3, role: 'output' });
  for (const layer of space.passes)
    if (layer.getClassName() === 'DepthwiseConv2D') places.push({ layer, axis: 2, role: 'output' });
  for (const { layer, repeats } of space.readers) {
    const dense = layer.getClassName() === 'Dense';
    places.push({ layer, axis: dense ? 0 : 2, role: 'input', ...(repeats > 1 ? { repeats } : {}) });
  }
  return places;
}

/** The name and kind of the structure of a channel space (`fc1/neurons`, `conv1/filters`, `conv1/channels`). */
export function structureName(space: ChannelSpace): { name: string; kind: Structure['kind'] } {
  const first = space.producers[0]!;
  if (space.producers.length > 1) return { name: `${first.name}/channels`, kind: 'channel' };
  return first.getClassName() === 'Dense'
    ? { name: `${first.name}/neurons`, kind: 'neuron' }
    : { name: `${first.name}/filters`, kind: 'filter' };
}

/**
 * The structures of a LayersModel for `PrunableModel.structures()`: one per channel space
 * ({@link channelSpaces}) whose every kernel is a prunable parameter — Dense neurons (own kernel
 * columns, the next Dense rows, `repeats` after Flatten), Conv2D filters (output channels, the
 * next convolution's input channels, depthwise channels between), and the channels an `Add`
 * shares (kind `channel`). The others are listed in `skipped` with the reason.
 *
 * @param parameterName - the prunable parameter of a layer variable, `undefined` when it is not one
 *
 * @example
 * ```ts
 * const { structures, skipped } = layerStructures(model, (variable) => names.get(variable));
 * ```
 */
export function layerStructures(
  model: tfl.LayersModel,
  parameterName: (variable: tfl.LayerVariable) => string | undefined,
): { structures: Structure[]; skipped: SkippedStructure[] } {
  const { spaces, skipped } = channelSpaces(model);
  const structures: Structure[] = [];
  const left = [...skipped];
  for (const space of spaces) {
    const places = memberPlaces(space);
    const named = places.map((place) => {
      const variable = channelKernel(place.layer);
      return variable ? parameterName(variable) : undefined;
    });
    const missing = places.findIndex((_, index) => named[index] === undefined);
    if (missing >= 0) {
      const reason = `the kernel of layer "${places[missing]!.layer.name}" is not a prunable parameter (include / exclude)`;
      for (const producer of space.producers) left.push({ layer: producer.name, reason });
      continue;
    }
    const members = places.map(({ layer: _layer, ...place }, index) => ({
      parameter: named[index]!,
      ...place,
    }));
    structures.push({ ...structureName(space), count: space.count, members });
  }
  return { structures, skipped: left };
}
