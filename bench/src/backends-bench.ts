/**
 * The same training and pruning work on every backend that runs here: cpu, wasm, and webgpu (Dawn;
 * software OpenGL on Mesa llvmpipe on machines without a GPU). Per backend: an MLP training step
 * (784-300-100-10, batch 100, 90%-sparse masked weights, SGD), a small CNN training step (conv,
 * max-pool, depthwise conv, dense; batch 32 of 28×28×1), k-th value selection over 1M scores computed
 * on the backend (with the read-back), and a masked dense layer's forward and backward pass. Also
 * records what setBackend('auto') chose and why. Writes results/backends-<date>.json.
 *
 *   cd bench && npx tsx --conditions=source src/backends-bench.ts [--repeats 10] [--backends cpu,wasm,webgpu]
 */
import { parseArgs } from 'node:util';
import { disposeWebGPU, registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
import {
  type BackendSelection,
  createRandom,
  dense,
  kthLargestOfTensors,
  maskedWeight,
  setBackend,
  topCountMasks,
} from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { median, timeRepeated, writeResult, runIfScript } from './harness';

interface Measurement {
  medianMilliseconds: number;
  minMilliseconds: number;
  repeats: number;
}

function summarise(times: number[]): Measurement {
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    medianMilliseconds: round(median(times)),
    minMilliseconds: round(Math.min(...times)),
    repeats: times.length,
  };
}

function uniform(seed: number, shape: number[], scale: number): tf.Tensor {
  const random = createRandom(seed);
  const values = new Float32Array(shape.reduce((size, length) => size * length, 1));
  for (let index = 0; index < values.length; index += 1) values[index] = (random.next() * 2 - 1) * scale;
  return tf.tensor(values, shape);
}

/** A 0/1 mask keeping the 10% largest |W| (computed once, outside the timed step). */
async function sparseMask(weight: tf.Tensor): Promise<tf.Tensor> {
  const scores = await tf.abs(weight).data();
  const [mask] = topCountMasks([Float32Array.from(scores)], Math.round(weight.size * 0.1));
  return tf.tensor(mask!, weight.shape);
}

function sgd(variables: tf.Variable[], loss: () => tf.Scalar, learningRate: number): Promise<unknown> {
  const { value, grads } = tf.variableGrads(loss, variables);
  tf.tidy(() => {
    for (const variable of variables)
      variable.assign(tf.sub(variable, tf.mul(grads[variable.name]!, learningRate)));
  });
  tf.dispose(Object.values(grads));
  return value.data().finally(() => value.dispose());
}

async function mlpStep(repeats: number): Promise<Measurement> {
  const sizes = [784, 300, 100, 10];
  const kernels: tf.Variable[] = [];
  const biases: tf.Variable[] = [];
  const masks: tf.Tensor[] = [];
  for (let layer = 0; layer < 3; layer += 1) {
    const kernel = tf.variable(uniform(layer + 1, [sizes[layer]!, sizes[layer + 1]!], 0.08));
    kernels.push(kernel);
    biases.push(tf.variable(tf.zeros([sizes[layer + 1]!])));
    masks.push(await sparseMask(kernel));
  }
  const x = uniform(10, [100, 784], 1) as tf.Tensor2D;
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 100 }, (_, index) => index % 10),
      'int32',
    ),
    10,
  );
  const loss = () => {
    let h: tf.Tensor2D = x;
    for (let layer = 0; layer < 3; layer += 1) {
      const weight = maskedWeight(kernels[layer]!, masks[layer]!) as tf.Tensor2D;
      h = dense(h, weight, biases[layer]! as tf.Tensor1D);
      if (layer < 2) h = tf.relu(h);
    }
    return tf.losses.softmaxCrossEntropy(labels, h) as tf.Scalar;
  };
  const times = await timeRepeated(() => sgd([...kernels, ...biases], loss, 0.05), repeats);
  tf.dispose([...kernels, ...biases, ...masks, x, labels]);
  return summarise(times);
}

