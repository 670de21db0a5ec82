/**
 * Training kernels for the wasm backend that @tensorflow/tfjs-backend-wasm 4.22 lacks or gets wrong:
 * `UnsortedSegmentSum` (the gradient of `gather`, so of embedding lookups), `Conv2DBackpropFilter`
 * (a convolution's weight gradient), `DepthwiseConv2dNativeBackpropInput` and `...BackpropFilter`
 * (a depthwise convolution's gradients), and `MaxPoolGrad` (present on wasm but wrong); and
 * `Identity`, which the stock wasm kernel implements as a copy: every `tf.clone`, and every tensor
 * that `tf.customGrad` saves for the backward pass, then holds a second copy of its data in the heap
 * (at BERT-base scale that is several copies of the 85M prunable weights per step).
 *
 * Each is a JavaScript kernel registered for `backendName: 'wasm'`: it copies its inputs out of the
 * wasm heap with `backend.readSync`, computes in typed arrays (float64 accumulators, as the cpu
 * backend does) and writes its output back with `backend.makeOutput`. The loops run in the order that
 * reads memory contiguously (channels innermost), so they stay within a small factor of the native
 * kernels at the sizes of the models fineprune trains.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from './errors';

type TensorInfo = tf.TensorInfo;
type DataType = tf.DataType;

/** The parts of the wasm backend (`BackendWasm`) these kernels use. */
interface WasmBackendLike {
  readSync(dataId: TensorInfo['dataId']): tf.backend_util.BackendValues;
  makeOutput(
    shape: number[],
    dtype: DataType,
    memoryOffset?: number,
    values?: tf.backend_util.BackendValues,
  ): TensorInfo;
  /** A view of a tensor's memory in the wasm heap (invalid after the heap grows). */
  typedArrayFromHeap?(info: TensorInfo): tf.backend_util.TypedArray;
  disposeData?(dataId: TensorInfo['dataId']): boolean;
}

interface KernelArguments {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

function numbers(backend: WasmBackendLike, info: TensorInfo): Float32Array | Int32Array {
  const values = backend.readSync(info.dataId);
  if (values instanceof Float32Array || values instanceof Int32Array) return values;
  if (values instanceof Uint8Array) return Int32Array.from(values);
  throw new FinepruneError({
    code: ErrorCodes.INVALID_ARGUMENT,
    message: `A wasm training kernel got a ${info.dtype} tensor; it needs a numeric one.`,
    fix: 'Cast the tensor to float32 before differentiating through it.',
  });
}

/**
 * The tensor's values without a copy: a view into the wasm heap for float32 tensors. Valid only until
 * the next allocation in the heap, so kernels read their inputs through it before allocating output.
 */
function view(backend: WasmBackendLike, info: TensorInfo): Float32Array | Int32Array {
  if (info.dtype === 'float32' && backend.typedArrayFromHeap !== undefined) {
    return backend.typedArrayFromHeap(info) as Float32Array;
  }
  return numbers(backend, info);
}

/** For each output channel of a depthwise convolution, its input channel (channel multiplier `m`). */
function inputChannelOf(outChannels: number, multiplier: number): Int32Array {
  return Int32Array.from({ length: outChannels }, (_, channel) => Math.floor(channel / multiplier));
}

function float32Output(backend: WasmBackendLike, shape: number[], values: Float64Array): TensorInfo {
  return backend.makeOutput(shape, 'float32', undefined, Float32Array.from(values));
}

function requireUnitDilations(kernel: string, dilations: unknown): void {
  const values = typeof dilations === 'number' ? [dilations, dilations] : (dilations as number[] | undefined);
  if (values?.some((value) => value !== 1)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `${kernel} on wasm supports dilations of 1 only, got [${values}].`,
      fix: 'Use dilations of 1, or train this layer on the cpu backend.',
    });
  }
}

/**
 * `UnsortedSegmentSum`: out[s, ...] = Σ_{i: segmentIds[i] = s} x[i, ...]; ids outside
 * [0, numSegments) are dropped, as on cpu. This is the gradient of `gather` (embedding lookups).
 */
