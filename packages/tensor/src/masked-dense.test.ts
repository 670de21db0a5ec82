import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { dense } from './dense';
import { FinepruneError } from './errors';
import { erf64 } from './fused-test-support';
import { withLeakGuard } from './leak-guard';
import { maskedDense } from './masked-dense';
import { maskedWeight } from './masked-weight';
import { createRandom } from './random';

const ROWS = 3;
const IN = 5;
const OUT = 4;

function fixture(seed: number) {
  const random = createRandom(seed);
  const uniform = (length: number) => Float32Array.from({ length }, () => random.next() * 2 - 1);
  return {
    x: uniform(ROWS * IN),
    w: uniform(IN * OUT),
    m: Float32Array.from({ length: IN * OUT }, () => (random.next() < 0.5 ? 1 : 0)),
    s: uniform(IN * OUT),
    b: uniform(OUT),
    c: uniform(ROWS * OUT),
  };
}

/** L = Σ c ⊙ y and its gradients in (x, W, b, S), through `project`. */
function lossGradients(
  project: (x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, s: tf.Tensor2D) => tf.Tensor2D,
  values: ReturnType<typeof fixture>,
) {
  return tf.tidy(() => {
    const c = tf.tensor2d(values.c, [ROWS, OUT]);
    const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
      tf.sum(tf.mul(c, project(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D, s as tf.Tensor2D)));
    const { value, grads } = tf.valueAndGrads(f)([
      tf.tensor2d(values.x, [ROWS, IN]),
      tf.tensor2d(values.w, [IN, OUT]),
      tf.tensor1d(values.b),
      tf.tensor2d(values.s, [IN, OUT]),
    ]);
    return [value, ...grads];
  });
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`maskedDense on ${backend}`, () => {
    beforeAll(() => setBackend(backend));

    it('matches x·(W ⊙ M) + b and its gradients derived by hand', async () => {
      await withLeakGuard(async () => {
        const values = fixture(1);
        const { x, w, m, b, c } = values;
        const mask = tf.tensor2d(m, [IN, OUT]);
        const [loss, dx, dw, db, ds] = lossGradients(
          (xt, wt, bt, st) => maskedDense(xt, wt, mask, bt, st),
          values,
        );
        // y[r,o] = Σ_i x[r,i] W[i,o] M[i,o] + b[o]; L = Σ c ⊙ y
        // dx[r,i] = Σ_o c[r,o] W[i,o] M[i,o]; dW′[i,o] = Σ_r x[r,i] c[r,o]; dW = dW′ ⊙ M; dS = dW′ ⊙ W; db = Σ_r c
        let expectedLoss = 0;
        const expected = {
          dx: new Float64Array(ROWS * IN),
          dw: new Float64Array(IN * OUT),
          ds: new Float64Array(IN * OUT),
          db: new Float64Array(OUT),
        };
        for (let r = 0; r < ROWS; r += 1) {
          for (let o = 0; o < OUT; o += 1) {
            let y = b[o]!;
            for (let i = 0; i < IN; i += 1) y += x[r * IN + i]! * w[i * OUT + o]! * m[i * OUT + o]!;
            const upstream = c[r * OUT + o]!;
            expectedLoss += upstream * y;
            expected.db[o] = expected.db[o]! + upstream;
          }
        }
        for (let i = 0; i < IN; i += 1) {
          for (let o = 0; o < OUT; o += 1) {
            let dMasked = 0;
            for (let r = 0; r < ROWS; r += 1) dMasked += x[r * IN + i]! * c[r * OUT + o]!;
            expected.dw[i * OUT + o] = dMasked * m[i * OUT + o]!;
            expected.ds[i * OUT + o] = dMasked * w[i * OUT + o]!;
            for (let r = 0; r < ROWS; r += 1)
              expected.dx[r * IN + i]! += c[r * OUT + o]! * w[i * OUT + o]! * m[i * OUT + o]!;
          }
        }
        // float32 sums of at most 5 products of values in [−1, 1]: 1e-5 absolute is ~100 ulps
        const close = async (tensor: tf.Tensor, reference: ArrayLike<number>) => {
          const got = await tensor.data();
          for (let index = 0; index < reference.length; index += 1)
            expect(got[index]).toBeCloseTo(reference[index]!, 5);
        };
        await close(loss!, [expectedLoss]);
        await close(dx!, expected.dx);
        await close(dw!, expected.dw);
        await close(db!, expected.db);
        await close(ds!, expected.ds);
        tf.dispose([loss!, dx!, dw!, db!, ds!, mask]);
      });
    });

    it('equals dense(x, maskedWeight(W, M, S), b) in value and every gradient', async () => {
      await withLeakGuard(async () => {
        const values = fixture(2);
        const mask = tf.tensor2d(values.m, [IN, OUT]);
        const fused = lossGradients((x, w, b, s) => maskedDense(x, w, mask, b, s), values);
        const composed = lossGradients(
          (x, w, b, s) => dense(x, maskedWeight(w, mask, s) as tf.Tensor2D, b),
          values,
        );
        // Same products in the same order on both paths; 1e-6 covers a different summation order.
        for (const [index, tensor] of fused.entries()) {
          const [got, want] = [await tensor.data(), await composed[index]!.data()];
          for (let k = 0; k < want.length; k += 1) expect(Math.abs(got[k]! - want[k]!)).toBeLessThan(1e-6);
        }
        tf.dispose([...fused, ...composed, mask]);
      });
    });

    it('takes a bool mask and works without bias and scores', async () => {
      await withLeakGuard(async () => {
        const values = fixture(3);
        const [x, w, mask] = [
          tf.tensor2d(values.x, [ROWS, IN]),
          tf.tensor2d(values.w, [IN, OUT]),
          tf.tensor2d(values.m, [IN, OUT], 'bool'),
        ];
        const [dwFused, dwComposed] = [
          tf.grad((wt: tf.Tensor) => tf.sum(tf.square(maskedDense(x, wt as tf.Tensor2D, mask))))(w),
          tf.grad((wt: tf.Tensor) => tf.sum(tf.square(dense(x, maskedWeight(wt, mask) as tf.Tensor2D))))(w),
        ];
        const [got, want] = [await dwFused.data(), await dwComposed.data()];
        for (let k = 0; k < want.length; k += 1) expect(Math.abs(got[k]! - want[k]!)).toBeLessThan(1e-6);
        // pruned entries get no gradient
        for (let k = 0; k < want.length; k += 1) if (values.m[k] === 0) expect(Math.abs(got[k]!)).toBe(0);
        tf.dispose([x, w, mask, dwFused, dwComposed]);
      });
    });

    it('rejects a mask or scores of another shape with SHAPE_MISMATCH', () => {
      const x = tf.zeros([ROWS, IN]) as tf.Tensor2D;
      const w = tf.zeros([IN, OUT]) as tf.Tensor2D;
      const wrong = tf.zeros([OUT, IN]);
      expect(() => maskedDense(x, w, wrong)).toThrowError(FinepruneError);
      expect(() => maskedDense(x, w, tf.ones([IN, OUT]), undefined, wrong)).toThrow(/scores has shape/);
      tf.dispose([x, w, wrong]);
    });
  });
}

