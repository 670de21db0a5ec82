/**
 * The `cpu` kernel config of {@link SPARSE_MAT_MUL}: plain JavaScript over the sliced-rows layout,
 * one output unit at a time down its lane, accumulating in float64 (as the cpu backend's own matMul
 * does) and rounding each output once to float32.
 */

import type * as tf from '@tensorflow/tfjs-core';
import { LANES } from '../layout/sliced-rows';
import { SPARSE_MAT_MUL, type SparseMatMulArguments, unpackArguments } from './sparse-mat-mul';

/** The parts of the cpu backend (`MathBackendCPU`) the kernel uses. */
interface CpuBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

function sparseMatMulCpu(args: SparseMatMulArguments): tf.TensorInfo {
  const { inputs, attributes, batch, sections } = unpackArguments(args);
  const backend = args.backend as CpuBackendLike;
  const { inputSize, outputSize } = attributes;
  const x = backend.readSync(inputs.x.dataId) as Float32Array;
  const values = backend.readSync(inputs.values.dataId) as Float32Array;
  const offsets = backend.readSync(inputs.offsets.dataId) as Int32Array;
  const structure = backend.readSync(inputs.structure.dataId) as Int32Array;
  const bias = inputs.bias === undefined ? undefined : (backend.readSync(inputs.bias.dataId) as Float32Array);
  const out = new Float32Array(batch * outputSize);
  for (let sorted = 0; sorted < outputSize; sorted += 1) {
    const output = structure[sections.rowOrder + sorted]!;
    const length = structure[sections.rowLengths + sorted]!;
    const first = structure[sections.slotOffsets + Math.floor(sorted / LANES)]! * LANES + (sorted % LANES);
    const end = first + length * LANES;
    const offset = bias === undefined ? 0 : bias[output]!;
    for (let element = 0; element < batch; element += 1) {
      const row = element * inputSize;
      let total = 0;
      for (let entry = first; entry < end; entry += LANES) {
        total += values[entry]! * x[row + (offsets[entry]! >> 2)]!;
      }
      out[element * outputSize + output] = total + offset;
    }
  }
  return backend.makeTensorInfo([batch, outputSize], 'float32', out);
}

/** {@link SPARSE_MAT_MUL} on the `cpu` backend (the pure-JavaScript fallback). */
export const sparseMatMulCpuConfig: tf.KernelConfig = {
  kernelName: SPARSE_MAT_MUL,
  backendName: 'cpu',
  kernelFunc: sparseMatMulCpu as unknown as tf.KernelFunc,
};