function unsortedSegmentSum({ inputs, backend, attrs }: KernelArguments): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const x = inputs.x!;
  const segmentIds = inputs.segmentIds!;
  const numSegments = attrs!.numSegments as number;
  const xValues = view(wasm, x);
  const ids = numbers(wasm, segmentIds);
  const idCount = ids.length;
  const inner = idCount === 0 ? 0 : tf.util.sizeFromShape(x.shape.slice(segmentIds.shape.length));
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const sums = new Float64Array(numSegments * inner);
  for (let index = 0; index < idCount; index += 1) {
    const segment = ids[index]!;
    if (segment < 0 || segment >= numSegments) continue;
    const from = index * inner;
    const to = segment * inner;
    for (let offset = 0; offset < inner; offset += 1) {
      sums[to + offset] = sums[to + offset]! + xValues[from + offset]!;
    }
  }
  if (x.dtype === 'int32') return wasm.makeOutput(outShape, 'int32', undefined, Int32Array.from(sums));
  return float32Output(wasm, outShape, sums);
}

/** Element strides of a 4-D tensor as (batch, row, column, channel), whatever its data format. */
function strides4d(
  shape: readonly number[],
  channelsLast: boolean,
): [batch: number, row: number, column: number, channel: number] {
  if (channelsLast) {
    const [, height, width, channels] = shape as [number, number, number, number];
    return [height * width * channels, width * channels, channels, 1];
  }
  const [, channels, height, width] = shape as [number, number, number, number];
  return [channels * height * width, width, 1, height * width];
}

/**
 * `Conv2DBackpropFilter`: dW[wR, wC, ci, co] = Σ_{b, yR, yC} x[b, yR·sH + wR − padTop,
 * yC·sW + wC − padLeft, ci] · dy[b, yR, yC, co]. NHWC and NCHW; dilations are always 1 here.
 */
function conv2DBackpropFilter({ inputs, backend, attrs }: KernelArguments): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const x = inputs.x!;
  const dy = inputs.dy!;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as {
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    tf.backend_util.convertConv2DDataFormat(dataFormat),
  );
  const channelsLast = info.dataFormat === 'channelsLast';
  const matMul = tf.getKernel(tf.BatchMatMul, 'wasm');
  if (
    channelsLast &&
    x.dtype === 'float32' &&
    dy.dtype === 'float32' &&
    matMul !== undefined &&
    wasm.typedArrayFromHeap !== undefined &&
    wasm.disposeData !== undefined
  ) {
    return conv2DBackpropFilterByMatMul(wasm, x, dy, info, matMul.kernelFunc);
  }
  const xValues = numbers(wasm, x);
  const dyValues = numbers(wasm, dy);
  const [xB, xR, xC, xCh] = strides4d(x.shape, channelsLast);
  const [dyB, dyR, dyC, dyCh] = strides4d(dy.shape, channelsLast);
  const { filterHeight, filterWidth, inChannels, outChannels, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const gradient = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);
  const dyRow = new Float64Array(outChannels);
  for (let b = 0; b < info.batchSize; b += 1) {
    for (let yR = 0; yR < info.outHeight; yR += 1) {
      for (let yC = 0; yC < info.outWidth; yC += 1) {
        const dyOffset = b * dyB + yR * dyR + yC * dyC;
        for (let co = 0; co < outChannels; co += 1) dyRow[co] = dyValues[dyOffset + co * dyCh]!;
        for (let wR = 0; wR < filterHeight; wR += 1) {
          const row = yR * strideHeight + wR - top;
          if (row < 0 || row >= info.inHeight) continue;
          for (let wC = 0; wC < filterWidth; wC += 1) {
            const column = yC * strideWidth + wC - left;
            if (column < 0 || column >= info.inWidth) continue;
            const xOffset = b * xB + row * xR + column * xC;
            const gradientOffset = (wR * filterWidth + wC) * inChannels * outChannels;
            for (let ci = 0; ci < inChannels; ci += 1) {
              const pixel = xValues[xOffset + ci * xCh]!;
              if (pixel === 0) continue;
              const base = gradientOffset + ci * outChannels;
              for (let co = 0; co < outChannels; co += 1) gradient[base + co]! += pixel * dyRow[co]!;
            }
          }
        }
      }
    }
  }
  return float32Output(wasm, [...info.filterShape], gradient);
}

