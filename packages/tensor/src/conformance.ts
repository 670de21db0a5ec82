/**
 * The backend conformance suite: every primitive of this package, the wasm training kernels, small
 * training steps, and (when their factories are passed in) the pruning plugins' forward and backward
 * passes, each run on a backend under test and compared with the same computation on a reference
 * backend (cpu by default).
 *
 * It imports no plugin package: plugins come in as factories (`{ topV, magnitude }`), so the suite
 * lives in the tensor core and any package's tests can run it.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  createRandom,
  dense,
  hardConcreteGateTensor,
  hardConcreteMaskedWeightTensor,
  hardConcreteTestMaskTensors,
  sigmoidSumTensor,
  uniformNoiseTensor,
  kthLargestOfTensors,
  maskedWeight,
  type RandomSource,
  readFloat32,
  setBackend,
  topCountMasks,
} from '@fineprune/tensor';
import { fusedKernelCases } from './conformance-fused';
import { gradientsOf, randomTensor, values } from './conformance-support';

/** Groups of conformance cases, to run a subset. */
export type ConformanceGroup =
  | 'select'
  | 'masked-weight'
  | 'dense'
  | 'wasm-kernels'
  | 'fused-kernels'
  | 'training'
  | 'plugins';

/** The outputs of one case: named arrays (or single numbers) to compare. */
export type ConformanceOutputs = Record<string, ArrayLike<number> | number>;

/**
 * One conformance case: a computation run on the active backend whose outputs are compared across
 * backends.
 *
 * @example
 * ```ts
 * const square: ConformanceCase = {
 *   group: 'dense', name: 'square',
 *   run: async () => ({ y: await tf.square(tf.tensor1d([1, 2])).data() }),
 * };
 * ```
 */
export interface ConformanceCase {
  /** The group the case belongs to. */
  group: ConformanceGroup;
  /** A short description, unique within the suite. */
  name: string;
  /** Computes the outputs on the active backend; tensors it leaves are disposed by the runner. */
  run(): Promise<ConformanceOutputs>;
  /** A tolerance for this case, overriding the suite's. */
  tolerance?: number;
  /**
   * Backends known to disagree with the reference on this case, with the reason (a bug or a different
   * convention in that backend). On those, {@link runConformance} expects the disagreement, so a fix
   * upstream makes the test fail and the entry can go.
   */
  knownDifferences?: Partial<Record<string, string>>;
}

/** A prunable parameter as the plugin factories receive it (structurally a `PrunableParameter`). */
export interface ConformanceParameter {
  readonly name: string;
  readonly group: string;
  readonly kind: string;
  readonly shape: readonly number[];
  readonly size: number;
  readonly weight: tf.Variable;
  readonly mask: tf.Variable;
  effectiveWeight(): tf.Tensor;
  setWeightTransform(transform: ((parameter: ConformanceParameter) => tf.Tensor) | null): void;
}

/** The part of a mask function the suite calls (a `MaskFunction` of @fineprune/core fits). */
export interface ConformanceMaskFunction {
  compute(
    inputs: ReadonlyArray<{ parameter: ConformanceParameter; scores: tf.Tensor }>,
    target: number,
    context: any,
  ): tf.Tensor[] | Promise<tf.Tensor[]>;
  transform?(
    input: { parameter: ConformanceParameter; scores: tf.Variable | undefined; training: boolean },
    context: any,
  ): tf.Tensor;
}

/** The part of a score strategy the suite calls (a `ScoreStrategy` of @fineprune/core fits). */
export interface ConformanceScoreStrategy {
  compute(
    input: { parameter: ConformanceParameter; scores: tf.Variable | undefined },
    context: any,
  ): tf.Tensor | Promise<tf.Tensor>;
}

/**
 * Plugin factories to check. Pass the real ones from the plugin packages; cases of a plugin that is
 * not given are left out.
 *
 * @example
 * ```ts
 * import { topV } from '@fineprune/masks';
 * import { magnitude } from '@fineprune/scores';
 * const plugins: ConformancePlugins = { topV, magnitude };
 * ```
 */
