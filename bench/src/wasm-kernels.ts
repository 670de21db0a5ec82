/**
 * Benchmark: the wasm kernels that fineprune replaces with its own WebAssembly SIMD passes, each
 * timed side by side with what it replaces, on the tensors of the 784-300-100-10 benchmark MLP:
 *
 * - TF.js's `Sqrt` against `Mul` on 235,200 floats (why Adam's op chain is slow on wasm);
 * - one Adam step over the MLP's six variables: the twelve-kernel op chain against `fusedAdamStep`;
 * - SMvP's threshold masks of the three weight matrices: `greater` + `cast` + `sum` + read the counts,
 *   against `thresholdMaskTensors`;
 * - Top-v masks of the three matrices at 10% kept: read the scores from the heap, `topCountMasks`,
 *   upload the masks (the JavaScript route), against `topCountMaskTensors` with no hint (sampled
 *   bracket) and with a hint carried between calls (on unchanged scores, the hint's best case);
 * - L0 and SMvP on the three matrices: the hard-concrete noise (JavaScript loop over the seeded
 *   generator + upload, against `fusedUniformNoise`), W ⊙ M with the stochastic gate (the TF.js op
 *   chain, against `fusedHardConcreteMaskedWeight`), the test-time gates with their open counts
 *   (op chain + read-back, against `fusedHardConcreteTestMasks`) and Σ σ(S) (`sum(sigmoid)`,
 *   against `fusedSigmoidSum`), forward passes only.
 * - the encoder's fused kernels (@fineprune/tensor) at the benchmark encoder's sizes (16 × 128 tokens),
 *   each forward and backward against its op chain (`FINEPRUNE_FUSED=0`): GELU on [2048, 512], the
 *   scaled and masked attention softmax on [16, 2, 128, 128], layer norm on [2048, 128], the attention
 *   products [32 × 128 × 64]·[32 × 64 × 128], the bias gradient (column sums) and transpose of
 *   [2048, 512], and an embedding lookup of 2048 rows of a [30522, 128] table.
 *
 * Writes bench/results/wasm-kernels.json. Run: `cd bench && pnpm wasm-kernels [--repeats 300]`.
 */

import {
  batchMatMul,
  columnSums,
  createRandom,
  fusedAdamStep,
  gatherRows,
  gelu,
  layerNorm,
  scaledMaskedSoftmax,
  transposeLastTwo,
  type FusedAdamScalars,
  fusedHardConcreteMaskedWeight,
  fusedHardConcreteTestMasks,
  fusedSigmoidSum,
  fusedUniformNoise,
  type SelectionHint,
  thresholdMaskTensors,
  topCountMaskTensors,
  topCountMasks,
} from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { median, sideBySide, startWasmBenchmark, writeResult, runIfScript } from './harness';

/** The MLP's variables: three kernels and three biases (266,610 floats). */
const SHAPES: number[][] = [[784, 300], [300], [300, 100], [100], [100, 10], [10]];
const MATRICES = SHAPES.filter((shape) => shape.length === 2);

function randomTensor(shape: number[], seed: number, scale: number): tf.Tensor {
  const random = createRandom(seed);
  const size = shape.reduce((product, dimension) => product * dimension, 1);
  return tf.tensor(
    Float32Array.from({ length: size }, () => (random.next() - 0.5) * 2 * scale),
    shape,
    'float32',
  );
}

/** The op chain of `adam()` in @fineprune/core (the route `fusedAdamStep` replaces on wasm). */
function adamOpChain(
  w: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  g: tf.Tensor,
  s: FusedAdamScalars,
): tf.Tensor[] {
  return tf.tidy(() => {
    const first = tf.add(tf.mul(m, s.beta1), tf.mul(g, 1 - s.beta1));
    const second = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(g), 1 - s.beta2));
    const update = tf.div(tf.mul(first, s.stepSize), tf.add(tf.sqrt(second), s.epsilonHat));
    return [tf.sub(w, update), first, second];
  });
}

interface Pair {
  baselineMs: number;
  simdMs: number;
  /** baseline / SIMD: how many times faster fineprune's SIMD pass is. */
  speedup: number;
}