describe('maskedDense memory on wasm', () => {
  beforeAll(async () => {
    await setBackend('wasm');
  });

  it('keeps neither W ⊙ M nor its gradient until the end of the backward pass', async () => {
    // Four chained 256×256 masked layers with scores; one unit is one weight's bytes. TF.js's byte
    // count (tf.profile) counts every tensor a gradient saves as its own bytes, though on wasm a
    // saved clone shares its data. Both paths end with the 8 gradients (dW, dS) and save W and M
    // (8 units counted). The composition also holds the 4 W ⊙ M and, at the peak, gradients in
    // W ⊙ M: measured 24.1 units against 18.1. Keeping the backward's temporaries (W ⊙ M, its
    // transpose and dW′) until the end of the pass would add 3 units per layer.
    const unit = 256 * 256 * 4;
    const tensors = tf.tidy(() => ({
      weights: Array.from({ length: 4 }, (_, index) =>
        tf.randomNormal([256, 256], 0, 0.05, 'float32', index),
      ),
      scores: Array.from({ length: 4 }, (_, index) =>
        tf.randomNormal([256, 256], 0, 1, 'float32', 10 + index),
      ),
      masks: Array.from({ length: 4 }, (_, index) =>
        tf.cast(tf.greater(tf.randomUniform([256, 256], 0, 1, 'float32', 20 + index), 0.5), 'float32'),
      ),
      x: tf.randomNormal([2, 256], 0, 1, 'float32', 9),
    }));
    const peak = async (
      layer: (h: tf.Tensor2D, w: tf.Tensor2D, s: tf.Tensor2D, index: number) => tf.Tensor2D,
    ) => {
      const before = tf.memory().numBytes;
      const info = await tf.profile(() => {
        const grads = tf.grads((...ws: tf.Tensor[]) =>
          tf.sum(
            tensors.weights.reduce(
              (h, _, index) =>
                layer(h as tf.Tensor2D, ws[index] as tf.Tensor2D, ws[4 + index] as tf.Tensor2D, index),
              tensors.x as tf.Tensor,
            ),
          ),
        )([...tensors.weights, ...tensors.scores]);
        tf.dispose(grads);
      });
      return (info.peakBytes - before) / unit;
    };
    const fused = await peak((h, w, s, index) => maskedDense(h, w, tensors.masks[index]!, undefined, s));
    const composed = await peak((h, w, s, index) =>
      dense(h, maskedWeight(w, tensors.masks[index]!, s) as tf.Tensor2D),
    );
    expect(composed - fused).toBeGreaterThan(5);
    expect(fused).toBeLessThan(19);
    tf.dispose([...tensors.weights, ...tensors.scores, ...tensors.masks, tensors.x]);
  });
});

