import './register-gradients';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import {
  fusedHardConcreteGate,
  fusedHardConcreteMaskedWeight,
  fusedHardConcreteTestMasks,
  fusedSigmoidSum,
  fusedUniformNoise,
} from './fused-gates';
import { hardConcreteTestMaskTensor } from './gates';
import { createRandom } from './random';

const EPSILON = 1e-6;
const SPAN = 1 - 2 * EPSILON;
const PARAMETERS = { beta: 2 / 3, limitLeft: -0.1, limitRight: 1.1 };
const { beta, limitLeft, limitRight } = PARAMETERS;
/** b·log(−l/r): the shift of the expected L0 norm. */
const L0_SHIFT = beta * Math.log(-limitLeft / limitRight);
/** Sizes with every tail length (n mod 4 = 0…3), below one SIMD group, and the MLP's largest matrix. */
const SIZES = [1, 2, 3, 4, 5, 7, 1001, 235_200];

/** The noise as @fineprune/masks drew it in JavaScript before the fused pass. */
function noiseInJavaScript(size: number, random: { next(): number }): Float32Array {
  const values = new Float32Array(size);
  for (let index = 0; index < size; index += 1) values[index] = EPSILON + SPAN * random.next();
  return values;
}

/** The TF.js op chain the fused gate replaces. */
function gateChain(scores: tf.Tensor, u: tf.Tensor): tf.Tensor {
  const stretched = tf.sigmoid(tf.div(tf.add(tf.sub(tf.log(u), tf.log1p(tf.neg(u))), scores), beta));
  return tf.minimum(tf.relu(tf.add(tf.mul(stretched, limitRight - limitLeft), limitLeft)), 1);
}

/** Scores over [−10, 10] (gates closed, open and in between) and noise, seeded. */
function inputs(size: number, seed: number) {
  const random = createRandom(seed);
  const scores = Float32Array.from({ length: size }, () => (random.next() - 0.5) * 20);
  const u = noiseInJavaScript(size, random);
  // Noise at its ends: ε and 1 − ε, where log u and log(1 − u) are largest.
  u[0] = Math.fround(EPSILON);
  if (size > 1) u[size - 1] = Math.fround(1 - EPSILON);
  const upstream = Float32Array.from({ length: size }, () => random.next() - 0.5);
  return { scores, u, upstream };
}

/** Z = (r − l)σ((log u − log(1 − u) + S)/b) + l in float64. */
function stretchedInFloat64(score: number, u: number): { sbar: number; z: number } {
  const sbar = 1 / (1 + Math.exp(-(Math.log(u) - Math.log1p(-u) + score) / beta));
  return { sbar, z: (limitRight - limitLeft) * sbar + limitLeft };
}

function largestDifference(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  skip?: (index: number) => boolean,
): number {
  let worst = 0;
  for (let index = 0; index < a.length; index += 1) {
    if (skip?.(index)) continue;
    worst = Math.max(worst, Math.abs(a[index]! - b[index]!));
  }
  return worst;
}