function pair(baseline: number[], simd: number[]): Pair {
  const baselineMs = median(baseline);
  const simdMs = median(simd);
  return {
    baselineMs: round(baselineMs, 4),
    simdMs: round(simdMs, 4),
    speedup: round(baselineMs / simdMs, 2),
  };
}

function round(value: number, digits: number): number {
  return Number(value.toFixed(digits));
}

/** `run` with the fused kernels (`FINEPRUNE_FUSED` unset) or the op chains (`FINEPRUNE_FUSED=0`). */
function routed(fused: boolean, run: () => tf.Tensor | tf.Tensor[]): () => void {
  return () => {
    if (fused) delete process.env.FINEPRUNE_FUSED;
    else process.env.FINEPRUNE_FUSED = '0';
    tf.dispose(run());
    delete process.env.FINEPRUNE_FUSED;
  };
}

/** Each encoder kernel's forward + backward pass (upstream gradient given), op chain against fused. */
async function encoderKernelPairs(repeats: number): Promise<Record<string, Pair>> {
  const hidden = randomTensor([2048, 128], 60, 2);
  const gamma = randomTensor([128], 61, 1);
  const beta = randomTensor([128], 62, 1);
  const activations = randomTensor([2048, 512], 63, 3);
  const scores = randomTensor([16, 2, 128, 128], 64, 8);
  const mask = tf.tidy(() =>
    tf.mul(tf.cast(tf.greater(randomTensor([16, 1, 1, 128], 65, 1), 0.6), 'float32'), -10000),
  );
  const [queries, keys] = [randomTensor([16, 2, 128, 64], 66, 1), randomTensor([16, 2, 64, 128], 67, 1)];
  const upstream = (shape: number[]) => randomTensor(shape, 68, 1);
  const table = randomTensor([30522, 128], 69, 0.02);
  const random = createRandom(70);
  const ids = tf.tensor1d(
    Array.from({ length: 2048 }, () => Math.floor(random.next() * 30522)),
    'int32',
  );
  const [dyHidden, dyActivations, dyScores] = [
    upstream([2048, 128]),
    upstream([2048, 512]),
    upstream([16, 2, 128, 128]),
  ];
  const cases: Record<string, () => tf.Tensor | tf.Tensor[]> = {
    geluForwardBackward: () => tf.grad((x: tf.Tensor) => gelu(x))(activations, dyActivations),
    attentionSoftmaxForwardBackward: () =>
      tf.grad((x: tf.Tensor) => scaledMaskedSoftmax(x, 0.125, mask))(scores, dyScores),
    layerNormForwardBackward: () =>
      tf.grads((x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
        layerNorm(x as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-12),
      )([hidden, gamma, beta], dyHidden),
    attentionProductForwardBackward: () =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) => batchMatMul(a, b))([queries, keys], dyScores),
    biasGradient2048x512: () => columnSums(activations as tf.Tensor2D),
    embeddingGather2048of30522x128: () => gatherRows(table as tf.Tensor2D, ids as tf.Tensor1D),
    transpose2048x512: () => transposeLastTwo(activations),
  };
  const pairs: Record<string, Pair> = {};
  for (const [name, run] of Object.entries(cases)) {
    const [chainTimes, fusedTimes] = await sideBySide(routed(false, run), routed(true, run), repeats);
    pairs[name] = pair(chainTimes, fusedTimes);
  }
  tf.dispose([
    hidden,
    gamma,
    beta,
    activations,
    scores,
    mask,
    queries,
    keys,
    dyHidden,
    dyActivations,
    dyScores,
    table,
    ids,
  ]);
  return pairs;
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const repeats = await startWasmBenchmark(argv, 300);
  const tensorsAtStart = tf.memory().numTensors;

  // 1. Sqrt against Mul on the first two matrices' size (235,200 floats).
  const floats = randomTensor([235_200], 1, 1);
  const positive = tf.abs(floats);
  const [sqrtTimes, mulTimes] = await sideBySide(
    () => tf.sqrt(positive).dispose(),
    () => tf.mul(positive, positive).dispose(),
    repeats,
  );
  const sqrtAgainstMul = {
    elements: 235_200,
    sqrtMs: round(median(sqrtTimes), 4),
    mulMs: round(median(mulTimes), 4),
    sqrtOverMul: round(median(sqrtTimes) / median(mulTimes), 1),
  };
  tf.dispose([floats, positive]);

  // 2. One Adam step over the MLP's variables.
  const scalars: FusedAdamScalars = { beta1: 0.9, beta2: 0.999, stepSize: 1e-3, epsilonHat: 1e-8, decay: 0 };
  const state = SHAPES.map((shape, index) => ({
    w: randomTensor(shape, 10 + index, 0.1),
    m: randomTensor(shape, 20 + index, 1e-3),
    v: tf.tidy(() => tf.square(randomTensor(shape, 30 + index, 1e-3))),
    g: randomTensor(shape, 40 + index, 1e-2),
  }));
  const [chainTimes, fusedTimes] = await sideBySide(
    () => {
      for (const { w, m, v, g } of state) tf.dispose(adamOpChain(w, m, v, g, scalars));
    },
    () => {
      for (const { w, m, v, g } of state) tf.dispose(fusedAdamStep(w, m, v, g, scalars));
    },
    repeats,
  );
  const adamStep = {
    variables: SHAPES.length,
    floats: state.reduce((sum, { w }) => sum + w.size, 0),
    ...pair(chainTimes, fusedTimes),
  };
  tf.dispose(state.flatMap(({ w, m, v, g }) => [w, m, v, g]));

  // 3. Threshold masks (SMvP) of the three matrices, with their counts of ones.
  const scores = MATRICES.map((shape, index) => randomTensor(shape, 50 + index, 1));
  const cut = 0.8;
  const [greaterTimes, simdThresholdTimes] = await sideBySide(
    () => {
      const masks = scores.map((tensor) => tf.tidy(() => tf.cast(tf.greater(tensor, cut), 'float32')));
      const counts = tf.tidy(() => tf.stack(masks.map((mask) => tf.sum(mask))));
      counts.dataSync();
      tf.dispose([...masks, counts]);
    },
    () => tf.dispose(thresholdMaskTensors(scores, cut)!.masks),
    repeats,
  );
  const scoreCount = scores.reduce((sum, tensor) => sum + tensor.size, 0);
  const thresholdMasks = { scores: scoreCount, ...pair(greaterTimes, simdThresholdTimes) };

  // 4. Top-v masks at 10% kept, each matrix on its own (local selection).
  const heap = tf.backend() as unknown as { typedArrayFromHeap(tensor: tf.Tensor): Float32Array };
  const keepOf = (tensor: tf.Tensor) => Math.round(0.1 * tensor.size);
  const hints = scores.map((): SelectionHint => ({}));
  const javascriptRoute = () => {
    // Select every mask before creating any tensor: the heap views are valid until the next allocation.
    const masks = scores.map(
      (tensor) => topCountMasks([heap.typedArrayFromHeap(tensor)], keepOf(tensor))[0]!,
    );
    tf.dispose(masks.map((mask, index) => tf.tensor(mask, scores[index]!.shape, 'float32')));
  };
  const [jsTimes, sampledTimes] = await sideBySide(
    javascriptRoute,
    () => {
      for (const tensor of scores) tf.dispose(topCountMaskTensors([tensor], keepOf(tensor))!);
    },
    repeats,
  );
  const [jsTimesAgain, hintedTimes] = await sideBySide(
    javascriptRoute,
    () => {
      scores.forEach((tensor, index) => {
        tf.dispose(topCountMaskTensors([tensor], keepOf(tensor), hints[index])!);
      });
    },
    repeats,
  );
  const topVMasks = {
    scores: scoreCount,
    kept: 0.1,
    javascriptRouteMs: round(median([...jsTimes, ...jsTimesAgain]), 4),
    tensorRouteSampled: pair(jsTimes, sampledTimes),
    tensorRouteHinted: pair(jsTimesAgain, hintedTimes),
  };
  const gatePasses = await gateBenchmarks(scores, repeats);
  tf.dispose(scores);

  const encoderKernels = await encoderKernelPairs(Math.max(10, Math.round(repeats / 10)));

  const tensorsLeaked = tf.memory().numTensors - tensorsAtStart;
  if (tensorsLeaked !== 0) throw new Error(`${tensorsLeaked} tensors leaked`);
  const result = {
    backend: 'wasm',
    repeats,
    method: 'medians of alternating timed calls (10 untimed rounds first); speedup = baseline / SIMD',
    sqrtAgainstMul,
    adamStep,
    thresholdMasks,
    topVMasks,
    gatePasses,
    encoderKernels,
    tensorsLeaked,
  };
  const file = writeResult('wasm-kernels', result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  return result;
}