export interface ConformancePlugins {
  /** The Top-v mask factory (`topV` of @fineprune/masks). */
  topV?: (options: { scope: 'local' | 'global' }) => ConformanceMaskFunction;
  /** The magnitude score factory (`magnitude` of @fineprune/scores). */
  magnitude?: () => ConformanceScoreStrategy;
}

/** The test functions of Vitest, Jest or Mocha + an assertion library. */
export interface ConformanceTestApi {
  describe: (name: string, body: () => void) => void;
  it: (name: string, body: () => Promise<void>, timeout?: number) => void;
  expect: (value: unknown) => { toEqual(expected: unknown): void };
}

/**
 * What {@link runConformance} needs.
 *
 * @example
 * ```ts
 * const options: RunConformanceOptions = { backend: 'wasm', describe, it, expect };
 * ```
 */
export interface RunConformanceOptions extends ConformanceTestApi {
  /** The backend under test, as given to `setBackend`. */
  backend: string;
  /** The backend whose results count as right. Default `'cpu'`. */
  reference?: string;
  /** Largest allowed |actual − expected| / max(1, |expected|). Default 1e-5. */
  tolerance?: number;
  /** Plugin factories whose forward and backward passes to check. */
  plugins?: ConformancePlugins;
  /** Only these groups (default: all). */
  groups?: readonly ConformanceGroup[];
  /** Per-test timeout in milliseconds, passed to `it`. Default 120 000. */
  timeout?: number;
}

/** The first disagreement between two sets of outputs, or `undefined` when they agree. */
export interface ConformanceMismatch {
  output: string;
  index: number;
  expected: number;
  actual: number;
  difference: number;
}

/** Distinct, well-separated values in a random order: selections are exact on every backend. */
function distinctScores(random: RandomSource, count: number): Float32Array {
  const order = random.permutation(count);
  const values = new Float32Array(count);
  for (let index = 0; index < count; index += 1) values[index] = (order[index]! - count / 2) / 8;
  return values;
}

function parameterOf(name: string, weight: tf.Tensor, mask?: tf.Tensor): ConformanceParameter {
  const weightVariable = tf.variable(weight, true, `${name}/weight/${variableCounter++}`);
  const maskVariable = tf.variable(mask ?? tf.onesLike(weight), false, `${name}/mask/${variableCounter++}`);
  let transform: ((parameter: ConformanceParameter) => tf.Tensor) | null = null;
  const parameter: ConformanceParameter = {
    name,
    group: name,
    kind: 'dense',
    shape: weight.shape,
    size: weight.size,
    weight: weightVariable,
    mask: maskVariable,
    effectiveWeight: () => (transform === null ? tf.mul(weightVariable, maskVariable) : transform(parameter)),
    setWeightTransform(next) {
      transform = next;
    },
  };
  return parameter;
}

let variableCounter = 0;

const context = { step: 0, model: undefined, random: createRandom(7) };

function disposeParameters(...parameters: ConformanceParameter[]): void {
  for (const parameter of parameters) {
    parameter.weight.dispose();
    parameter.mask.dispose();
  }
}