/**
 * The NHWC fast path of `Conv2DBackpropFilter`: dW = colsᵀ · dy as one matMul of the wasm backend
 * (XNNPACK), where colsᵀ [kH·kW·Cin, N·oH·oW] holds, for every output position, the input patch its
 * filter saw (zeros where the patch overlaps the padding), and dy is read as [N·oH·oW, Cout] in place.
 * The transposed patch matrix is written directly, because a matMul with a transposed operand is an
 * order of magnitude slower on wasm than a plain one.
 */
function conv2DBackpropFilterByMatMul(
  wasm: WasmBackendLike,
  x: TensorInfo,
  dy: TensorInfo,
  info: tf.backend_util.Conv2DInfo,
  matMul: tf.KernelFunc,
): TensorInfo {
  const { filterHeight, filterWidth, inChannels, outChannels, inHeight, inWidth, outHeight, outWidth } = info;
  const positions = info.batchSize * outHeight * outWidth;
  const patch = filterHeight * filterWidth * inChannels;
  const columns = wasm.makeOutput([1, patch, positions], 'float32');
  try {
    // Views taken after the allocation, which may have grown (and so moved) the heap.
    const columnValues = wasm.typedArrayFromHeap!(columns);
    const xValues = wasm.typedArrayFromHeap!(x);
    for (let b = 0; b < info.batchSize; b += 1) {
      for (let yR = 0; yR < outHeight; yR += 1) {
        for (let yC = 0; yC < outWidth; yC += 1) {
          const position = (b * outHeight + yR) * outWidth + yC;
          for (let wR = 0; wR < filterHeight; wR += 1) {
            const row = yR * info.strideHeight + wR - info.padInfo.top;
            for (let wC = 0; wC < filterWidth; wC += 1) {
              const column = yC * info.strideWidth + wC - info.padInfo.left;
              let target = (wR * filterWidth + wC) * inChannels * positions + position;
              if (row < 0 || row >= inHeight || column < 0 || column >= inWidth) {
                for (let ci = 0; ci < inChannels; ci += 1, target += positions) columnValues[target] = 0;
              } else {
                const source = ((b * inHeight + row) * inWidth + column) * inChannels;
                for (let ci = 0; ci < inChannels; ci += 1, target += positions) {
                  columnValues[target] = xValues[source + ci]!;
                }
              }
            }
          }
        }
      }
    }
    const product = matMul({
      inputs: { a: columns, b: { dataId: dy.dataId, shape: [1, positions, outChannels], dtype: 'float32' } },
      backend: wasm as unknown as object,
      attrs: { transposeA: false, transposeB: false },
    }) as TensorInfo;
    // [1, kH·kW·Cin, Cout] is the filter's [kH, kW, Cin, Cout] in row-major order.
    return { dataId: product.dataId, shape: [...info.filterShape], dtype: 'float32' };
  } finally {
    wasm.disposeData!(columns.dataId);
  }
}

interface DepthwiseAttributes {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * Visits every (output position, filter tap) pair of a depthwise convolution whose input position
 * lies inside the image, with the flat offsets of dy[b, yR, yC, 0], x[b, r, c, 0] and W[wR, wC, 0]
 * (r = yR·sH + wR − padTop, c = yC·sW + wC − padLeft). Both depthwise gradients are sums over these.
 */
function forEachDepthwiseTap(
  info: tf.backend_util.Conv2DInfo,
  visit: (dyOffset: number, inputOffset: number, filterOffset: number) => void,
): void {
  const { inChannels, outChannels, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth } = info;
  for (let b = 0; b < info.batchSize; b += 1) {
    for (let yR = 0; yR < outHeight; yR += 1) {
      for (let yC = 0; yC < outWidth; yC += 1) {
        const dyOffset = ((b * outHeight + yR) * outWidth + yC) * outChannels;
        for (let wR = 0; wR < filterHeight; wR += 1) {
          const row = yR * info.strideHeight + wR - info.padInfo.top;
          if (row < 0 || row >= inHeight) continue;
          for (let wC = 0; wC < filterWidth; wC += 1) {
            const column = yC * info.strideWidth + wC - info.padInfo.left;
            if (column < 0 || column >= inWidth) continue;
            visit(
              dyOffset,
              ((b * inHeight + row) * inWidth + column) * inChannels,
              (wR * filterWidth + wC) * outChannels,
            );
          }
        }
      }
    }
  }
}

/**
 * `DepthwiseConv2dNativeBackpropInput`: dx[b, r, c, ci] = Σ dy[b, yR, yC, ci·m + k] · W[wR, wC, ci, k]
 * over the outputs (yR, yC) whose window covers (r, c) at (wR, wC). NHWC, dilations 1.
 */
function depthwiseConv2dNativeBackpropInput({ inputs, backend, attrs }: KernelArguments): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const dy = inputs.dy!;
  const filter = inputs.filter!;
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as DepthwiseAttributes & {
    inputShape: [number, number, number, number];
  };
  requireUnitDilations('DepthwiseConv2dNativeBackpropInput', dilations);
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    true,
  );
  const dyValues = view(wasm, dy);
  const filterValues = view(wasm, filter);
  const { inChannels, outChannels, inHeight, inWidth } = info;
  const inputOf = inputChannelOf(outChannels, outChannels / inChannels);
  const gradient = new Float64Array(info.batchSize * inHeight * inWidth * inChannels);
  forEachDepthwiseTap(info, (dyOffset, inputOffset, filterOffset) => {
    // Output channel c = ci·m + k reads input channel ci: one flat loop over c.
    for (let channel = 0; channel < outChannels; channel += 1) {
      const target = inputOffset + inputOf[channel]!;
      gradient[target] =
        gradient[target]! + dyValues[dyOffset + channel]! * filterValues[filterOffset + channel]!;
    }
  });
  return float32Output(wasm, [...info.inShape], gradient);
}