async function cnnStep(repeats: number): Promise<Measurement> {
  const filter = tf.variable(uniform(21, [3, 3, 1, 8], 0.3));
  const depthwise = tf.variable(uniform(22, [3, 3, 8, 2], 0.3));
  const kernel = tf.variable(uniform(23, [7 * 7 * 16, 10], 0.05));
  const bias = tf.variable(tf.zeros([10]));
  const x = uniform(24, [32, 28, 28, 1], 1) as tf.Tensor4D;
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 32 }, (_, index) => index % 10),
      'int32',
    ),
    10,
  );
  const loss = () => {
    const h1 = tf.maxPool(tf.relu(tf.conv2d(x, filter as tf.Tensor4D, 1, 'same')), 2, 2, 'valid');
    const h2 = tf.maxPool(
      tf.relu(tf.depthwiseConv2d(h1, depthwise as tf.Tensor4D, 1, 'same')),
      2,
      2,
      'valid',
    );
    const flat = tf.reshape(h2, [32, 7 * 7 * 16]) as tf.Tensor2D;
    return tf.losses.softmaxCrossEntropy(
      labels,
      dense(flat, kernel as tf.Tensor2D, bias as tf.Tensor1D),
    ) as tf.Scalar;
  };
  const times = await timeRepeated(() => sgd([filter, depthwise, kernel, bias], loss, 0.05), repeats);
  tf.dispose([filter, depthwise, kernel, bias, x, labels]);
  return summarise(times);
}

async function kthSelection(repeats: number): Promise<Measurement> {
  const weight = uniform(31, [1000, 1000], 1);
  const times = await timeRepeated(async () => {
    // Scores computed on the backend (|W|), read back, and the 10% threshold selected.
    const scores = tf.abs(weight);
    await kthLargestOfTensors([scores], 100_000);
    scores.dispose();
  }, repeats);
  weight.dispose();
  return summarise(times);
}

async function maskedDense(repeats: number): Promise<{ forward: Measurement; backward: Measurement }> {
  const x = uniform(41, [100, 784], 1) as tf.Tensor2D;
  const weight = tf.variable(uniform(42, [784, 300], 0.08));
  const scores = tf.variable(tf.abs(weight));
  const mask = await sparseMask(weight);
  const forward = await timeRepeated(async () => {
    const y = dense(x, maskedWeight(weight, mask) as tf.Tensor2D);
    await y.data();
    y.dispose();
  }, repeats);
  const backward = await timeRepeated(async () => {
    // Gradients to the weight and (straight-through) to the scores.
    const { value, grads } = tf.variableGrads(
      () => tf.sum(dense(x, maskedWeight(weight, mask, scores) as tf.Tensor2D)) as tf.Scalar,
      [weight, scores],
    );
    await Promise.all(Object.values(grads).map((gradient) => gradient.data()));
    tf.dispose([value, ...Object.values(grads)]);
  }, repeats);
  tf.dispose([x, weight, scores, mask]);
  return { forward: summarise(forward), backward: summarise(backward) };
}

/**
 * The gradients that @fineprune/tensor adds to wasm as JavaScript kernels, at the small CNN's sizes,
 * each timed alone with its read-back.
 */