function primitiveCases(): ConformanceCase[] {
  return [
    {
      group: 'select',
      name: 'kthLargestOfTensors on scores computed on the backend',
      async run() {
        const random = createRandom(11);
        const a = tf.mul(tf.abs(tf.tensor(distinctScores(random, 300), [20, 15])), 2);
        const b = tf.neg(tf.tensor(distinctScores(random, 77)));
        const ranks = [1, 17, 188, 377];
        const thresholds = [];
        for (const k of ranks) thresholds.push(await kthLargestOfTensors([a, b], k));
        return { thresholds };
      },
    },
    {
      group: 'select',
      name: 'topCountMasks of tensors read from the backend (global)',
      async run() {
        const random = createRandom(12);
        const a = tf.abs(tf.tensor(distinctScores(random, 64), [8, 8]));
        const b = tf.mul(tf.tensor(distinctScores(random, 24)), 0.5);
        const [maskA, maskB] = topCountMasks([await readFloat32(a), await readFloat32(b)], 35);
        return { maskA: maskA!, maskB: maskB! };
      },
    },
    {
      group: 'masked-weight',
      name: 'maskedWeight forward and straight-through backward',
      async run() {
        const random = createRandom(21);
        const weight = tf.variable(randomTensor(random, [6, 5]));
        const scores = tf.variable(randomTensor(random, [6, 5]));
        const mask = tf.tensor(
          Float32Array.from(distinctScores(random, 30), (v) => +(v > 0)),
          [6, 5],
        );
        const x = randomTensor(random, [4, 6]) as tf.Tensor2D;
        const loss = () => tf.sum(tf.square(tf.matMul(x, maskedWeight(weight, mask, scores) as tf.Tensor2D)));
        const forward = await values(maskedWeight(weight, mask, scores));
        const { loss: value, gradients } = await gradientsOf(loss, [weight, scores]);
        const withoutScores = await gradientsOf(
          () => tf.sum(tf.tanh(tf.matMul(x, maskedWeight(weight, mask) as tf.Tensor2D))),
          [weight],
        );
        weight.dispose();
        scores.dispose();
        return {
          forward,
          loss: value,
          dWeight: gradients[0]!,
          dScores: gradients[1]!,
          dWeightWithoutScores: withoutScores.gradients[0]!,
        };
      },
    },
    {
      group: 'dense',
      name: 'dense forward and backward, with and without bias',
      async run() {
        const random = createRandom(31);
        const x = tf.variable(randomTensor(random, [5, 7]));
        const kernel = tf.variable(randomTensor(random, [7, 3], 0.5));
        const bias = tf.variable(randomTensor(random, [3]));
        const target = randomTensor(random, [5, 3]);
        const forward = await values(dense(x as tf.Tensor2D, kernel as tf.Tensor2D, bias as tf.Tensor1D));
        const withBias = await gradientsOf(
          () =>
            tf.sum(
              tf.square(
                tf.sub(tf.tanh(dense(x as tf.Tensor2D, kernel as tf.Tensor2D, bias as tf.Tensor1D)), target),
              ),
            ),
          [x, kernel, bias],
        );
        const withoutBias = await gradientsOf(
          () => tf.sum(tf.sigmoid(dense(x as tf.Tensor2D, kernel as tf.Tensor2D))),
          [x, kernel],
        );
        for (const variable of [x, kernel, bias]) variable.dispose();
        return {
          forward,
          loss: withBias.loss,
          dx: withBias.gradients[0]!,
          dKernel: withBias.gradients[1]!,
          dBias: withBias.gradients[2]!,
          dxWithoutBias: withoutBias.gradients[0]!,
          dKernelWithoutBias: withoutBias.gradients[1]!,
        };
      },
    },
  ];
}