describe('fused hard-concrete and sigmoid passes on wasm', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });
  afterAll(async () => {
    await setBackend('cpu');
  });

  it('draws the noise of the JavaScript loop bit for bit and leaves the generator where the loop would', async () => {
    for (const size of SIZES) {
      const fused = createRandom(size);
      const plain = createRandom(size);
      fused.next(); // start mid-stream
      plain.next();
      const before = tf.memory().numTensors;
      const u = fusedUniformNoise([size], fused, EPSILON, SPAN)!;
      const expected = noiseInJavaScript(size, plain);
      const actual = (await u.data()) as Float32Array;
      expect(new Uint32Array(actual.buffer, actual.byteOffset, size)).toEqual(
        new Uint32Array(expected.buffer),
      );
      expect(fused.state()).toEqual(plain.state());
      expect(fused.next()).toBe(plain.next());
      u.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('gives the gate of the op chain within 1e-6 and the gradient of Eq. (3) within 1e-6', async () => {
    for (const size of SIZES) {
      const { scores: scoreValues, u: noiseValues, upstream } = inputs(size, size + 11);
      const scores = tf.tensor1d(scoreValues);
      const u = tf.tensor1d(noiseValues);
      const dy = tf.tensor1d(upstream);
      const before = tf.memory().numTensors;
      const fusedGate = fusedHardConcreteGate(scores, u, PARAMETERS)!;
      const chainGate = tf.tidy(() => gateChain(scores, u));
      const fusedGradient = tf.grad((s: tf.Tensor) =>
        tf.sum(tf.mul(fusedHardConcreteGate(s, u, PARAMETERS)!, dy)),
      )(scores);
      const chainGradient = tf.grad((s: tf.Tensor) => tf.sum(tf.mul(gateChain(s, u), dy)))(scores);
      const [gateF, gateC, gradF, gradC] = await Promise.all(
        [fusedGate, chainGate, fusedGradient, chainGradient].map((t) => t.data()),
      );
      // Where Z lies within 1e-5 of 0 or 1 float32 rounding may put it on either side of the kink.
      const exact = Array.from(scoreValues, (score, index) => stretchedInFloat64(score, noiseValues[index]!));
      const nearKink = (index: number) =>
        Math.abs(exact[index]!.z) < 1e-5 || Math.abs(exact[index]!.z - 1) < 1e-5;
      expect(largestDifference(gateF!, gateC!)).toBeLessThanOrEqual(1e-6);
      expect(largestDifference(gradF!, gradC!, nearKink)).toBeLessThanOrEqual(1e-6);
      // Eq. (3): ∂L/∂S = dy · (r − l)/b · S̄(1 − S̄) · 1{0 < Z ≤ 1}, in float64.
      const eq3 = exact.map(
        ({ sbar, z }, index) =>
          upstream[index]! * (z > 0 && z <= 1 ? ((limitRight - limitLeft) / beta) * sbar * (1 - sbar) : 0),
      );
      expect(largestDifference(gradF!, eq3, nearKink)).toBeLessThanOrEqual(1e-6);
      tf.dispose([fusedGate, chainGate, fusedGradient, chainGradient]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([scores, u, dy]);
    }
  });

  it('gives W ⊙ M and the gradients in W and S of W ⊙ (op chain gate) within 1e-6', async () => {
    for (const size of SIZES) {
      const { scores: scoreValues, u: noiseValues, upstream } = inputs(size, size + 17);
      const random = createRandom(size);
      const weightValues = Float32Array.from({ length: size }, () => random.next() * 2 - 1);
      const [scores, u, dy, weight] = [scoreValues, noiseValues, upstream, weightValues].map((values) =>
        tf.tensor1d(values),
      );
      const before = tf.memory().numTensors;
      const fused = (w: tf.Tensor, s: tf.Tensor) => fusedHardConcreteMaskedWeight(w, s, u!, PARAMETERS)!;
      const chain = (w: tf.Tensor, s: tf.Tensor) => tf.mul(w, gateChain(s, u!));
      const results = [fused, chain].map((op) =>
        tf.tidy(() => [
          op(weight!, scores!),
          ...tf.grads((w: tf.Tensor, s: tf.Tensor) => tf.sum(tf.mul(op(w, s), dy!)))([weight!, scores!]),
        ]),
      );
      const [fusedValues, chainValues] = await Promise.all(
        results.map((tensors) => Promise.all(tensors.map((tensor) => tensor.data()))),
      );
      const exact = Array.from(scoreValues, (score, index) => stretchedInFloat64(score, noiseValues[index]!));
      const nearKink = (index: number) =>
        Math.abs(exact[index]!.z) < 1e-5 || Math.abs(exact[index]!.z - 1) < 1e-5;
      for (const output of [0, 1, 2])
        expect(largestDifference(fusedValues![output]!, chainValues![output]!, nearKink)).toBeLessThanOrEqual(
          1e-6,
        );
      tf.dispose(results.flat());
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([scores!, u!, dy!, weight!]);
    }
  });

  it('writes the test-time gates M̂ within 1e-6 of the op chain and counts the open ones exactly', async () => {
    const random = createRandom(3);
    // Scores around the closing point logit(−l/(r − l)) ≈ −2.4 and far from it.
    const tensors = SIZES.map((size) =>
      tf.tensor1d(Float32Array.from({ length: size }, () => (random.next() - 0.6) * 12)),
    );
    const before = tf.memory().numTensors;
    const { masks, counts } = fusedHardConcreteTestMasks(tensors, PARAMETERS)!;
    for (const [index, tensor] of tensors.entries()) {
      const chain = hardConcreteTestMaskTensor(tensor, PARAMETERS);
      const [fused, expected] = [await masks[index]!.data(), await chain.data()];
      expect(largestDifference(fused, expected)).toBeLessThanOrEqual(1e-6);
      expect(counts[index]).toBe(expected.filter((value) => value > 0).length);
      chain.dispose();
    }
    tf.dispose(masks);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(tensors);
  });

  it('sums σ(S − c) within 1e-6 of float64 (closer than the op chain) with the gradient σ(1 − σ) within 1e-7', async () => {
    for (const size of SIZES) {
      for (const shift of [0, L0_SHIFT]) {
        const { scores: scoreValues, upstream } = inputs(size, size + 5);
        const scores = tf.tensor1d(scoreValues);
        const before = tf.memory().numTensors;
        const sum = fusedSigmoidSum(scores, shift)!;
        const gradient = tf.grad((s: tf.Tensor) => tf.mul(fusedSigmoidSum(s, shift)!, upstream[0]!))(scores);
        const chainGradient = tf.grad((s: tf.Tensor) =>
          tf.mul(tf.sum(tf.sigmoid(tf.sub(s, shift))), upstream[0]!),
        )(scores);
        const exact = scoreValues.reduce(
          (total, score) => total + 1 / (1 + Math.exp(-(score - Math.fround(shift)))),
          0,
        );
        expect(Math.abs((await sum.data())[0]! - exact) / exact).toBeLessThanOrEqual(1e-6);
        expect(largestDifference(await gradient.data(), await chainGradient.data())).toBeLessThanOrEqual(
          1e-7,
        );
        tf.dispose([sum, gradient, chainGradient]);
        expect(tf.memory().numTensors).toBe(before);
        scores.dispose();
      }
    }
  });

  it('declines what it cannot do: another random source, other dtypes, mismatched shapes, empty tensors', () => {
    const scores = tf.tensor1d([1, 2, 3]);
    const ints = tf.tensor1d([1, 2, 3], 'int32');
    const short = tf.tensor1d([0.5, 0.5]);
    const empty = tf.tensor1d([]);
    expect(fusedUniformNoise([3], { next: () => 0.5 }, EPSILON, SPAN)).toBeUndefined();
    expect(fusedUniformNoise([0], createRandom(1), EPSILON, SPAN)).toBeUndefined();
    expect(fusedHardConcreteGate(scores, short, PARAMETERS)).toBeUndefined();
    expect(fusedHardConcreteGate(ints, scores, PARAMETERS)).toBeUndefined();
    expect(fusedSigmoidSum(empty, 0)).toBeUndefined();
    expect(fusedHardConcreteTestMasks([scores, ints], PARAMETERS)).toBeUndefined();
    tf.dispose([scores, ints, short, empty]);
  });
});

describe('fused hard-concrete and sigmoid passes elsewhere', () => {
  it('return undefined on cpu, so callers run the op chains', async () => {
    await setBackend('cpu');
    const scores = tf.tensor1d([1, 2, 3]);
    expect(fusedUniformNoise([3], createRandom(1), EPSILON, SPAN)).toBeUndefined();
    expect(fusedHardConcreteGate(scores, tf.fill([3], 0.5), PARAMETERS)).toBeUndefined();
    expect(fusedHardConcreteMaskedWeight(scores, scores, tf.fill([3], 0.5), PARAMETERS)).toBeUndefined();
    expect(fusedSigmoidSum(scores, 0)).toBeUndefined();
    expect(fusedHardConcreteTestMasks([scores], PARAMETERS)).toBeUndefined();
    scores.dispose();
  });
});
