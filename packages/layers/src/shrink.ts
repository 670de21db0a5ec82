import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { StructureKind } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { channelSpaces } from './channel-spaces';
import type { LayersPrunableModel } from './from-layers-model';
import { channelKernel, structureName } from './layer-structures';
import { planSpace, type SpacePlan, type WeightValues } from './shrink-plan';
import { maskedWeights, modelFromTopology, modelTopology } from './strip';

type Layer = tfl.layers.Layer;

/**
 * How many units of one structure {@link shrink} kept.
 *
 * @example
 * ```ts
 * const entry: ShrunkStructure = { name: 'conv1/filters', kind: 'filter', count: 32, kept: 8 };
 * ```
 */
export interface ShrunkStructure {
  readonly name: string;
  readonly kind: StructureKind;
  /** Units before. */
  readonly count: number;
  /** Units in the shrunk model. */
  readonly kept: number;
}

/**
 * What {@link shrink} returns: the smaller model and the units it kept per structure.
 *
 * @example
 * ```ts
 * const { model, structures } = await shrink(prunable);
 * ```
 */
export interface ShrinkResult {
  /** A new plain `tf.LayersModel` (not compiled); the caller disposes it. */
  readonly model: tfl.LayersModel;
  readonly structures: readonly ShrunkStructure[];
}

/** How the weights of one layer are cut: its kept output channels, its kept input rows, its bias shift. */
interface LayerCut {
  output?: number[];
  input?: number[];
  shift?: Float32Array;
}

/** The rows a reader keeps: `p · count + u` for every repeat `p` and kept channel `u`. */
function inputRows(kept: readonly number[], count: number, repeats: number): number[] {
  return Array.from({ length: repeats }, (_, repeat) => kept.map((unit) => repeat * count + unit)).flat();
}

function cutsOf(plans: readonly SpacePlan[]): Map<Layer, LayerCut> {
  const cuts = new Map<Layer, LayerCut>();
  const cut = (layer: Layer) => {
    const entry = cuts.get(layer) ?? {};
    cuts.set(layer, entry);
    return entry;
  };
  for (const { space, kept, biasShift } of plans) {
    for (const layer of [...space.producers, ...space.passes]) cut(layer).output = kept;
    for (const { layer, repeats } of space.readers) cut(layer).input = inputRows(kept, space.count, repeats);
    for (const [layer, shift] of biasShift) cut(layer).shift = shift;
  }
  return cuts;
}

/** A weight of a layer, cut: kernels on their input and output axes, every other weight (bias, BN) on its channel axis. */
function cutWeight(layer: Layer, variable: tfl.LayerVariable, value: tf.Tensor, cut: LayerCut): tf.Tensor {
  return tf.tidy(() => {
    const isKernel = variable === channelKernel(layer);
    let result = value;
    if (!isKernel && cut.shift) result = tf.add(result, tf.tensor1d(cut.shift));
    const outputAxis = isKernel ? (layer.getClassName() === 'DepthwiseConv2D' ? 2 : value.rank - 1) : 0;
    if (cut.output && cut.output.length !== value.shape[outputAxis])
      result = tf.gather(result, tf.tensor1d(cut.output, 'int32'), outputAxis);
    if (isKernel && cut.input && layer.getClassName() !== 'DepthwiseConv2D')
      result = tf.gather(result, tf.tensor1d(cut.input, 'int32'), value.rank - 2);
    // A fresh tensor: wasm's gather returns a reshaped 4-D buffer, and its fused convolution then
    // refuses the bias as "rank 4" (it checks the buffer's shape, not the tensor's).
    return tf.tensor(result.dataSync(), result.shape, 'float32');
  });
}

/** The model's topology with each producer's `units` / `filters` set to the channels it keeps. */
function shrunkTopology(model: tfl.LayersModel, plans: readonly SpacePlan[]): unknown {
  const topology = modelTopology(model) as unknown as {
    config: { layers: Array<{ config: Record<string, unknown> }> };
  };
  const sizes = new Map<string, number>();
  for (const { space, kept } of plans)
    for (const producer of space.producers) sizes.set(producer.name, kept.length);
  for (const entry of topology.config.layers) {
    const size = sizes.get(entry.config.name as string);
    if (size === undefined) continue;
    entry.config['units' in entry.config ? 'units' : 'filters'] = size;
  }
  return topology;
}