function kernelCases(): ConformanceCase[] {
  const conv = (x: tf.Tensor, filter: tf.Tensor, stride: number, pad: 'same' | 'valid') =>
    tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, stride, pad);
  return [
    {
      group: 'wasm-kernels',
      name: 'UnsortedSegmentSum (float32, repeated ids)',
      async run() {
        const random = createRandom(41);
        const x = randomTensor(random, [7, 3]);
        // In-range ids only: tfjs-backend-webgpu 4.22 adds ids >= numSegments into a real segment
        // (cpu and the wasm kernel drop them; wasm-kernels.test.ts checks that).
        const ids = tf.tensor1d([2, 0, 2, 3, 1, 1, 0], 'int32');
        return { sums: await values(tf.unsortedSegmentSum(x, ids, 4)) };
      },
    },
    {
      group: 'wasm-kernels',
      name: 'UnsortedSegmentSum (int32)',
      knownDifferences: {
        webgpu: 'tfjs-backend-webgpu 4.22 returns float bit patterns read as int32 for int32 inputs',
      },
      async run() {
        const integers = tf.unsortedSegmentSum(
          tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32'),
          [1, 1, 0],
          3,
        );
        return { integers: await values(integers) };
      },
    },
    {
      group: 'wasm-kernels',
      name: 'gather gradient (embedding lookup)',
      async run() {
        const random = createRandom(42);
        const table = tf.variable(randomTensor(random, [10, 4]));
        const ids = tf.tensor2d([1, 3, 3, 9, 0, 1], [2, 3], 'int32');
        const weights = randomTensor(random, [2, 3, 4]);
        const { gradients } = await gradientsOf(
          () => tf.sum(tf.mul(tf.gather(table, ids), weights)),
          [table],
        );
        const axis1 = await gradientsOf(
          () => tf.sum(tf.square(tf.gather(table, tf.tensor1d([3, 0, 3], 'int32'), 1))),
          [table],
        );
        table.dispose();
        return { dTable: gradients[0]!, dTableAxis1: axis1.gradients[0]! };
      },
    },
    {
      group: 'wasm-kernels',
      name: 'Conv2D filter and input gradients (stride 1 valid, stride 2 same)',
      async run() {
        const random = createRandom(43);
        const x = tf.variable(randomTensor(random, [2, 7, 6, 3]));
        const filter = tf.variable(randomTensor(random, [3, 3, 3, 4], 0.5));
        const outputs: ConformanceOutputs = {};
        for (const [stride, pad] of [
          [1, 'valid'],
          [2, 'same'],
        ] as const) {
          const { loss, gradients } = await gradientsOf(
            () => tf.sum(tf.square(conv(x, filter, stride, pad))),
            [x, filter],
          );
          outputs[`loss-${stride}-${pad}`] = loss;
          outputs[`dx-${stride}-${pad}`] = gradients[0]!;
          outputs[`dFilter-${stride}-${pad}`] = gradients[1]!;
        }
        x.dispose();
        filter.dispose();
        return outputs;
      },
    },
    {
      group: 'wasm-kernels',
      name: 'depthwise Conv2D input and filter gradients (multiplier 2)',
      async run() {
        const random = createRandom(44);
        const x = tf.variable(randomTensor(random, [2, 6, 5, 3]));
        const filter = tf.variable(randomTensor(random, [3, 3, 3, 2], 0.5));
        const outputs: ConformanceOutputs = {};
        for (const [stride, pad] of [
          [1, 'same'],
          [2, 'valid'],
        ] as const) {
          const { loss, gradients } = await gradientsOf(
            () => tf.sum(tf.square(tf.depthwiseConv2d(x as tf.Tensor4D, filter as tf.Tensor4D, stride, pad))),
            [x, filter],
          );
          outputs[`loss-${stride}-${pad}`] = loss;
          outputs[`dx-${stride}-${pad}`] = gradients[0]!;
          outputs[`dFilter-${stride}-${pad}`] = gradients[1]!;
        }
        x.dispose();
        filter.dispose();
        return outputs;
      },
    },
    {
      group: 'wasm-kernels',
      name: 'MaxPool gradient (2×2/2 valid, 3×3/1 same, 3×3/2 same)',
      async run() {
        const random = createRandom(45);
        const x = tf.variable(tf.tensor(distinctScores(random, 2 * 7 * 6 * 3), [2, 7, 6, 3]));
        const outputs: ConformanceOutputs = {};
        for (const [size, stride, pad] of [
          [2, 2, 'valid'],
          [3, 1, 'same'],
          [3, 2, 'same'],
        ] as const) {
          const weights = randomTensor(random, tf.maxPool(x as tf.Tensor4D, size, stride, pad).shape);
          const { gradients } = await gradientsOf(
            () => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, size, stride, pad), weights)),
            [x],
          );
          outputs[`dx-${size}-${stride}-${pad}`] = gradients[0]!;
        }
        x.dispose();
        return outputs;
      },
    },
    {
      group: 'wasm-kernels',
      name: 'MaxPool gradient with tied maxima (all-zero windows after a ReLU)',
      knownDifferences: {
        webgpu:
          'tfjs-backend-webgpu 4.22 sends a tied maximum’s gradient to the last tied input, cpu to the first',
      },
      async run() {
        const random = createRandom(46);
        // Two thirds of the inputs are 0 (as after a ReLU): many windows hold only zeros, so their
        // maximum is tied; the gradient goes to the first zero, as on cpu.
        const values = Float32Array.from(distinctScores(random, 2 * 7 * 6 * 3), (v) => Math.max(0, v - 5));
        const x = tf.variable(tf.tensor(values, [2, 7, 6, 3]));
        const outputs: ConformanceOutputs = {};
        for (const [size, stride, pad] of [
          [2, 2, 'valid'],
          [3, 1, 'same'],
        ] as const) {
          const weights = randomTensor(random, tf.maxPool(x as tf.Tensor4D, size, stride, pad).shape);
          const { gradients } = await gradientsOf(
            () => tf.sum(tf.mul(tf.maxPool(x as tf.Tensor4D, size, stride, pad), weights)),
            [x],
          );
          outputs[`dx-${size}-${stride}-${pad}`] = gradients[0]!;
        }
        x.dispose();
        return outputs;
      },
    },
  ];
}

