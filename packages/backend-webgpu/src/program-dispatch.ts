/**
 * Dispatches a compute program with several outputs on tfjs-backend-webgpu's device, in its command
 * stream. TF.js's `runWebGPUProgram` binds one writable buffer per program, so a kernel whose
 * epilogue writes two tensors (∂L/∂W and ∂L/∂S of a masked projection, or y and the pre-activation
 * z of a GELU projection) would need a second dispatch that redoes the product. Here the program is
 * WGSL of its own, and this module writes its bindings: 0…n−1 the outputs (read_write), then the
 * inputs (read), then one uniform block of four int32 (rows, inner, cols, unused); it is recorded into the backend's open compute pass exactly as TF.js records
 * its own programs, so ordering, deferred submission and deferred disposal stay TF.js's.
 */

import * as tf from '@tensorflow/tfjs-core';
import { noteDispatch } from './work-counter';

/** A WGSL program without its bindings, and how to launch it. */
export interface MultiOutputProgram {
  /** Cache key; two programs with one key must have the same `code`. */
  key: string;
  /** The output arrays' names (float32), in binding order. */
  outputs: string[];
  /** The input arrays' names, in the order of the tensors passed. Read them as `f32(name[i])`. */
  inputs: string[];
  /** WGSL with entry point `main`, using the arrays above and `uniforms.rows/inner/cols`. */
  code: string;
  /** The outputs' shapes (float32), in binding order. */
  outputShapes: number[][];
  /** Workgroups along x, y, z. */
  dispatch: [number, number, number];
}

/* The parts of tfjs-backend-webgpu's `WebGPUBackend` used here (4.22; not in its typings). */
interface Pipeline {
  getBindGroupLayout(index: number): unknown;
}
interface ComputePass {
  setPipeline(pipeline: Pipeline): void;
  setBindGroup(index: number, group: unknown): void;
  dispatchWorkgroups(x: number, y: number, z: number): void;
}
interface Device {
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
  createComputePipeline(descriptor: {
    compute: { module: unknown; entryPoint: string };
    layout: 'auto';
    label?: string;
  }): Pipeline;
  createBindGroup(descriptor: {
    layout: unknown;
    entries: Array<{ binding: number; resource: unknown }>;
  }): unknown;
}
interface WebGPUBackendInternals {
  device: Device;
  tensorMap: { get(dataId: object): { dtype: tf.DataType } | undefined };
  commandEncoder: { beginComputePass(descriptor: object): ComputePass } | null;
  computePassEncoder: ComputePass | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  makeTensorInfo(shape: number[], dtype: 'float32'): tf.TensorInfo;
  uploadToGPU(dataId: object): void;
  tensorToBinding(info: tf.TensorInfo): unknown;
  makeUniforms(uniforms: Array<{ type: string; data: number[] }>): unknown;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Compiled pipelines per device and key (a device's pipelines die with it). */
const pipelines = new WeakMap<Device, Map<string, Pipeline>>();

/**
 * The program's bindings: outputs, inputs with the element type of their buffers (TF.js keeps a
 * bool or int32 tensor cast to float32 in its int32 buffer, relabelled), then the uniforms.
 */
function bindings(program: MultiOutputProgram, inputTypes: string[]): string {
  const outputs = program.outputs.map(
    (name, index) => `@group(0) @binding(${index}) var<storage, read_write> ${name} : array<f32>;`,
  );
  const inputs = program.inputs.map(
    (name, index) =>
      `@group(0) @binding(${program.outputs.length + index}) var<storage, read> ${name} : array<${inputTypes[index]}>;`,
  );
  const uniforms = `@group(0) @binding(${outputs.length + inputs.length}) var<uniform> uniforms : Uniforms;`;
  return [
    'struct Uniforms { rows : i32, inner : i32, cols : i32, unused : i32 };',
    ...outputs,
    ...inputs,
    uniforms,
  ].join('\n');
}

function pipelineFor(device: Device, program: MultiOutputProgram, inputTypes: string[]): Pipeline {
  let cache = pipelines.get(device);
  if (cache === undefined) {
    cache = new Map();
    pipelines.set(device, cache);
  }
  const key = `${program.key}_${inputTypes.join(',')}`;
  let pipeline = cache.get(key);
  if (pipeline === undefined) {
    const code = `${bindings(program, inputTypes)}\n${program.code}`;
    const module = device.createShaderModule({ code, label: program.key });
    pipeline = device.createComputePipeline({
      compute: { module, entryPoint: 'main' },
      layout: 'auto',
      label: program.key,
    });
    cache.set(key, pipeline);
  }
  return pipeline;
}

/**
 * Runs `program` on the active `'webgpu'` backend with `inputs` bound after its outputs and int32
 * `uniforms` (in the order of the program's uniform struct) bound last; returns the new outputs.
 * Counted by `countWebGPUWork` as one dispatch. Every output must have a non-zero size.
 */
export function runMultiOutputProgram(
  backend: unknown,
  program: MultiOutputProgram,
  inputs: tf.TensorInfo[],
  uniforms: number[],
): tf.TensorInfo[] {
  const gpu = backend as WebGPUBackendInternals;
  const outputs = program.outputShapes.map((shape) => gpu.makeTensorInfo(shape, 'float32'));
  const bound = [...outputs, ...inputs];
  for (const info of bound) gpu.uploadToGPU(info.dataId);
  const inputTypes = inputs.map((info) =>
    gpu.tensorMap.get(info.dataId)!.dtype === 'float32' ? 'f32' : 'i32',
  );
  const pipeline = pipelineFor(gpu.device, program, inputTypes);
  const resources = [
    ...bound.map((info) => gpu.tensorToBinding(info)),
    gpu.makeUniforms(uniforms.map((value) => ({ type: 'int32', data: [value] }))),
  ];
  // Owned by the pending command buffer: TF.js frees their buffers only after it is submitted.
  for (const info of bound) gpu.commandQueueOwnedIds.add(info.dataId);
  const bindGroup = gpu.device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: resources.map((resource, binding) => ({ binding, resource })),
  });
  gpu.ensureCommandEncoderReady();
  if (gpu.computePassEncoder === null || gpu.computePassEncoder === undefined) {
    gpu.computePassEncoder = gpu.commandEncoder!.beginComputePass({});
  }
  gpu.computePassEncoder.setPipeline(pipeline);
  gpu.computePassEncoder.setBindGroup(0, bindGroup);
  gpu.computePassEncoder.dispatchWorkgroups(...program.dispatch);
  gpu.dispatchCountInPass += 1;
  noteDispatch(backend, program.key.split('_')[0]!);
  if ((tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= gpu.dispatchCountInPass) {
    gpu.endComputePassEncoder();
    gpu.submitQueue();
  }
  return outputs;
}
