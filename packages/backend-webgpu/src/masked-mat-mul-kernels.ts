/**
 * The masked projection's fused kernels for `'webgpu'` (`FUSED_KERNELS.maskedMatMul…` of
 * `@fineprune/tensor`, which `maskedDense` runs when they are registered): the forward pass in one
 * dispatch, the backward pass in three.
 */

import type * as tf from '@tensorflow/tfjs-core';
import { FUSED_KERNELS } from '@fineprune/tensor';
import {
  maskedMatMulBiasGradProgram,
  maskedMatMulInputGradProgram,
  maskedMatMulProgram,
  maskedMatMulWeightGradProgram,
  type ProjectionActivation,
} from './masked-mat-mul-programs';
import { runMultiOutputProgram } from './program-dispatch';

const BACKEND_NAME = 'webgpu';

type Infos = Record<string, tf.TensorInfo | undefined>;

const activationOf = (attrs: tf.NamedAttrMap | undefined) =>
  ((attrs as { activation?: ProjectionActivation } | undefined)?.activation ??
    'linear') as ProjectionActivation;

/** One output as itself, several as an array (how TF.js kernels return them). */
const single = (outputs: tf.TensorInfo[]) => (outputs.length === 1 ? outputs[0]! : outputs);

/** The inputs that are present, in order (the optional bias, scores and saved activation drop out). */
const present = (...infos: Array<tf.TensorInfo | undefined>) =>
  infos.filter((info): info is tf.TensorInfo => info !== undefined);

/** The kernels, for the list of `fused-kernels.ts`. */
export const maskedMatMulKernels: tf.KernelConfig[] = [
  {
    kernelName: FUSED_KERNELS.maskedMatMul,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, weight, mask, bias } = inputs as Infos;
      const [rows, inner] = x!.shape as [number, number];
      const cols = weight!.shape[1]!;
      const program = maskedMatMulProgram(rows, cols, activationOf(attrs), bias !== undefined);
      return single(
        runMultiOutputProgram(backend, program, present(x, weight, mask, bias), [rows, inner, cols, 0]),
      );
    },
  },
  {
    kernelName: FUSED_KERNELS.maskedMatMulInputGrad,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { dy, weight, mask, saved } = inputs as Infos;
      const [rows, units] = dy!.shape as [number, number];
      const features = weight!.shape[0]!;
      const program = maskedMatMulInputGradProgram(rows, features, activationOf(attrs));
      return single(
        runMultiOutputProgram(backend, program, present(dy, weight, mask, saved), [rows, units, features, 0]),
      );
    },
  },
  {
    kernelName: FUSED_KERNELS.maskedMatMulWeightGrad,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, dy, weight, mask, saved } = inputs as Infos;
      const [batch, features] = x!.shape as [number, number];
      const units = dy!.shape[1]!;
      const withScores = (attrs as { withScores?: boolean }).withScores === true;
      const program = maskedMatMulWeightGradProgram(features, units, activationOf(attrs), withScores);
      const bound = present(x, dy, mask, withScores ? weight : undefined, saved);
      return single(runMultiOutputProgram(backend, program, bound, [features, batch, units, 0]));
    },
  },
  {
    kernelName: FUSED_KERNELS.maskedMatMulBiasGrad,
    backendName: BACKEND_NAME,
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { dy, saved } = inputs as Infos;
      const [rows, units] = dy!.shape as [number, number];
      const program = maskedMatMulBiasGradProgram(units, activationOf(attrs));
      return single(runMultiOutputProgram(backend, program, present(dy, saved), [rows, 0, units, 0]));
    },
  },
];