async function sgdSteps(
  variables: tf.Variable[],
  loss: () => tf.Scalar,
  steps: number,
  learningRate: number,
): Promise<ConformanceOutputs> {
  const losses: number[] = [];
  for (let step = 0; step < steps; step += 1) {
    const { value, grads } = tf.variableGrads(loss, variables);
    losses.push((await value.data())[0]!);
    tf.tidy(() => {
      for (const variable of variables)
        variable.assign(tf.sub(variable, tf.mul(grads[variable.name]!, learningRate)));
    });
    tf.dispose([value, ...Object.values(grads)]);
  }
  const outputs: ConformanceOutputs = { losses };
  for (const [index, variable] of variables.entries()) outputs[`parameter-${index}`] = await values(variable);
  tf.dispose(variables);
  return outputs;
}

function trainingCases(): ConformanceCase[] {
  return [
    {
      group: 'training',
      name: 'an embedding model trains (3 SGD steps)',
      async run() {
        const random = createRandom(51);
        const table = tf.variable(randomTensor(random, [20, 8], 0.3));
        const kernel = tf.variable(randomTensor(random, [8, 3], 0.3));
        const bias = tf.variable(tf.zeros([3]));
        const ids = tf.tensor2d(
          Int32Array.from({ length: 6 * 5 }, () => random.nextUint32() % 20),
          [6, 5],
          'int32',
        );
        const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1, 0, 2], 'int32'), 3);
        const loss = () => {
          const pooled = tf.mean(tf.gather(table, ids), 1) as tf.Tensor2D; // [batch, 8]
          return tf.losses.softmaxCrossEntropy(
            labels,
            dense(pooled, kernel as tf.Tensor2D, bias as tf.Tensor1D),
          );
        };
        return sgdSteps([table, kernel, bias], loss as () => tf.Scalar, 3, 0.5);
      },
    },
    {
      group: 'training',
      name: 'a small CNN trains (conv, depthwise conv, max-pool, dense; 3 SGD steps)',
      async run() {
        const random = createRandom(52);
        const filter = tf.variable(randomTensor(random, [3, 3, 2, 4], 0.3));
        const depthwise = tf.variable(randomTensor(random, [3, 3, 4, 2], 0.3));
        const kernel = tf.variable(randomTensor(random, [4 * 4 * 8, 5], 0.1));
        const bias = tf.variable(tf.zeros([5]));
        const x = randomTensor(random, [4, 8, 8, 2]) as tf.Tensor4D;
        const labels = tf.oneHot(tf.tensor1d([0, 4, 2, 1], 'int32'), 5);
        const loss = () => {
          const h1 = tf.relu(tf.conv2d(x, filter as tf.Tensor4D, 1, 'same'));
          const h2 = tf.relu(tf.depthwiseConv2d(h1, depthwise as tf.Tensor4D, 1, 'same'));
          const pooled = tf.maxPool(h2, 2, 2, 'valid');
          const flat = tf.reshape(pooled, [4, 4 * 4 * 8]) as tf.Tensor2D;
          return tf.losses.softmaxCrossEntropy(
            labels,
            dense(flat, kernel as tf.Tensor2D, bias as tf.Tensor1D),
          );
        };
        return sgdSteps([filter, depthwise, kernel, bias], loss as () => tf.Scalar, 3, 0.2);
      },
    },
  ];
}