async function trainingKernels(repeats: number): Promise<Record<string, Measurement>> {
  const x = uniform(51, [32, 28, 28, 8], 1) as tf.Tensor4D;
  const dy = uniform(52, [32, 28, 28, 8], 1) as tf.Tensor4D;
  const depthwiseDy = uniform(53, [32, 28, 28, 16], 1) as tf.Tensor4D;
  const depthwiseFilter = uniform(54, [3, 3, 8, 2], 1) as tf.Tensor4D;
  const pooledDy = uniform(55, [32, 14, 14, 8], 1) as tf.Tensor4D;
  const pooled = tf.maxPool(x, 2, 2, 'valid');
  const table = uniform(56, [1000, 64], 1);
  const ids = tf.tensor1d(
    Array.from({ length: 4096 }, (_, index) => (index * 37) % 1000),
    'int32',
  );
  const rows = uniform(57, [4096, 64], 1);
  const kernels: Record<string, () => tf.Tensor> = {
    'Conv2DBackpropFilter 32×28×28×8 → 3×3×8×8': () =>
      tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
        strides: 1,
        pad: 'same',
        dataFormat: 'NHWC',
        filterShape: [3, 3, 8, 8],
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    'DepthwiseConv2dNativeBackpropInput 32×28×28×16 → 32×28×28×8': () =>
      tf
        .engine()
        .runKernel('DepthwiseConv2dNativeBackpropInput', { dy: depthwiseDy, filter: depthwiseFilter }, {
          strides: 1,
          dilations: 1,
          pad: 'same',
          inputShape: [32, 28, 28, 8],
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
    'DepthwiseConv2dNativeBackpropFilter → 3×3×8×2': () =>
      tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy: depthwiseDy }, {
        strides: 1,
        dilations: 1,
        pad: 'same',
        filterShape: [3, 3, 8, 2],
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    'MaxPoolGrad 2×2/2 on 32×28×28×8': () =>
      tf.engine().runKernel('MaxPoolGrad', { dy: pooledDy, input: x, output: pooled }, {
        filterSize: 2,
        strides: 2,
        pad: 'valid',
      } as unknown as tf.NamedAttrMap) as tf.Tensor,
    'UnsortedSegmentSum 4096×64 rows → 1000 (embedding gradient)': () =>
      tf.unsortedSegmentSum(rows, ids, table.shape[0]!),
  };
  const results: Record<string, Measurement> = {};
  for (const [name, run] of Object.entries(kernels)) {
    const times = await timeRepeated(async () => {
      const output = run();
      await output.data();
      output.dispose();
    }, repeats);
    results[name] = summarise(times);
  }
  tf.dispose([x, dy, depthwiseDy, depthwiseFilter, pooledDy, pooled, table, ids, rows]);
  return results;
}

export async function main(argv: string[] = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      repeats: { type: 'string', default: '10' },
      backends: { type: 'string', default: 'cpu,wasm,webgpu' },
    },
  });
  const repeats = Number(values.repeats);
  const backends = values.backends!.split(',');
  registerWebGPUBackend();
  const results: Record<string, unknown> = {};
  for (const backend of backends) {
    let selection: BackendSelection;
    try {
      selection = await setBackend(backend);
    } catch (error) {
      results[backend] = { error: error instanceof Error ? error.message : String(error) };
      console.log(`${backend}: unavailable`);
      continue;
    }
    const entry: Record<string, unknown> = { selection: selection.explanation };
    if (backend === 'webgpu') entry.adapter = webgpuSelection()?.adapter;
    // The cpu backend is 20–50× slower: fewer repeats keep the run short.
    const count = backend === 'cpu' ? Math.max(3, Math.ceil(repeats / 3)) : repeats;
    entry.mlpTrainingStep = await mlpStep(count);
    console.log(backend, 'mlp step', entry.mlpTrainingStep);
    entry.cnnTrainingStep = await cnnStep(count);
    console.log(backend, 'cnn step', entry.cnnTrainingStep);
    entry.kthSelection1M = await kthSelection(count);
    console.log(backend, 'kth selection', entry.kthSelection1M);
    const masked = await maskedDense(count);
    entry.maskedDenseForward = masked.forward;
    entry.maskedDenseBackward = masked.backward;
    console.log(backend, 'masked dense', masked);
    // wasm only: these are the kernels fineprune adds there. (On cpu, TF.js's own UnsortedSegmentSum
    // runs one masked sum per segment, so at these sizes it takes minutes.)
    if (backend === 'wasm') {
      entry.trainingKernels = await trainingKernels(count);
      console.log(backend, 'training kernels', entry.trainingKernels);
    }
    results[backend] = entry;
  }
  const auto = await setBackend('auto');
  const file = writeResult(`backends-${new Date().toISOString().slice(0, 10)}`, {
    description:
      'Median (and min) milliseconds per operation. mlpTrainingStep: 784-300-100-10, batch 100, 90%-sparse masked weights, ' +
      'SGD. cnnTrainingStep: conv 3×3×1→8, max-pool, depthwise 3×3 ×2, max-pool, dense, batch 32 of 28×28×1, SGD. ' +
      'kthSelection1M: |W| on the backend for 1M weights, read back, 10% threshold by radix select. maskedDense: ' +
      '[100,784]·(W⊙M)[784,300] forward with read-back; backward = gradients to W and to the scores. trainingKernels ' +
      '(wasm only): each gradient kernel @fineprune/tensor adds to wasm, alone, with read-back. webgpu runs on ' +
      'the adapter named in results.webgpu.adapter (Dawn: Vulkan on a GPU, else OpenGL on Mesa llvmpipe).',
    tfjs: tf.version_core,
    results,
    auto: { backend: auto.backend, explanation: auto.explanation, attempts: auto.attempts },
  });
  await disposeWebGPU();
  console.log(`wrote ${file}`);
}

runIfScript(import.meta.url, main);