async function valuesOf(
  tensors: ReadonlyMap<tfl.LayerVariable, tf.Tensor>,
): Promise<Map<tfl.LayerVariable, WeightValues>> {
  const entries = await Promise.all(
    [...tensors].map(
      async ([variable, tensor]) =>
        [variable, { values: (await tensor.data()) as Float32Array, shape: tensor.shape }] as const,
    ),
  );
  return new Map(entries);
}

/**
 * A new, physically smaller dense `tf.LayersModel` from a pruned one: every channel of a structure
 * (`prunable.structures()`: Dense neurons, Conv2D filters, channels an `Add` shares) that no layer
 * reads any more, or that only carries a constant, is removed — from the layer that computes it,
 * the batch normalisation and depthwise layers it passes, and the rows or input channels of the
 * layers that read it. A removed channel that still carries a constant (a neuron with a zero kernel
 * column emits act(b)) is folded into the reader's bias so that the outputs do not change; where
 * the fold would not be exact (a convolution with zero padding reads it) the channel stays.
 * Weights are W ⊙ M, as {@link strip} gives them. Stock TF.js saves, loads and runs the result;
 * the pruned model is left as it was.
 *
 * @param prunable - a model wrapped with {@link fromLayersModel}
 * @returns the shrunk model and how many units each structure kept
 * @throws FinepruneError `DISPOSED` when the wrapper was unwrapped, `SHAPE_MISMATCH` when the
 *   rebuilt model's weights do not line up with the pruned model's
 *
 * @example
 * ```ts
 * const { model, structures } = await shrink(prunable);
 * for (const entry of structures) console.log(`${entry.name}: ${entry.kept}/${entry.count}`);
 * await model.save(fileSystem('./models/shrunk'));
 * model.dispose();
 * ```
 */
export async function shrink(prunable: LayersPrunableModel): Promise<ShrinkResult> {
  prunable.parameters(); // throws DISPOSED after unwrap()
  const source = prunable.model;
  const masked = maskedWeights(prunable);
  try {
    const tensors = new Map(source.weights.map((variable, index) => [variable, masked[index]!.tensor]));
    const values = await valuesOf(tensors);
    const order = new Map(source.layers.map((layer, index) => [layer, index]));
    const plans = channelSpaces(source).spaces.map((space) =>
      planSpace(space, order, (variable) => (variable ? values.get(variable) : undefined)),
    );
    const copy = await modelFromTopology(shrunkTopology(source, plans));
    try {
      if (copy.weights.length !== source.weights.length)
        throw new FinepruneError({
          code: ErrorCodes.SHAPE_MISMATCH,
          message: `The shrunk model has ${copy.weights.length} weights but the pruned model has ${source.weights.length}.`,
          fix: "Check the custom layers' getConfig(): rebuilding from it must create the same weights.",
        });
      const cuts = cutsOf(plans);
      const owners = new Map(
        source.layers.flatMap((layer) => layer.weights.map((variable) => [variable, layer] as const)),
      );
      const cutValues = source.weights.map((variable) => {
        const layer = owners.get(variable)!;
        const tensor = tensors.get(variable)!;
        const cut = cuts.get(layer);
        return cut ? cutWeight(layer, variable, tensor, cut) : tf.clone(tensor);
      });
      try {
        copy.setWeights(cutValues);
      } finally {
        tf.dispose(cutValues);
      }
    } catch (error) {
      copy.dispose();
      throw error;
    }
    const structures = plans.map(({ space, kept }) => ({
      ...structureName(space),
      count: space.count,
      kept: kept.length,
    }));
    return { model: copy, structures };
  } finally {
    tf.dispose(masked.map(({ tensor }) => tensor));
  }
}
