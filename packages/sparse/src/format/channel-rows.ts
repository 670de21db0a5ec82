/**
 * A weight tensor seen as output channels × positions: the channel axis is the last axis (TF.js:
 * Dense [inputs, outputs], Conv2D [h, w, in, out]) or the first (PyTorch / Hugging Face Linear
 * [out, in]); the positions are the other axes in row-major order. Its kept entries, channel by
 * channel, are {@link CompressedRows} (a row is an output channel), the form the kernels take.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type CompressedRows, compressedRowsFromDense, type DenseValues } from '../layout/compressed-rows';

/**
 * The matrix view of a tensor: `channels` output channels of `positions` entries each.
 *
 * @example
 * ```ts
 * const view: ChannelView = channelView([784, 300], 1); // { channels: 300, positions: 784, channelAxis: 1 }
 * ```
 */
export interface ChannelView {
  channels: number;
  positions: number;
  /** 0 (channels first) or rank − 1 (channels last). */
  channelAxis: number;
}

/** The {@link ChannelView} of a shape of rank ≥ 2 with its channels on axis 0 or rank − 1. */
export function channelView(shape: readonly number[], channelAxis: number): ChannelView {
  const size = shape.reduce((product, dimension) => product * dimension, 1);
  const channels = shape[channelAxis]!;
  return { channels, positions: channels === 0 ? 0 : size / channels, channelAxis };
}

/** Whether the channels are the last axis (the entry of channel c at position k is k·C + c). */
function channelsLast(view: ChannelView, rank: number): boolean {
  return view.channelAxis === rank - 1;
}

/**
 * The kept entries of a row-major tensor by channel: every entry the 0/1 mask keeps (or, without a
 * mask, every nonzero), positions ascending within a channel.
 *
 * @throws FinepruneError `INVALID_ARGUMENT` for a mask entry other than 0 or 1
 */
export function channelRows(
  values: Float32Array,
  shape: readonly number[],
  view: ChannelView,
  mask?: DenseValues,
): CompressedRows {
  const { channels, positions } = view;
  if (channelsLast(view, shape.length)) {
    return compressedRowsFromDense(values, [positions, channels], mask === undefined ? {} : { mask });
  }
  // Channels first: each channel's entries are contiguous; keep them in order.
  const rowPointers = new Int32Array(channels + 1);
  const kept = (index: number): boolean => {
    if (mask === undefined) return values[index] !== 0;
    const bit = mask[index];
    if (bit !== 0 && bit !== 1) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `Mask entry ${index} is ${bit}; masks hold 0 or 1.`,
        fix: 'Binarise the mask first (for example tf.greater(mask, 0.5)).',
        details: { index, value: bit },
      });
    }
    return bit === 1;
  };
  let count = 0;
  for (let index = 0; index < values.length; index += 1) if (kept(index)) count += 1;
  const inputIndices = new Int32Array(count);
  const rowValues = new Float32Array(count);
  let at = 0;
  for (let channel = 0; channel < channels; channel += 1) {
    for (let position = 0; position < positions; position += 1) {
      const index = channel * positions + position;
      if (!kept(index)) continue;
      inputIndices[at] = position;
      rowValues[at] = values[index]!;
      at += 1;
    }
    rowPointers[channel + 1] = at;
  }
  return { inputSize: positions, outputSize: channels, rowPointers, inputIndices, values: rowValues };
}

/** Every entry of the tensor by channel (the dense layout's order): rows holding all positions. */
export function allChannelRows(
  values: Float32Array,
  shape: readonly number[],
  view: ChannelView,
): CompressedRows {
  const { channels, positions } = view;
  const rowPointers = Int32Array.from({ length: channels + 1 }, (_, channel) => channel * positions);
  const inputIndices = new Int32Array(channels * positions);
  const rowValues = new Float32Array(channels * positions);
  const last = channelsLast(view, shape.length);
  for (let channel = 0; channel < channels; channel += 1) {
    for (let position = 0; position < positions; position += 1) {
      const at = channel * positions + position;
      inputIndices[at] = position;
      rowValues[at] = values[last ? position * channels + channel : at]!;
    }
  }
  return { inputSize: positions, outputSize: channels, rowPointers, inputIndices, values: rowValues };
}

/** The row-major tensor that channel rows describe, zeros where nothing is kept. */
export function denseFromChannelRows(
  rows: CompressedRows,
  shape: readonly number[],
  view: ChannelView,
): Float32Array {
  const { channels, positions } = view;
  const dense = new Float32Array(channels * positions);
  const last = channelsLast(view, shape.length);
  for (let channel = 0; channel < channels; channel += 1) {
    for (let entry = rows.rowPointers[channel]!; entry < rows.rowPointers[channel + 1]!; entry += 1) {
      const position = rows.inputIndices[entry]!;
      dense[last ? position * channels + channel : channel * positions + position] = rows.values[entry]!;
    }
  }
  return dense;
}