/** The activations and their derivatives in float64: relu′ = 1{z > 0}, GELU′ = Φ(z) + z·φ(z). */
const reference = {
  relu: { value: (z: number) => Math.max(z, 0), slope: (z: number) => (z > 0 ? 1 : 0) },
  gelu: {
    value: (z: number) => z * 0.5 * (1 + erf64(z / Math.SQRT2)),
    slope: (z: number) =>
      0.5 * (1 + erf64(z / Math.SQRT2)) + (z * Math.exp(-0.5 * z * z)) / Math.sqrt(2 * Math.PI),
  },
} as const;

/** L = Σ c ⊙ act(x·(W ⊙ M) + b) and its gradients in (x, W, b, S), in float64 by hand. */
function handDerived(values: ReturnType<typeof fixture>, activation: 'relu' | 'gelu') {
  const { x, w, m, b, c } = values;
  const act = reference[activation];
  const g = new Float64Array(ROWS * OUT); // g = c ⊙ act′(z)
  const out = { loss: 0, dx: new Float64Array(ROWS * IN), dw: new Float64Array(IN * OUT), minAbsZ: Infinity };
  const db = new Float64Array(OUT);
  const ds = new Float64Array(IN * OUT);
  for (let r = 0; r < ROWS; r += 1) {
    for (let o = 0; o < OUT; o += 1) {
      let z = b[o]!;
      for (let i = 0; i < IN; i += 1) z += x[r * IN + i]! * w[i * OUT + o]! * m[i * OUT + o]!;
      out.minAbsZ = Math.min(out.minAbsZ, Math.abs(z));
      out.loss += c[r * OUT + o]! * act.value(z);
      g[r * OUT + o] = c[r * OUT + o]! * act.slope(z);
      db[o] = db[o]! + g[r * OUT + o]!;
    }
  }
  for (let i = 0; i < IN; i += 1) {
    for (let o = 0; o < OUT; o += 1) {
      let dMasked = 0;
      for (let r = 0; r < ROWS; r += 1) dMasked += x[r * IN + i]! * g[r * OUT + o]!;
      out.dw[i * OUT + o] = dMasked * m[i * OUT + o]!;
      ds[i * OUT + o] = dMasked * w[i * OUT + o]!; // Movement Pruning Eq. 2, straight through M
      for (let r = 0; r < ROWS; r += 1)
        out.dx[r * IN + i]! += g[r * OUT + o]! * w[i * OUT + o]! * m[i * OUT + o]!;
    }
  }
  return { ...out, db, ds };
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`maskedDense activations on ${backend}${backend === 'wasm' ? ' (1 thread)' : ''}`, () => {
    beforeAll(() => setBackend(backend, backend === 'wasm' ? { wasmThreads: 1 } : {}));

    for (const activation of ['relu', 'gelu'] as const) {
      it(`${activation}: value and the gradients of x, W, b and S derived by hand`, async () => {
        await withLeakGuard(async () => {
          const values = fixture(4);
          const mask = tf.tensor2d(values.m, [IN, OUT]);
          const got = lossGradients((x, w, b, s) => maskedDense(x, w, mask, b, s, { activation }), values);
          const expected = handDerived(values, activation);
          // Some pre-activations on each side of relu's kink, none within float32 reach of it.
          expect(expected.minAbsZ).toBeGreaterThan(1e-3);
          // float32 sums of at most 5 products in [−1, 1] and an erf within 1.5e-7 (A&S 7.1.26): 1e-5.
          const references = [[expected.loss], expected.dx, expected.dw, expected.db, expected.ds];
          for (const [index, tensor] of got.entries()) {
            const data = await tensor.data();
            for (let k = 0; k < data.length; k += 1)
              expect(Math.abs(data[k]! - references[index]![k]!)).toBeLessThan(1e-5);
          }
          tf.dispose([...got, mask]);
        });
      });
    }

    it('linear is the default: { activation: "linear" } equals leaving the option out', async () => {
      await withLeakGuard(async () => {
        const values = fixture(5);
        const mask = tf.tensor2d(values.m, [IN, OUT]);
        const plain = lossGradients((x, w, b, s) => maskedDense(x, w, mask, b, s), values);
        const linear = lossGradients(
          (x, w, b, s) => maskedDense(x, w, mask, b, s, { activation: 'linear' }),
          values,
        );
        for (const [index, tensor] of linear.entries())
          expect(Array.from(await tensor.data())).toEqual(Array.from(await plain[index]!.data()));
        tf.dispose([...plain, ...linear, mask]);
      });
    });

    it('rejects an unknown activation with INVALID_ARGUMENT', () => {
      const x = tf.zeros([ROWS, IN]) as tf.Tensor2D;
      const w = tf.zeros([IN, OUT]) as tf.Tensor2D;
      const options = { activation: 'tanh' } as unknown as { activation: 'relu' };
      expect(() => maskedDense(x, w, tf.ones([IN, OUT]), undefined, undefined, options)).toThrow(
        /activation must be 'linear', 'relu' or 'gelu', got "tanh"/,
      );
      tf.dispose([x, w]);
    });
  });
}

