import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ChannelSpace } from './channel-spaces';
import { channelKernel } from './layer-structures';

type Layer = tfl.layers.Layer;

/** The parts of stock layers the plan reads; public in JavaScript, not all in the typings. */
interface LayerFields {
  inboundNodes: Array<{ inboundLayers: Layer[] }>;
  bias?: tfl.LayerVariable | null;
  activation?: { apply(x: tf.Tensor): tf.Tensor } | null;
  padding?: string;
  kernelSize?: number[];
  epsilon?: number;
  gamma?: tfl.LayerVariable | null;
  beta?: tfl.LayerVariable | null;
  movingMean?: tfl.LayerVariable;
  movingVariance?: tfl.LayerVariable;
}

/** The masked value of a layer variable, as a flat array with its shape. */
export interface WeightValues {
  readonly values: Float32Array;
  readonly shape: readonly number[];
}

/** What a channel space becomes: the channels kept, and what each reader's bias gains from the removed ones. */
export interface SpacePlan {
  readonly space: ChannelSpace;
  /** Kept channel indices, ascending. */
  readonly kept: number[];
  /** Per reader layer, the amount to add to each of its output biases (full length, before its own cut). */
  readonly biasShift: Map<Layer, Float32Array>;
}

function fields(layer: Layer): LayerFields {
  return layer as unknown as LayerFields;
}

/**
 * Sums over a kernel laid out `[…, channels (× repeats), out]`: `result[u][o]` is the sum of
 * `transform(w)` over every entry of channel `u` (every repeat, every spatial position) and output `o`.
 */
function channelSums(
  weight: WeightValues,
  count: number,
  transform: (value: number) => number,
): Float64Array[] {
  const out = weight.shape.at(-1)!;
  const sums = Array.from({ length: count }, () => new Float64Array(out));
  const { values } = weight;
  for (let index = 0; index < values.length; index += 1) {
    const lead = Math.floor(index / out);
    sums[lead % count]![index % out]! += transform(values[index]!);
  }
  return sums;
}

/** True for each output unit whose column (last axis) is all zero. */
function zeroColumns(weight: WeightValues): boolean[] {
  const out = weight.shape.at(-1)!;
  const zero = new Array<boolean>(out).fill(true);
  weight.values.forEach((value, index) => {
    if (value !== 0) zero[index % out] = false;
  });
  return zero;
}

/** `activation(values)` of a layer, on a vector. */
function activate(layer: Layer, values: Float64Array): Float64Array {
  const activation = fields(layer).activation;
  if (!activation) return values;
  const output = tf.tidy(() => activation.apply(tf.tensor1d(Float32Array.from(values))));
  const result = Float64Array.from(output.dataSync());
  output.dispose();
  return result;
}

/** True when a convolution adds up all of its kernel at every output position (no zero padding reaches it). */
function sumsWholeKernel(layer: Layer): boolean {
  const { padding, kernelSize } = fields(layer);
  return padding === 'valid' || (kernelSize ?? []).every((size) => size === 1);
}

type Constants = Array<number | undefined>;

class SpacePlanner {
  /** The constant each channel holds at the output of each layer of the space (undefined: not constant). */
  private readonly constants = new Map<Layer, Constants>();

  constructor(
    private readonly space: ChannelSpace,
    private readonly weightOf: (variable: tfl.LayerVariable | null | undefined) => WeightValues | undefined,
  ) {}

  private biasOf(layer: Layer): Float64Array {
    const bias = this.weightOf(fields(layer).bias);
    return bias ? Float64Array.from(bias.values) : new Float64Array(this.space.count);
  }

  private input(layer: Layer): Constants {
    return this.constants.get(fields(layer).inboundNodes[0]!.inboundLayers[0]!) ?? [];
  }

  /** A producer's channel is constant, act(b), where its whole kernel column is zero. */
  private produced(layer: Layer): Constants {
    const zero = zeroColumns(this.weightOf(channelKernel(layer))!);
    const values = activate(layer, this.biasOf(layer));
    return zero.map((isZero, unit) => (isZero ? values[unit] : undefined));
  }

  private depthwise(layer: Layer, input: Constants): Constants {
    const kernel = this.weightOf(channelKernel(layer))!;
    const sums = channelSums(kernel, this.space.count, (value) => value);
    const zero = channelSums(kernel, this.space.count, Math.abs).map((row) => row[0] === 0);
    const whole = sumsWholeKernel(layer);
    const pre = this.biasOf(layer).map((bias, unit) => {
      const value = input[unit];
      if (zero[unit]) return bias;
      if (value === 0 || (value !== undefined && whole)) return value * sums[unit]![0]! + bias;
      return Number.NaN;
    });
    const values = activate(layer, pre);
    return Array.from(values, (value) => (Number.isNaN(value) ? undefined : value));
  }