function pluginCases(plugins: ConformancePlugins): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  const { magnitude, topV } = plugins;
  if (magnitude !== undefined) {
    cases.push({
      group: 'plugins',
      name: 'magnitude scores: forward and backward',
      async run() {
        const random = createRandom(61);
        const parameter = parameterOf('magnitude', randomTensor(random, [6, 4]));
        const strategy = magnitude();
        const forward = await values(await strategy.compute({ parameter, scores: undefined }, context));
        const weights = randomTensor(random, [6, 4]);
        // The backward pass of the score computation: d/dW Σ R ⊙ |W| = R ⊙ sign(W).
        const { value, grads } = tf.variableGrads(
          () =>
            tf.sum(tf.mul(strategy.compute({ parameter, scores: undefined }, context) as tf.Tensor, weights)),
          [parameter.weight],
        );
        const backward = await values(grads[parameter.weight.name]!);
        const loss = (await value.data())[0]!;
        disposeParameters(parameter);
        return { forward, backward, loss };
      },
    });
  }
  if (topV !== undefined) {
    for (const scope of ['local', 'global'] as const) {
      cases.push({
        group: 'plugins',
        name: `topV (${scope}): masks forward and straight-through backward`,
        async run() {
          const random = createRandom(scope === 'local' ? 62 : 63);
          const first = parameterOf('first', randomTensor(random, [8, 6]));
          const second = parameterOf('second', randomTensor(random, [5, 4]));
          const mask = topV({ scope });
          // Scores computed on the backend, distinct, so that the selection is exact everywhere.
          const firstScores = tf.variable(tf.abs(tf.tensor(distinctScores(random, 48), [8, 6])));
          const secondScores = tf.variable(tf.mul(tf.tensor(distinctScores(random, 20), [5, 4]), 0.25));
          const masks = await mask.compute(
            [
              { parameter: first, scores: firstScores },
              { parameter: second, scores: secondScores },
            ],
            0.6,
            context,
          );
          const outputs: ConformanceOutputs = {
            firstMask: await values(masks[0]!),
            secondMask: await values(masks[1]!),
          };
          first.mask.assign(masks[0]!);
          second.mask.assign(masks[1]!);
          const x = randomTensor(random, [3, 8]) as tf.Tensor2D;
          const forwardWeight = (parameter: ConformanceParameter, scores: tf.Variable) =>
            mask.transform !== undefined
              ? mask.transform({ parameter, scores, training: true }, context)
              : maskedWeight(parameter.weight, parameter.mask, scores);
          const { loss, gradients } = await gradientsOf(() => {
            const hidden = tf.tanh(tf.matMul(x, forwardWeight(first, firstScores) as tf.Tensor2D));
            const reduced = tf.matMul(
              tf.slice(hidden, [0, 0], [3, 5]),
              forwardWeight(second, secondScores) as tf.Tensor2D,
            );
            return tf.sum(tf.square(reduced));
          }, [first.weight, firstScores, second.weight, secondScores]);
          outputs.loss = loss;
          outputs.dFirstWeight = gradients[0]!;
          outputs.dFirstScores = gradients[1]!;
          outputs.dSecondWeight = gradients[2]!;
          outputs.dSecondScores = gradients[3]!;
          disposeParameters(first, second);
          tf.dispose([firstScores, secondScores]);
          return outputs;
        },
      });
    }
  }
  return cases;
}

