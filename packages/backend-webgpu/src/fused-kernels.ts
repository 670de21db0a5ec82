/**
 * The fused training kernels of `@fineprune/tensor`'s FUSED_KERNELS, registered for the `'webgpu'`
 * backend with their gradients: one dispatch where the op chain of the attention softmax, LayerNorm
 * or GELU launches five to twenty, and the masked projection act(x·(W ⊙ M) + b) in one dispatch
 * forward and three backward.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  FUSED_ADAM_KERNEL,
  FUSED_KERNELS,
  type FusedAdamScalars,
  registerFusedKernelGradients,
} from '@fineprune/tensor';
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import {
  adamProgram,
  attentionSoftmaxGradProgram,
  attentionSoftmaxProgram,
  geluGradProgram,
  geluProgram,
  layerNormGradProgram,
  layerNormParamGradProgram,
  layerNormProgram,
  rowStatisticsProgram,
} from './fused-programs';
import { maskedMatMulKernels } from './masked-mat-mul-kernels';

const BACKEND_NAME = 'webgpu';

/** The parts of tfjs-backend-webgpu's backend the kernels use. */
interface ProgramRunner {
  runWebGPUProgram(
    program: WebGPUProgram,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    uniforms?: Array<{ type: string; data: number[] }>,
  ): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
}

type Uniforms = Array<{ type: string; data: number[] }>;
const int = (value: number) => ({ type: 'int32', data: [value] });
const float = (value: number) => ({ type: 'float32', data: [value] });

function run(backend: unknown, program: WebGPUProgram, inputs: tf.TensorInfo[], uniforms?: Uniforms) {
  return (backend as ProgramRunner).runWebGPUProgram(program, inputs, 'float32', uniforms);
}

function lastAxis(info: tf.TensorInfo): { rows: number; cols: number } {
  const cols = info.shape[info.shape.length - 1] ?? 1;
  return { rows: cols === 0 ? 0 : tf.util.sizeFromShape(info.shape) / cols, cols };
}