/**
 * `DepthwiseConv2dNativeBackpropFilter`: dW[wR, wC, ci, k] = Σ_{b, yR, yC} x[b, r, c, ci] ·
 * dy[b, yR, yC, ci·m + k] with r = yR·sH + wR − padTop, c = yC·sW + wC − padLeft. NHWC, dilations 1.
 */
function depthwiseConv2dNativeBackpropFilter({ inputs, backend, attrs }: KernelArguments): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const x = inputs.x!;
  const dy = inputs.dy!;
  const { strides, dilations, pad, dimRoundingMode, filterShape } =
    attrs as unknown as DepthwiseAttributes & {
      filterShape: [number, number, number, number];
    };
  requireUnitDilations('DepthwiseConv2dNativeBackpropFilter', dilations);
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    true,
  );
  const xValues = view(wasm, x);
  const dyValues = view(wasm, dy);
  const { inChannels, outChannels, filterHeight, filterWidth } = info;
  const inputOf = inputChannelOf(outChannels, outChannels / inChannels);
  const gradient = new Float64Array(filterHeight * filterWidth * outChannels);
  forEachDepthwiseTap(info, (dyOffset, inputOffset, filterOffset) => {
    for (let channel = 0; channel < outChannels; channel += 1) {
      const target = filterOffset + channel;
      gradient[target] =
        gradient[target]! + xValues[inputOffset + inputOf[channel]!]! * dyValues[dyOffset + channel]!;
    }
  });
  return float32Output(wasm, [...info.filterShape], gradient);
}

/**
 * `MaxPoolGrad`: each output's gradient goes to the first position (row-major within its window) that
 * holds the window's maximum, as on cpu; windows of only NaN or padding pass no gradient. NHWC.
 */
function maxPoolGrad({ inputs, backend, attrs }: KernelArguments): TensorInfo {
  const wasm = backend as WasmBackendLike;
  const dy = inputs.dy!;
  const input = inputs.input!;
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: [number, number] | number;
    strides: [number, number] | number;
    pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const xValues = view(wasm, input);
  const dyValues = view(wasm, dy);
  const { inChannels: channels, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth } = info;
  const gradient = new Float64Array(info.batchSize * inHeight * inWidth * channels);
  for (let b = 0; b < info.batchSize; b += 1) {
    for (let yR = 0; yR < outHeight; yR += 1) {
      const rowStart = yR * info.strideHeight - info.padInfo.top;
      const rowFrom = Math.max(0, rowStart);
      const rowTo = Math.min(inHeight, rowStart + filterHeight);
      for (let yC = 0; yC < outWidth; yC += 1) {
        const columnStart = yC * info.strideWidth - info.padInfo.left;
        const columnFrom = Math.max(0, columnStart);
        const columnTo = Math.min(inWidth, columnStart + filterWidth);
        const dyOffset = ((b * outHeight + yR) * outWidth + yC) * channels;
        for (let channel = 0; channel < channels; channel += 1) {
          let best = Number.NEGATIVE_INFINITY;
          let bestIndex = -1;
          for (let row = rowFrom; row < rowTo; row += 1) {
            for (let column = columnFrom; column < columnTo; column += 1) {
              const index = ((b * inHeight + row) * inWidth + column) * channels + channel;
              const value = xValues[index]!;
              if (value > best) {
                best = value;
                bestIndex = index;
              }
            }
          }
          if (bestIndex >= 0) gradient[bestIndex] = gradient[bestIndex]! + dyValues[dyOffset + channel]!;
        }
      }
    }
  }
  return float32Output(wasm, [...input.shape], gradient);
}