/** Hard-concrete parameters of Movement Pruning (b = 2/3, l = −0.1, r = 1.1). */
const HARD_CONCRETE = { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 };

/** The fused SIMD passes of L0 and soft movement pruning (fused on wasm, op chains elsewhere). */
function gateCases(): ConformanceCase[] {
  return [
    {
      group: 'wasm-kernels',
      name: 'hard-concrete noise, gate, W ⊙ M and their Eq. (3) gradients',
      async run() {
        const random = createRandom(43);
        const scores = tf.variable(
          randomTensor(random, [17, 59], 3),
          true,
          `gate/scores/${variableCounter++}`,
        );
        const weight = tf.variable(randomTensor(random, [17, 59]), true, `gate/weight/${variableCounter++}`);
        const upstream = randomTensor(random, [17, 59]);
        const u = uniformNoiseTensor([17, 59], random, 1e-6, 1 - 2e-6);
        const gate = await gradientsOf(
          () => tf.sum(tf.mul(hardConcreteGateTensor(scores, u, HARD_CONCRETE), upstream)),
          [scores],
        );
        const masked = await gradientsOf(
          () => tf.sum(tf.mul(hardConcreteMaskedWeightTensor(weight, scores, u, HARD_CONCRETE), upstream)),
          [weight, scores],
        );
        const outputs = {
          u: await values(u),
          gateLoss: gate.loss,
          dScores: gate.gradients[0]!,
          maskedLoss: masked.loss,
          dWeightMasked: masked.gradients[0]!,
          dScoresMasked: masked.gradients[1]!,
          nextDraw: random.next(),
        };
        tf.dispose([scores, weight]);
        return outputs;
      },
    },
    {
      group: 'wasm-kernels',
      name: 'hard-concrete test-time gates and their open counts',
      async run() {
        const random = createRandom(44);
        const tensors = [randomTensor(random, [31, 7], 4), randomTensor(random, [1001], 4)];
        const { masks, counts } = await hardConcreteTestMaskTensors(tensors, HARD_CONCRETE);
        return { first: await values(masks[0]!), second: await values(masks[1]!), counts };
      },
    },
    {
      group: 'wasm-kernels',
      name: 'Σ σ(S − c) and its gradient (soft movement penalty, expected L0)',
      async run() {
        const random = createRandom(45);
        const scores = tf.variable(
          randomTensor(random, [1003], 4),
          true,
          `sigmoid/scores/${variableCounter++}`,
        );
        const shift = HARD_CONCRETE.beta * Math.log(-HARD_CONCRETE.limitLeft / HARD_CONCRETE.limitRight);
        const penalty = await gradientsOf(() => tf.mul(sigmoidSumTensor(scores, 0), 1e-2), [scores]);
        const expectedL0 = await gradientsOf(() => sigmoidSumTensor(scores, shift), [scores]);
        scores.dispose();
        return {
          penalty: penalty.loss,
          dPenalty: penalty.gradients[0]!,
          expectedL0: expectedL0.loss,
          dExpectedL0: expectedL0.gradients[0]!,
        };
      },
    },
  ];
}

/**
 * Every conformance case, as data: run each `case.run()` on two backends and compare the outputs with
 * {@link compareOutputs}. Plugin cases are included for the factories given.
 *
 * @param plugins - plugin factories to check (none by default)
 * @returns the cases, in a stable order
 *
 * @example
 * ```ts
 * for (const testCase of conformanceCases({ topV, magnitude })) console.log(testCase.group, testCase.name);
 * ```
 */
export function conformanceCases(plugins: ConformancePlugins = {}): ConformanceCase[] {
  return [
    ...primitiveCases(),
    ...kernelCases(),
    ...gateCases(),
    ...fusedKernelCases(),
    ...trainingCases(),
    ...pluginCases(plugins),
  ];
}