  private normalised(layer: Layer, input: Constants): Constants {
    const { epsilon = 1e-3, gamma, beta, movingMean, movingVariance } = fields(layer);
    const [scale, shift] = [this.weightOf(gamma), this.weightOf(beta)];
    const [mean, variance] = [this.weightOf(movingMean)!, this.weightOf(movingVariance)!];
    // Inference-mode batch normalisation: γ (x − μ) / √(σ² + ε) + β.
    return input.map((value, unit) =>
      value === undefined
        ? undefined
        : ((scale?.values[unit] ?? 1) * (value - mean.values[unit]!)) /
            Math.sqrt(variance.values[unit]! + epsilon) +
          (shift?.values[unit] ?? 0),
    );
  }

  private pointwise(layer: Layer, input: Constants): Constants {
    const output = tf.tidy(
      () =>
        layer.apply(
          tf.tensor2d(
            Float32Array.from(input, (value) => value ?? 0),
            [1, input.length],
          ),
        ) as tf.Tensor,
    );
    const values = output.dataSync();
    output.dispose();
    return input.map((value, unit) => (value === undefined ? undefined : values[unit]));
  }

  private passed(layer: Layer): Constants {
    const className = layer.getClassName();
    if (className === 'Add') {
      const inputs = fields(layer).inboundNodes[0]!.inboundLayers.map(
        (inbound) => this.constants.get(inbound) ?? [],
      );
      return Array.from({ length: this.space.count }, (_, unit) =>
        inputs.every((input) => input[unit] !== undefined)
          ? inputs.reduce((total, input) => total + input[unit]!, 0)
          : undefined,
      );
    }
    const input = this.input(layer);
    if (className === 'DepthwiseConv2D') return this.depthwise(layer, input);
    if (className === 'BatchNormalization') return this.normalised(layer, input);
    if (['Activation', 'ReLU', 'LeakyReLU', 'ELU', 'ThresholdedReLU'].includes(className))
      return this.pointwise(layer, input);
    return input; // Dropout (identity at inference), pooling and Flatten keep a constant channel constant.
  }

  /**
   * Decides each channel: removed when every reader either reads none of it (its input slice is
   * zero) or receives a constant it can fold into its bias exactly.
   */
  plan(order: ReadonlyMap<Layer, number>): SpacePlan {
    const layers = [...this.space.producers, ...this.space.passes].sort(
      (a, b) => order.get(a)! - order.get(b)!,
    );
    for (const layer of layers)
      this.constants.set(
        layer,
        this.space.producers.includes(layer) ? this.produced(layer) : this.passed(layer),
      );
    const removable = new Array<boolean>(this.space.count).fill(true);
    const contributions = this.space.readers.map(({ layer }) => {
      const kernel = this.weightOf(channelKernel(layer))!;
      const reads = channelSums(kernel, this.space.count, Math.abs).map((row) =>
        row.some((value) => value !== 0),
      );
      const sums = channelSums(kernel, this.space.count, (value) => value);
      const input = this.input(layer);
      const canFold =
        (layer.getClassName() === 'Dense' || sumsWholeKernel(layer)) && fields(layer).bias != null;
      for (let unit = 0; unit < this.space.count; unit += 1) {
        const value = input[unit];
        const folds = value === 0 || (value !== undefined && canFold);
        if (reads[unit] && !folds) removable[unit] = false;
      }
      return { layer, input, sums };
    });
    if (removable.every(Boolean)) removable[0] = false; // a layer keeps at least one unit
    const biasShift = new Map<Layer, Float32Array>();
    for (const { layer, input, sums } of contributions) {
      const shift = new Float64Array(sums[0]?.length ?? 0);
      removable.forEach((removed, unit) => {
        const value = input[unit];
        if (!removed || value === undefined || value === 0) return;
        sums[unit]!.forEach((sum, output) => {
          shift[output]! += value * sum; // a constant channel c adds c · Σ W[·, u, o] to output o
        });
      });
      const previous = biasShift.get(layer);
      biasShift.set(
        layer,
        Float32Array.from(shift, (value, output) => value + (previous?.[output] ?? 0)),
      );
    }
    const kept = removable.flatMap((removed, unit) => (removed ? [] : [unit]));
    return { space: this.space, kept, biasShift };
  }
}

/**
 * Decides which channels of a space can be removed from a model with masked weights, and how each
 * reader's bias absorbs the removed channels that still carry a constant: a neuron whose kernel
 * column is all zero emits act(b) (through batch normalisation, activations, pooling, depthwise
 * convolutions), which the next Dense layer takes as c · Σ W[u, ·] in its bias (a convolution
 * only when no zero padding reaches its kernel: `valid` padding or a 1×1 kernel). A channel is
 * removed when every reader either reads none of it or can fold it; otherwise it stays.
 *
 * @example
 * ```ts
 * const plan = planSpace(space, order, (variable) => values.get(variable));
 * console.log(`${plan.kept.length}/${space.count} channels kept`);
 * ```
 */
export function planSpace(
  space: ChannelSpace,
  order: ReadonlyMap<Layer, number>,
  weightOf: (variable: tfl.LayerVariable | null | undefined) => WeightValues | undefined,
): SpacePlan {
  return new SpacePlanner(space, weightOf).plan(order);
}
