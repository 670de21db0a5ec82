import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { FinepruneError } from './errors';
import { withLeakGuard } from './leak-guard';
import { maskedWeight } from './masked-weight';
import { createRandom } from './random';

const OUT = 4;
const IN = 5;

function fixture(seed: number) {
  const random = createRandom(seed);
  const uniform = (length: number) => Float32Array.from({ length }, () => random.next() * 2 - 1);
  const w = uniform(OUT * IN);
  const m = Float32Array.from({ length: OUT * IN }, () => (random.next() < 0.5 ? 1 : 0));
  const s = uniform(OUT * IN);
  const x = uniform(IN);
  const c = uniform(OUT);
  return { w, m, s, x, c };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`maskedWeight on ${backend}`, () => {
    beforeAll(() => setBackend(backend));

    it('forward equals W ⊙ M exactly', async () => {
      await withLeakGuard(async () => {
        const { w, m } = fixture(1);
        const [weight, mask] = [tf.tensor2d(w, [OUT, IN]), tf.tensor2d(m, [OUT, IN])];
        const masked = maskedWeight(weight, mask);
        const expected = w.map((value, index) => value * m[index]!);
        expect(await masked.data()).toEqual(expected);
        const boolMasked = tf.tidy(() => maskedWeight(weight, tf.cast(mask, 'bool')));
        expect(await boolMasked.data()).toEqual(expected);
        tf.dispose([weight, mask, masked, boolMasked]);
      });
    });

    it('masked weights contribute nothing to a dense output (perturbing them changes nothing)', async () => {
      await withLeakGuard(async () => {
        const { w, m, x } = fixture(2);
        const perturbed = w.map((value, index) => (m[index] === 0 ? value + 1000 : value));
        const output = (weights: Float32Array) =>
          tf.tidy(() =>
            tf.matMul(
              maskedWeight(tf.tensor2d(weights, [OUT, IN]), tf.tensor2d(m, [OUT, IN])),
              tf.tensor2d(x, [IN, 1]),
            ),
          );
        const [a, b] = [output(w), output(perturbed)];
        expect(await b.data()).toEqual(await a.data());
        tf.dispose([a, b]);
      });
    });

    it('gives ∂L/∂W = (c xᵀ) ⊙ M and ∂L/∂S = (c xᵀ) ⊙ W for L = Σ c ⊙ (W ⊙ M) x', async () => {
      await withLeakGuard(async () => {
        const { w, m, s, x, c } = fixture(3);
        const [weight, mask, scores] = [
          tf.tensor2d(w, [OUT, IN]),
          tf.tensor2d(m, [OUT, IN]),
          tf.tensor2d(s, [OUT, IN]),
        ];
        const [xs, cs] = [tf.tensor2d(x, [IN, 1]), tf.tensor2d(c, [OUT, 1])];
        const loss = (wt: tf.Tensor, st: tf.Tensor) =>
          tf.sum(tf.mul(cs, tf.matMul(maskedWeight(wt, mask, st) as tf.Tensor2D, xs)));
        const [dW, dS] = tf.grads(loss)([weight, scores]);
        const [gW, gS] = [await dW!.data(), await dS!.data()];
        for (let i = 0; i < OUT; i += 1) {
          for (let j = 0; j < IN; j += 1) {
            const index = i * IN + j;
            // By hand: a_i = Σ_j W_ij M_ij x_j, so ∂L/∂W_ij = c_i x_j M_ij; straight through, ∂L/∂S_ij = c_i x_j W_ij.
            expect(Math.abs(gW[index]! - c[i]! * x[j]! * m[index]!)).toBeLessThan(1e-6);
            expect(Math.abs(gS[index]! - c[i]! * x[j]! * w[index]!)).toBeLessThan(1e-6);
          }
        }
        // The mask is a constant of the op: as a trainable variable it still gets no gradient.
        const [wv, mv, sv] = [tf.variable(weight), tf.variable(mask), tf.variable(scores)];
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(cs, tf.matMul(maskedWeight(wv, mv, sv) as tf.Tensor2D, xs))) as tf.Scalar,
          [wv, mv, sv],
        );
        expect(Object.keys(grads).sort()).toEqual([wv.name, sv.name].sort());
        expect(await grads[sv.name]!.data()).toEqual(gS);
        tf.dispose([wv, mv, sv, value, ...Object.values(grads)]);
        tf.dispose([weight, mask, scores, xs, cs, dW!, dS!]);
      });
    });

    it('∂L/∂S matches central finite differences of L(W ⊙ (M + εE_ij)) (ε = 1e-2, float32)', async () => {
      await withLeakGuard(async () => {
        const { w, m, s, x, c } = fixture(4);
        const [weight, mask, scores] = [
          tf.tensor2d(w, [OUT, IN]),
          tf.tensor2d(m, [OUT, IN]),
          tf.tensor2d(s, [OUT, IN]),
        ];
        const [xs, cs] = [tf.tensor2d(x, [IN, 1]), tf.tensor2d(c, [OUT, 1])];
        const lossAt = (maskValues: Float32Array) =>
          tf.tidy(() => {
            const masked = maskedWeight(weight, tf.tensor2d(maskValues, [OUT, IN])) as tf.Tensor2D;
            return tf.sum(tf.mul(cs, tf.matMul(masked, xs))).dataSync()[0]!;
          });
        const dS = tf.grad((st: tf.Tensor) =>
          tf.sum(tf.mul(cs, tf.matMul(maskedWeight(weight, mask, st) as tf.Tensor2D, xs))),
        )(scores);
        const gS = await dS.data();
        const epsilon = 1e-2;
        for (let index = 0; index < OUT * IN; index += 1) {
          const plus = Float32Array.from(m);
          const minus = Float32Array.from(m);
          plus[index]! += epsilon;
          minus[index]! -= epsilon;
          const finiteDifference = (lossAt(plus) - lossAt(minus)) / (2 * epsilon);
          // L is linear in M, so only float32 rounding of L (~1e-7·|L| / 2ε) separates the two: 1e-3 relative.
          expect(Math.abs(finiteDifference - gS[index]!)).toBeLessThanOrEqual(
            1e-3 * Math.max(1, Math.abs(gS[index]!)),
          );
        }
        tf.dispose([weight, mask, scores, xs, cs, dS]);
      });
    });

    it('without scores, only W gets a (masked) gradient', async () => {
      await withLeakGuard(async () => {
        const { w, m } = fixture(5);
        const [weight, mask] = [tf.tensor2d(w, [OUT, IN]), tf.tensor2d(m, [OUT, IN])];
        const dW = tf.grad((wt: tf.Tensor) => tf.sum(tf.mul(maskedWeight(wt, mask), 3)))(weight);
        expect(await dW.data()).toEqual(m.map((value) => 3 * value));
        tf.dispose([weight, mask, dW]);
      });
    });

    it('reads variables W and M in the backward pass without copying them, with the same gradients as the copying path', async () => {
      await withLeakGuard(async () => {
        const { w, m, s, x, c } = fixture(7);
        const [xs, cs] = [tf.tensor2d(x, [IN, 1]), tf.tensor2d(c, [OUT, 1])];
        const [weight, mask, scores] = [w, m, s].map((values) => tf.tensor2d(values, [OUT, IN]));
        const [wv, mv, sv] = [tf.variable(weight!), tf.variable(mask!), tf.variable(scores!)];
        // one step's gradients, with the Identity kernels (copies of saved tensors) it ran
        const step = async (wt: tf.Tensor, mt: tf.Tensor, withScores: boolean) => {
          let grads: tf.Tensor[] = [];
          const info = await tf.profile(() => {
            const loss = (masked: tf.Tensor) => tf.sum(tf.mul(cs, tf.matMul(masked as tf.Tensor2D, xs)));
            grads = withScores
              ? tf.grads((a: tf.Tensor, b: tf.Tensor) => loss(maskedWeight(a, mt, b)))([wt, sv])
              : [tf.grad((a: tf.Tensor) => loss(maskedWeight(a, mt)))(wt)];
          });
          const values = await Promise.all(grads.map(async (grad) => Array.from(await grad.data())));
          tf.dispose(grads);
          return { values, copies: info.kernels.filter((kernel) => kernel.name === 'Identity').length };
        };
        for (const withScores of [true, false]) {
          const copied = await step(weight!, mask!, withScores); // plain tensors: saved as copies
          const direct = await step(wv, mv, withScores); // variables: read as they are
          expect(direct.values).toEqual(copied.values);
          // the copying path saves M (and W with scores); the variable path saves nothing
          expect(copied.copies - direct.copies).toBe(withScores ? 2 : 1);
        }
        tf.dispose([xs, cs, weight!, mask!, scores!, wv, mv, sv]);
      });
    });

    it('rejects a mask or scores of another shape with SHAPE_MISMATCH', async () => {
      await withLeakGuard(() => {
        const weight = tf.zeros([2, 3]);
        const wrong = tf.zeros([3, 2]);
        for (const call of [() => maskedWeight(weight, wrong), () => maskedWeight(weight, weight, wrong)]) {
          try {
            call();
            expect.unreachable();
          } catch (error) {
            expect(FinepruneError.is(error) && error.code).toBe('SHAPE_MISMATCH');
            expect((error as FinepruneError).message).toContain('[3,2]');
          }
        }
        tf.dispose([weight, wrong]);
      });
    });
  });
}
