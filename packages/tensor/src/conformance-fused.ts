/**
 * Conformance cases of the fused training kernels (group `fused-kernels`): each function's value and
 * gradients, which run the op chains on the reference backend and the fused SIMD passes on wasm.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  batchMatMul,
  columnSums,
  createRandom,
  gatherRows,
  gelu,
  geluTanh,
  layerNorm,
  maskedDense,
  scaledMaskedSoftmax,
  transposeLastTwo,
} from '@fineprune/tensor';
import type { ConformanceCase, ConformanceOutputs } from './conformance';
import { gradientsOf, randomTensor, values } from './conformance-support';

/** f's value and the gradients of Σ(f ⊙ upstream) with respect to each input (variables made here). */
async function valueAndGradients(
  f: (...inputs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
  seed: number,
): Promise<ConformanceOutputs> {
  const variables = inputs.map((input) => tf.variable(input));
  const value = f(...variables);
  const upstream = randomTensor(createRandom(seed), value.shape);
  const { loss, gradients } = await gradientsOf(() => tf.sum(tf.mul(f(...variables), upstream)), variables);
  const outputs: ConformanceOutputs = { value: await values(value), loss };
  gradients.forEach((gradient, index) => {
    outputs[`d${index}`] = gradient;
  });
  for (const variable of variables) variable.dispose();
  return outputs;
}

/** The fused-kernel cases; tolerances from the measurements in the fused-*.test.ts files. */
export function fusedKernelCases(): ConformanceCase[] {
  const random = (seed: number, shape: number[], scale = 1) => randomTensor(createRandom(seed), shape, scale);
  return [
    {
      group: 'fused-kernels',
      name: 'gelu (exact) value and gradient',
      run: () => valueAndGradients((x) => gelu(x), [random(61, [64, 36], 3)], 62),
      tolerance: 1e-6,
    },
    {
      group: 'fused-kernels',
      name: 'geluTanh value and gradient',
      run: () => valueAndGradients((x) => geluTanh(x), [random(63, [64, 36], 3)], 64),
      tolerance: 2e-6,
    },
    {
      group: 'fused-kernels',
      name: 'softmax(scores/8 + mask) value and gradient, with padded keys',
      async run() {
        const mask = tf.tensor4d([0, 0, 0, 0, 0, 0, 0, -10000, 0, 0, -10000, -10000], [3, 1, 1, 4]);
        return valueAndGradients(
          (x) => scaledMaskedSoftmax(x, 0.125, mask),
          [random(65, [3, 2, 4, 4], 8)],
          66,
        );
      },
      tolerance: 1e-6,
    },
    {
      group: 'fused-kernels',
      name: 'layerNorm value and gradients (x, γ, β)',
      run: () =>
        valueAndGradients(
          (x, gamma, beta) => layerNorm(x as tf.Tensor2D, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-12),
          [tf.add(random(67, [48, 20], 2), 3), tf.add(random(68, [20], 0.3), 1), random(69, [20], 0.3)],
          70,
        ),
      tolerance: 1e-5,
    },
    {
      group: 'fused-kernels',
      name: 'batchMatMul value and gradients',
      run: () =>
        valueAndGradients(
          (a, b) => batchMatMul(a, b),
          [random(71, [2, 3, 8, 4]), random(72, [2, 3, 4, 12])],
          73,
        ),
      tolerance: 1e-5,
    },
    {
      group: 'fused-kernels',
      name: 'gatherRows value and gradient (repeated ids)',
      async run() {
        const ids = tf.tensor1d([5, 0, 5, 9, 2, 5], 'int32');
        return valueAndGradients((table) => gatherRows(table as tf.Tensor2D, ids), [random(76, [10, 8])], 77);
      },
      tolerance: 1e-6,
    },
    ...(['relu', 'gelu'] as const).map((activation, index) => ({
      group: 'fused-kernels' as const,
      name: `maskedDense ${activation}(x·(W ⊙ M) + b) value and gradients (x, W, b, S), 37×45·45×19`,
      async run() {
        const mask = tf.cast(tf.greater(random(78 + index, [45, 19]), 0), 'float32');
        return valueAndGradients(
          (x, w, b, s) =>
            maskedDense(x as tf.Tensor2D, w as tf.Tensor2D, mask, b as tf.Tensor1D, s, { activation }),
          [
            random(80 + index, [37, 45]),
            random(82 + index, [45, 19], 0.3),
            random(84, [19], 0.5),
            random(86, [45, 19]),
          ],
          88,
        );
      },
      // Sums of 45 products of O(1) values; measured within 1e-6 on webgpu (masked-mat-mul.test.ts).
      tolerance: 1e-5,
    })),
    {
      group: 'fused-kernels',
      name: 'columnSums and transposeLastTwo',
      async run() {
        const x = random(74, [96, 12]);
        return {
          sums: await values(columnSums(x as tf.Tensor2D)),
          transposed: await values(transposeLastTwo(random(75, [2, 8, 12]))),
        };
      },
      tolerance: 1e-5,
    },
  ];
}
