import * as tf from '@tensorflow/tfjs-core';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { attentionRow } from './test-support';
import {
  batchMatMul,
  gelu,
  geluTanh,
  layerNorm,
  multiHeadAttention,
  rowCrossEntropy,
  seededDropout,
} from './ops';

/** erf by its Maclaurin series, exact to double precision for |x| ≤ 4 (terms shrink below 1e-17). */
function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 120; n += 1) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const cdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));
const pdf = (x: number) => Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);

function randomArray(n: number, seed: number, scale = 1): number[] {
  const random = createRandom(seed);
  return Array.from({ length: n }, () => (random.next() * 2 - 1) * scale);
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (let index = 0; index < expected.length; index += 1) {
    expect(Math.abs(actual[index]! - expected[index]!)).toBeLessThanOrEqual(tolerance);
  }
}

/** LayerNorm of one row in doubles: γ(x − μ)/√(σ² + ε) + β. */
function layerNormRow(x: number[], gamma: number[], beta: number[], epsilon: number): number[] {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return x.map((value, i) => (gamma[i]! * (value - mean)) / Math.sqrt(variance + epsilon) + beta[i]!);
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`encoder ops on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('computes exact GELU at the reference values', async () => {
      await withLeakGuard(() => {
        const out = tf.tidy(() => gelu(tf.tensor1d([1, -1, 0.5, 0, 3, -3])).dataSync());
        // Reference values of x·Φ(x); float32 rounding plus the erf approximation (|e| ≤ 1.5e-7)
        // stay below 1e-6 at |x| ≤ 3.
        close(
          out,
          [0.8413447460685429, -0.15865525393145707, 0.34573123063700656, 0, 3 * cdf(3), -3 * cdf(-3)],
          1e-6,
        );
      });
    });

    it('differentiates GELU as Φ(x) + xφ(x)', async () => {
      await withLeakGuard(() => {
        const xs = [-2.5, -1, -0.3, 0, 0.4, 1.7];
        const grad = tf.tidy(() =>
          tf
            .grad((x: tf.Tensor) => tf.sum(gelu(x)))(tf.tensor1d(xs))
            .dataSync(),
        );
        // Closed form in doubles; float32 and the erf approximation give ≤ 1e-6.
        close(
          grad,
          xs.map((x) => cdf(x) + x * pdf(x)),
          1e-6,
        );
      });
    });

    it('computes the tanh GELU and its gradient', async () => {
      await withLeakGuard(() => {
        const xs = [-2, -0.5, 0, 0.8, 2.2];
        const f = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
        const [value, grad] = tf.tidy(() => {
          const input = tf.tensor1d(xs);
          return [
            geluTanh(input).dataSync(),
            tf
              .grad((x: tf.Tensor) => tf.sum(geluTanh(x)))(input)
              .dataSync(),
          ];
        });
        close(value!, xs.map(f), 1e-6); // float32 rounding only
        // Central differences in doubles (h = 1e-5: truncation ~1e-10) against float32 (~1e-6).
        close(
          grad!,
          xs.map((x) => (f(x + 1e-5) - f(x - 1e-5)) / 2e-5),
          2e-6,
        );
      });
    });

    it('normalises rows with LayerNorm as computed by hand', async () => {
      await withLeakGuard(() => {
        const rows = [
          [1, 2, 3, 4],
          [2, -1, 0, 5],
          [0.5, 0.5, 0.5, 0.5],
        ];
        const gamma = [1, 0.5, -2, 1.5];
        const beta = [0, 0.1, 0.2, -0.3];
        const out = tf.tidy(() =>
          layerNorm(tf.tensor2d(rows), tf.tensor1d(gamma), tf.tensor1d(beta), 1e-12).dataSync(),
        );
        // Row 0: μ = 2.5, σ² = 1.25 → x̂ = [−1.3416, −0.4472, 0.4472, 1.3416]; a constant row gives β.
        // float32 on values of order 1: 1e-5.
        close(
          out,
          rows.flatMap((row) => layerNormRow(row, gamma, beta, 1e-12)),
          1e-5,
        );
      });
    });

    it('matches central finite differences for the LayerNorm gradient', async () => {
      await withLeakGuard(() => {
        const n = 3;
        const h = 5;
        const x = randomArray(n * h, 1, 2);
        const gamma = randomArray(h, 2);
        const beta = randomArray(h, 3);
        const weights = randomArray(n * h, 4);
        // f = Σ c ⊙ LN(x) in doubles
        const f = (xv: number[], g: number[], b: number[]) => {
          let total = 0;
          for (let r = 0; r < n; r += 1) {
            const y = layerNormRow(xv.slice(r * h, r * h + h), g, b, 1e-5);
            for (let c = 0; c < h; c += 1) total += y[c]! * weights[r * h + c]!;
          }
          return total;
        };
        const [dx, dg, db] = tf.tidy(() => {
          const c = tf.tensor2d(weights, [n, h]);
          const grads = tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
            tf.sum(tf.mul(layerNorm(a as tf.Tensor2D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5), c)),
          )([tf.tensor2d(x, [n, h]), tf.tensor1d(gamma), tf.tensor1d(beta)]);
          return grads.map((grad) => grad.dataSync());
        });
        const step = 1e-6;
        const numeric = (which: 0 | 1 | 2, index: number) => {
          const args = [x.slice(), gamma.slice(), beta.slice()];
          args[which]![index]! += step;
          const up = f(args[0]!, args[1]!, args[2]!);
          args[which]![index]! -= 2 * step;
          const down = f(args[0]!, args[1]!, args[2]!);
          return (up - down) / (2 * step);
        };
        // Doubles with h = 1e-6 are accurate to ~1e-9; the float32 closed form to ~1e-5.
        close(
          dx!,
          x.map((_, i) => numeric(0, i)),
          2e-5,
        );
        close(
          dg!,
          gamma.map((_, i) => numeric(1, i)),
          2e-5,
        );
        close(
          db!,
          beta.map((_, i) => numeric(2, i)),
          2e-5,
        );
      });
    });

    it('computes multi-head attention with a padding mask as by hand (B = 2, L = 3, H = 4, 2 heads)', async () => {
      await withLeakGuard(() => {
        const B = 2;
        const L = 3;
        const H = 4;
        const heads = 2;
        const hidden = randomArray(B * L * H, 10);
        const w = { q: randomArray(H * H, 11), k: randomArray(H * H, 12), v: randomArray(H * H, 13) };
        const b = { q: randomArray(H, 14), k: randomArray(H, 15), v: randomArray(H, 16) };
        const masks = [
          [1, 1, 0],
          [1, 0, 0],
        ];
        const out = tf.tidy(() => {
          const additive = tf.reshape(tf.mul(tf.sub(1, tf.tensor2d(masks.flat(), [B, L])), -10000), [
            B,
            1,
            1,
            L,
          ]);
          const weights = (key: 'q' | 'k' | 'v') => ({
            kernel: tf.tensor2d(w[key], [H, H]),
            bias: tf.tensor1d(b[key]),
          });
          return multiHeadAttention({
            hidden: tf.tensor2d(hidden, [B * L, H]),
            batch: B,
            length: L,
            heads,
            query: weights('q'),
            key: weights('k'),
            value: weights('v'),
            additiveMask: additive,
          }).dataSync();
        });
        // Plain JS in doubles: projections h·W + b (W is [in, out]), then per head softmax(qkᵀ/√d + m)·v.
        const project = (row: number[], kernel: number[], bias: number[]) =>
          Array.from({ length: H }, (_, o) => row.reduce((s, x, i) => s + x * kernel[i * H + o]!, bias[o]!));
        const expected: number[] = [];
        for (let s = 0; s < B; s += 1) {
          const rows = Array.from({ length: L }, (_, t) =>
            hidden.slice((s * L + t) * H, (s * L + t + 1) * H),
          );
          const q = rows.map((row) => project(row, w.q, b.q));
          const k = rows.map((row) => project(row, w.k, b.k));
          const v = rows.map((row) => project(row, w.v, b.v));
          for (let i = 0; i < L; i += 1) {
            const context = attentionRow(q, k, v, masks[s]!, heads, i);
            expected.push(...context);
          }
        }
        // float32 on values of order 1: 1e-5.
        close(out, expected, 1e-5);
      });
    });

    it('gives batchMatMul the same gradients as tf.matMul', async () => {
      await withLeakGuard(() => {
        const a = tf.tensor(randomArray(2 * 3 * 4 * 5, 20), [2, 3, 4, 5]);
        const c = tf.tensor(randomArray(2 * 3 * 5 * 6, 21), [2, 3, 5, 6]);
        const weights = tf.tensor(randomArray(2 * 3 * 4 * 6, 22), [2, 3, 4, 6]);
        const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(batchMatMul(x, y), weights)))([
          a,
          c,
        ]);
        const theirs = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), weights)))([
          a,
          c,
        ]);
        // Same products summed in possibly different order: float32, 1e-5.
        close(ours[0]!.dataSync(), theirs[0]!.dataSync(), 1e-5);
        close(ours[1]!.dataSync(), theirs[1]!.dataSync(), 1e-5);
        close(
          tf.tidy(() => batchMatMul(a, c).dataSync()),
          tf.tidy(() => tf.matMul(a, c).dataSync()),
          1e-5,
        );
        tf.dispose([a, c, weights, ...ours, ...theirs]);
      });
    });

    it('draws dropout masks from the seed, keeping 1 − rate of the entries scaled by 1/(1 − rate)', async () => {
      await withLeakGuard(() => {
        const x = tf.ones([200, 200]);
        const first = tf.tidy(() => seededDropout(x, 0.25, 7).dataSync());
        const again = tf.tidy(() => seededDropout(x, 0.25, 7).dataSync());
        const other = tf.tidy(() => seededDropout(x, 0.25, 8).dataSync());
        expect(Array.from(again)).toEqual(Array.from(first));
        expect(Array.from(other)).not.toEqual(Array.from(first));
        const kept = first.filter((value) => value !== 0);
        expect(kept.every((value) => Math.abs(value - 1 / 0.75) < 1e-6)).toBe(true);
        // 40,000 Bernoulli(0.75) draws: standard deviation of the kept fraction 0.0022, so ±0.01 is 4.6σ.
        expect(Math.abs(kept.length / first.length - 0.75)).toBeLessThan(0.01);
        const zeroRate = tf.tidy(() => seededDropout(x, 0, 1).dataSync());
        expect(zeroRate.every((value) => value === 1)).toBe(true);
        x.dispose();
      });
    });

    it('computes row cross-entropy as logsumexp minus the label logit', async () => {
      await withLeakGuard(() => {
        const out = tf.tidy(() =>
          rowCrossEntropy(
            tf.tensor2d([
              [1, 2, 3],
              [0, 0, 0],
            ]),
            tf.tensor1d([2, 0], 'int32'),
          ).dataSync(),
        );
        close(out, [Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)) - 3, Math.log(3)], 1e-6);
      });
    });

    it('differentiates row cross-entropy as softmax − onehot and stays finite on large logits', async () => {
      await withLeakGuard(() => {
        const logits = [
          [0.5, -1, 2, 0],
          [3, 1, -2, 0.25],
          [1000, 999, 0, -1000],
        ];
        const labels = [2, 0, 1];
        const weights = [1, -0.5, 2];
        const [grad, loss] = tf.tidy(() => {
          const z = tf.tensor2d(logits);
          const y = tf.tensor1d(labels, 'int32');
          const w = tf.tensor1d(weights);
          const g = tf.grad((input: tf.Tensor) =>
            tf.sum(tf.mul(rowCrossEntropy(input as tf.Tensor2D, y), w)),
          )(z);
          return [g.dataSync(), rowCrossEntropy(z, y).dataSync()];
        });
        const expected = logits.flatMap((row, r) => {
          const top = Math.max(...row);
          const total = row.reduce((a, v) => a + Math.exp(v - top), 0);
          return row.map((v, c) => (Math.exp(v - top) / total - (c === labels[r] ? 1 : 0)) * weights[r]!);
        });
        close(grad!, expected, 1e-6); // float32 probabilities: 1e-6
        // Row 2: log(1 + e⁻¹ + …) + 1 ≈ 1.3133 (the max logit is 1000, its label 999).
        expect(loss![2]).toBeCloseTo(Math.log(1 + Math.exp(-1)) + 1, 5);
      });
    });
  });
}