describe('maskedDense activations on cpu against central finite differences', () => {
  beforeAll(() => setBackend('cpu'));

  for (const activation of ['relu', 'gelu'] as const) {
    it(`${activation}: every gradient of x, W, b and S`, async () => {
      await withLeakGuard(async () => {
        const values = fixture(6);
        const mask = tf.tensor2d(values.m, [IN, OUT]);
        const loss = (x: Float32Array, w: Float32Array, b: Float32Array, s: Float32Array) =>
          tf.tidy(
            () =>
              tf
                .sum(
                  tf.mul(
                    tf.tensor2d(values.c, [ROWS, OUT]),
                    maskedDense(
                      tf.tensor2d(x, [ROWS, IN]),
                      tf.tensor2d(w, [IN, OUT]),
                      mask,
                      tf.tensor1d(b),
                      tf.tensor2d(s, [IN, OUT]),
                      { activation },
                    ),
                  ),
                )
                .dataSync()[0]!,
          );
        expect(handDerived(values, activation).minAbsZ).toBeGreaterThan(0.01); // h = 1e-3 never crosses relu's kink
        const got = lossGradients((x, w, b, s) => maskedDense(x, w, mask, b, s, { activation }), values);
        const parameters = [values.x, values.w, values.b, values.s];
        const h = 1e-3;
        const numeric = (which: number, k: number) => {
          const shifted = (delta: number) => {
            const copy = parameters.map((array) => array.slice()) as Float32Array[];
            copy[which]![k] = parameters[which]![k]! + delta;
            return loss(copy[0]!, copy[1]!, copy[2]!, copy[3]!);
          };
          return (shifted(h) - shifted(-h)) / (2 * h);
        };
        // x, W and b: float32 losses of ~1 differ in the 7th digit, noise ~1e-7 / 2e-3 = 5e-5, plus O(h²).
        const [dx, dw, db, ds] = await Promise.all(got.slice(1).map((tensor) => tensor.data()));
        for (const [which, analytic] of [dx!, dw!, db!].entries()) {
          for (let k = 0; k < analytic.length; k += 1)
            expect(Math.abs(numeric(which, k) - analytic[k]!)).toBeLessThan(3e-4);
        }
        // S moves no value (its gradient is straight-through, Movement Pruning Eq. 2): where M = 1,
        // ∂L/∂S = ∂L/∂(W ⊙ M) ⊙ W = (numeric ∂L/∂W) ⊙ W.
        for (let k = 0; k < ds!.length; k += 1) {
          if (values.m[k] === 1) expect(Math.abs(numeric(1, k) * values.w[k]! - ds![k]!)).toBeLessThan(3e-4);
        }
        tf.dispose([...got, mask]);
      });
    });
  }
});