const HARD_CONCRETE = { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 };

/** The passes of L0 and soft movement pruning on the three matrices, each against its op chain. */
async function gateBenchmarks(scores: tf.Tensor[], repeats: number) {
  const { beta, limitLeft, limitRight } = HARD_CONCRETE;
  const weights = MATRICES.map((shape, index) => randomTensor(shape, 60 + index, 0.1));
  const random = createRandom(70);
  const javascriptNoise = (shape: number[]) => {
    const values = new Float32Array(shape.reduce((product, dimension) => product * dimension, 1));
    for (let index = 0; index < values.length; index += 1) values[index] = 1e-6 + (1 - 2e-6) * random.next();
    return tf.tensor(values, shape, 'float32');
  };
  const noise = await sideBySide(
    () => tf.dispose(MATRICES.map(javascriptNoise)),
    () => tf.dispose(MATRICES.map((shape) => fusedUniformNoise(shape, random, 1e-6, 1 - 2e-6)!)),
    repeats,
  );
  const u = MATRICES.map(javascriptNoise);
  const gateChain = (weight: tf.Tensor, score: tf.Tensor, noiseTensor: tf.Tensor) =>
    tf.tidy(() => {
      const logit = tf.sub(tf.log(noiseTensor), tf.log1p(tf.neg(noiseTensor)));
      const stretched = tf.sigmoid(tf.div(tf.add(logit, score), beta));
      return tf.mul(
        weight,
        tf.minimum(tf.relu(tf.add(tf.mul(stretched, limitRight - limitLeft), limitLeft)), 1),
      );
    });
  const maskedGate = await sideBySide(
    () => tf.dispose(weights.map((weight, index) => gateChain(weight, scores[index]!, u[index]!))),
    () =>
      tf.dispose(
        weights.map(
          (weight, index) => fusedHardConcreteMaskedWeight(weight, scores[index]!, u[index]!, HARD_CONCRETE)!,
        ),
      ),
    repeats,
  );
  const testMasks = await sideBySide(
    () => {
      const masks = scores.map((score) =>
        tf.tidy(() =>
          tf.minimum(tf.relu(tf.add(tf.mul(tf.sigmoid(score), limitRight - limitLeft), limitLeft)), 1),
        ),
      );
      const counts = tf.tidy(() =>
        tf.stack(masks.map((mask) => tf.sum(tf.cast(tf.greater(mask, 0), 'float32')))),
      );
      counts.dataSync();
      tf.dispose([...masks, counts]);
    },
    () => tf.dispose(fusedHardConcreteTestMasks(scores, HARD_CONCRETE)!.masks),
    repeats,
  );
  const sigmoidSums = await sideBySide(
    () => tf.dispose(scores.map((score) => tf.tidy(() => tf.sum(tf.sigmoid(score))))),
    () => tf.dispose(scores.map((score) => fusedSigmoidSum(score, 0)!)),
    repeats,
  );
  tf.dispose([...weights, ...u]);
  return {
    scores: scores.reduce((sum, tensor) => sum + tensor.size, 0),
    noise: pair(...noise),
    maskedGate: pair(...maskedGate),
    testMasksAndCounts: pair(...testMasks),
    sigmoidSum: pair(...sigmoidSums),
  };
}

runIfScript(import.meta.url, main);