/**
 * Compares two sets of outputs element by element: |actual − expected| ≤ tolerance · max(1, |expected|).
 *
 * @param expected - the reference backend's outputs
 * @param actual - the tested backend's outputs
 * @param tolerance - the allowed scaled difference
 * @returns the first disagreement (or a missing output / length mismatch), or `undefined`
 *
 * @example
 * ```ts
 * compareOutputs({ y: [1, 2] }, { y: [1, 2.0000001] }, 1e-5); // undefined
 * ```
 */
export function compareOutputs(
  expected: ConformanceOutputs,
  actual: ConformanceOutputs,
  tolerance: number,
): ConformanceMismatch | undefined {
  for (const [output, reference] of Object.entries(expected)) {
    const expectedValues = typeof reference === 'number' ? [reference] : reference;
    const candidate = actual[output];
    const actualValues = typeof candidate === 'number' ? [candidate] : candidate;
    if (actualValues === undefined || actualValues.length !== expectedValues.length) {
      return {
        output,
        index: -1,
        expected: expectedValues.length,
        actual: actualValues?.length ?? -1,
        difference: Number.POSITIVE_INFINITY,
      };
    }
    for (let index = 0; index < expectedValues.length; index += 1) {
      const want = expectedValues[index]!;
      const got = actualValues[index]!;
      const difference = Math.abs(got - want);
      if (!(difference <= tolerance * Math.max(1, Math.abs(want)))) {
        return { output, index, expected: want, actual: got, difference };
      }
    }
  }
  return undefined;
}

/**
 * Runs one case on the active backend, disposing every tensor it leaves behind.
 *
 * @param testCase - the case
 * @returns its outputs, copied out of the backend
 *
 * @example
 * ```ts
 * await setBackend('wasm');
 * const outputs = await runCase(conformanceCases()[0]!);
 * ```
 */
export async function runCase(testCase: ConformanceCase): Promise<ConformanceOutputs> {
  tf.engine().startScope();
  try {
    const outputs = await testCase.run();
    const copied: ConformanceOutputs = {};
    for (const [name, value] of Object.entries(outputs)) {
      copied[name] = typeof value === 'number' ? value : Float64Array.from(value);
    }
    return copied;
  } finally {
    tf.engine().endScope();
  }
}

/**
 * Registers the conformance suite with a test framework: one test per case, each running the case on
 * the reference backend and on `backend` and expecting no mismatch.
 *
 * @param options - the backend under test, the test functions, optional plugins, groups and tolerance
 *
 * @example
 * ```ts
 * import { describe, expect, it } from 'vitest';
 * import { runConformance } from '@fineprune/tensor/conformance';
 * import { topV } from '@fineprune/masks';
 * import { magnitude } from '@fineprune/scores';
 *
 * runConformance({ backend: 'wasm', describe, it, expect, plugins: { topV, magnitude } });
 * ```
 */
export function runConformance(options: RunConformanceOptions): void {
  const reference = options.reference ?? 'cpu';
  const tolerance = options.tolerance ?? 1e-5;
  const groups = options.groups === undefined ? undefined : new Set(options.groups);
  const cases = conformanceCases(options.plugins).filter(
    (testCase) => groups === undefined || groups.has(testCase.group),
  );
  options.describe(`conformance of '${options.backend}' with '${reference}'`, () => {
    for (const testCase of cases) {
      const knownDifference = testCase.knownDifferences?.[options.backend];
      const title = `${testCase.group}: ${testCase.name}`;
      options.it(
        knownDifference === undefined
          ? title
          : `${title} [known difference on ${options.backend}: ${knownDifference}]`,
        async () => {
          await setBackend(reference);
          const expected = await runCase(testCase);
          await setBackend(options.backend);
          const actual = await runCase(testCase);
          const mismatch = compareOutputs(expected, actual, testCase.tolerance ?? tolerance);
          if (knownDifference === undefined) options.expect(mismatch).toEqual(undefined);
          else options.expect(mismatch === undefined).toEqual(false);
        },
        options.timeout ?? 120_000,
      );
    }
  });
}