const kernels: tf.KernelConfig[] = [
  {
    kernelName: FUSED_KERNELS.attentionSoftmax,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { scores, mask } = inputs as { scores: tf.TensorInfo; mask?: tf.TensorInfo };
      const { rows, cols } = lastAxis(scores);
      // Rows of scores per entry of the mask's batch axis: [B, heads, L, L] against [B, 1, 1, L].
      const rowsPerBatch = mask ? rows / (mask.shape[0] ?? 1) : rows;
      const program = {
        ...attentionSoftmaxProgram(rows, cols, mask !== undefined),
        outputShape: [...scores.shape],
      };
      const uniforms = [int(rows), int(cols), int(rowsPerBatch), float((attrs as { scale: number }).scale)];
      return run(backend, program, mask ? [scores, mask] : [scores], uniforms);
    },
  },
  {
    kernelName: FUSED_KERNELS.attentionSoftmaxGrad,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { probabilities, dy } = inputs as { probabilities: tf.TensorInfo; dy: tf.TensorInfo };
      const { rows, cols } = lastAxis(probabilities);
      const program = { ...attentionSoftmaxGradProgram(rows, cols), outputShape: [...probabilities.shape] };
      const scale = (attrs as { scale: number }).scale;
      return run(backend, program, [probabilities, dy], [int(rows), int(cols), float(scale)]);
    },
  },
  {
    kernelName: FUSED_KERNELS.layerNorm,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, gamma, beta } = inputs as Record<'x' | 'gamma' | 'beta', tf.TensorInfo>;
      const { rows, cols } = lastAxis(x);
      const epsilon = (attrs as { epsilon: number }).epsilon;
      return run(
        backend,
        layerNormProgram(rows, cols),
        [x, gamma, beta],
        [int(rows), int(cols), float(epsilon)],
      );
    },
  },
  {
    kernelName: FUSED_KERNELS.layerNormGrad,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { dy, x, gamma } = inputs as Record<'dy' | 'x' | 'gamma', tf.TensorInfo>;
      const { rows, cols } = lastAxis(x);
      const epsilon = (attrs as { epsilon: number }).epsilon;
      return run(
        backend,
        layerNormGradProgram(rows, cols),
        [dy, x, gamma],
        [int(rows), int(cols), float(epsilon)],
      );
    },
  },
  {
    kernelName: FUSED_KERNELS.layerNormParamGrad,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { dy, x } = inputs as Record<'dy' | 'x', tf.TensorInfo>;
      const { rows, cols } = lastAxis(x);
      const epsilon = (attrs as { epsilon: number }).epsilon;
      const statistics = run(
        backend,
        rowStatisticsProgram(rows),
        [x],
        [int(rows), int(cols), float(epsilon)],
      );
      const result = run(
        backend,
        layerNormParamGradProgram(cols),
        [dy, x, statistics],
        [int(rows), int(cols)],
      );
      (backend as ProgramRunner).disposeData(statistics.dataId);
      return result;
    },
  },
  {
    kernelName: FUSED_KERNELS.gelu,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, backend }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      return run(backend, { ...geluProgram(tf.util.sizeFromShape(x.shape)), outputShape: [...x.shape] }, [x]);
    },
  },
  {
    kernelName: FUSED_KERNELS.geluGrad,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, backend }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      return run(backend, { ...geluGradProgram(tf.util.sizeFromShape(x.shape)), outputShape: [...x.shape] }, [
        x,
        dy,
      ]);
    },
  },
  {
    // The optimizer step of `adam()` in @fineprune/core: three dispatches (w', m', v') for ~twelve.
    kernelName: FUSED_ADAM_KERNEL,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { variable, m, v, gradient } = inputs as Record<
        'variable' | 'm' | 'v' | 'gradient',
        tf.TensorInfo
      >;
      const scalars = attrs as unknown as FusedAdamScalars;
      const program = {
        ...adamProgram(tf.util.sizeFromShape(variable.shape)),
        outputShape: [...variable.shape],
      };
      const common = [
        float(scalars.beta1),
        float(1 - scalars.beta1),
        float(scalars.beta2),
        float(1 - scalars.beta2),
        float(scalars.stepSize),
        float(scalars.epsilonHat),
        float(scalars.decay),
      ];
      return [0, 1, 2].map((which) =>
        run(backend, program, [variable, m, v, gradient], [...common, int(which)]),
      );
    },
  },
  // The masked projection act(x·(W ⊙ M) + b): one dispatch forward, three backward.
  ...maskedMatMulKernels,
];

/**
 * Registers the fused kernels for the `'webgpu'` backend (and, once, their gradients, which
 * `@fineprune/tensor` defines through the gradient kernels). Model code that
 * asks `fusedKernelAvailable` (the encoder of `@fineprune/transformers`) then runs them in place of
 * its op chains. {@link registerWebGPUBackend} calls it when the backend is set up.
 *
 * @example
 * ```ts
 * registerFusedWebGPUKernels();
 * fusedKernelAvailable(FUSED_KERNELS.gelu); // true while 'webgpu' is the active backend
 * ```
 */
export function registerFusedWebGPUKernels(): void {
  registerFusedKernelGradients();
  for (const kernel of kernels) {
    if (tf.getKernel(kernel.kernelName, BACKEND_NAME) === undefined) tf.registerKernel(kernel);
  }
}

/**
 * Removes the fused kernels from the `'webgpu'` backend, so that model code takes its op chains again
 * (benchmarks compare the two this way in one process). The gradients stay registered; without the
 * forward kernels they are never reached.
 *
 * @example
 * ```ts
 * unregisterFusedWebGPUKernels(); // the encoder runs its plain op chains on webgpu
 * ```
 */
export function unregisterFusedWebGPUKernels(): void {
  for (const kernel of kernels) {
    if (tf.getKernel(kernel.kernelName, BACKEND_NAME) !== undefined)
      tf.unregisterKernel(kernel.kernelName, BACKEND_NAME);
  }
}

/**
 * The names of the kernels {@link registerFusedWebGPUKernels} registers.
 *
 * @example
 * ```ts
 * fusedWebGPUKernelNames.every((name) => tf.getKernel(name, 'webgpu') !== undefined); // after set-up
 * ```
 */
export const fusedWebGPUKernelNames: readonly string[] = kernels.map((kernel) => kernel.kernelName);
