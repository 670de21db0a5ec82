/**
 * The `webgpu` kernel config of {@link SPARSE_MAT_MUL}: the WGSL program of ./wgsl-spmm-program.ts,
 * run by @tensorflow/tfjs-backend-webgpu's own `runWebGPUProgram` (its buffers, pipeline cache and
 * command queue), so the output is an ordinary webgpu tensor.
 */

import type * as tf from '@tensorflow/tfjs-core';
import { SPARSE_MAT_MUL, type SparseMatMulArguments, unpackArguments } from './sparse-mat-mul';
import { batchTile, type SpmmProgram, spmmProgram } from './wgsl-spmm-program';

/** The part of `WebGPUBackend` the kernel uses. */
interface WebGPUBackendLike {
  runWebGPUProgram(
    program: SpmmProgram,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    programUniforms?: Array<{ type: string; data: number[] }>,
  ): tf.TensorInfo;
}

function sparseMatMulWebGPU(args: SparseMatMulArguments): tf.TensorInfo {
  const { inputs, attributes, batch, sections } = unpackArguments(args);
  const backend = args.backend as WebGPUBackendLike;
  const { inputSize, outputSize, groups } = attributes;
  const program = spmmProgram(batch, outputSize, groups, inputs.bias !== undefined);
  const chunks = Math.ceil(batch / batchTile(batch));
  const uniforms = [inputSize, outputSize, groups, batch, chunks, sections.rowOrder, sections.rowLengths].map(
    (value) => ({ type: 'int32', data: [value] }),
  );
  const bound = [inputs.x, inputs.values, inputs.offsets, inputs.structure];
  if (inputs.bias !== undefined) bound.push(inputs.bias);
  return backend.runWebGPUProgram(program, bound, 'float32', uniforms);
}

/** {@link SPARSE_MAT_MUL} on the `webgpu` backend. */
export const sparseMatMulWebGPUConfig: tf.KernelConfig = {
  kernelName: SPARSE_MAT_MUL,
  backendName: 'webgpu',
  kernelFunc: sparseMatMulWebGPU as unknown as tf.KernelFunc,
};