/** The wasm heap's reference counting of a tensor's data (`BackendWasm.incRef`). */
interface ReferenceCounted {
  incRef(dataId: TensorInfo['dataId']): void;
}

/**
 * `Identity` without a copy, as the cpu backend does it: the output shares the input's data, whose
 * reference count goes up by one (the wasm backend frees the data when the last tensor on it is
 * disposed). Safe because no wasm kernel, stock or fineprune's, writes into its inputs: each one
 * writes a new output (`makeOutput`), as `Reshape` already shares data on wasm.
 */
function sharedIdentity({ inputs, backend }: KernelArguments): TensorInfo {
  const x = inputs.x!;
  (backend as ReferenceCounted).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** Marks fineprune's kernel functions, so that a second copy of this module sees them as registered. */
const KERNEL_MARKER = Symbol.for('fineprune.wasmTrainingKernel');

function marked(kernelFunc: (args: KernelArguments) => TensorInfo): tf.KernelFunc {
  Object.defineProperty(kernelFunc, KERNEL_MARKER, { value: true });
  return kernelFunc as unknown as tf.KernelFunc;
}

/** The kernels this module registers for `'wasm'`, by TF.js kernel name. */
const kernels: ReadonlyArray<[string, tf.KernelFunc]> = [
  [tf.UnsortedSegmentSum, marked(unsortedSegmentSum)],
  [tf.Conv2DBackpropFilter, marked(conv2DBackpropFilter)],
  [tf.DepthwiseConv2dNativeBackpropInput, marked(depthwiseConv2dNativeBackpropInput)],
  [tf.DepthwiseConv2dNativeBackpropFilter, marked(depthwiseConv2dNativeBackpropFilter)],
  [tf.MaxPoolGrad, marked(maxPoolGrad)],
  [tf.Identity, marked(sharedIdentity)],
];

/**
 * The TF.js kernel names that {@link registerWasmTrainingKernels} provides for the wasm backend.
 *
 * @example
 * ```ts
 * wasmTrainingKernelNames(); // ['UnsortedSegmentSum', 'Conv2DBackpropFilter', ...]
 * ```
 */
export function wasmTrainingKernelNames(): string[] {
  return kernels.map(([name]) => name);
}

/**
 * Registers fineprune's wasm training kernels with the TF.js kernel registry: `UnsortedSegmentSum`,
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropInput`, `DepthwiseConv2dNativeBackpropFilter`
 * (missing from @tensorflow/tfjs-backend-wasm 4.22), `MaxPoolGrad` (replaced: the stock one returns
 * wrong gradients) and `Identity` (replaced: the stock one copies the data; this one shares it, so
 * `tf.clone` and the tensors `tf.customGrad` saves cost no heap memory). Idempotent; `setBackend('wasm')` calls it, so call it yourself only when you
 * activate wasm with `tf.setBackend` directly.
 *
 * @returns the names of the kernels it (re)registered in this call; empty when all were in place
 *
 * @example
 * ```ts
 * registerWasmTrainingKernels();
 * await tf.setBackend('wasm');
 * const [dEmbeddings] = tf.grads((table) => tf.sum(tf.gather(table, ids)))([table]);
 * ```
 */
export function registerWasmTrainingKernels(): string[] {
  const registered: string[] = [];
  for (const [kernelName, kernelFunc] of kernels) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if ((existing?.kernelFunc as { [KERNEL_MARKER]?: boolean } | undefined)?.[KERNEL_MARKER] === true)
      continue;
    if (existing !== undefined) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
    registered.push(kernelName);
  }
  return registered;
}
