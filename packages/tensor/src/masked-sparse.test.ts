import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { setBackend } from './backend';
import { withLeakGuard } from './leak-guard';
import { maskedDense } from './masked-dense';
import { MASKED_SPARSE_KERNELS, straightThroughGradients } from './masked-sparse';
import { createRandom } from './random';

interface Case {
  batch: number;
  inputs: number;
  units: number;
  kept: number;
  /** Mask entries that are kept take this value (1 for a 0/1 mask, else a soft mask). */
  keptValue?: number;
}

function fixture({ batch, inputs, units, kept, keptValue = 1 }: Case, seed: number) {
  const random = createRandom(seed);
  const uniform = (length: number) => Float32Array.from({ length }, () => random.next() * 2 - 1);
  return {
    x: uniform(batch * inputs),
    w: uniform(inputs * units),
    m: Float32Array.from({ length: inputs * units }, () => (random.next() < kept ? keptValue : 0)),
    s: uniform(inputs * units),
    b: uniform(units),
    c: uniform(batch * units),
  };
}

/**
 * y = x·(W ⊙ M) + b, L = Σ c ⊙ y and its gradients, in float64 from the definitions, with the sum of
 * absolute terms of every entry (the scale of its float32 rounding error).
 */
function reference(shape: Case, v: ReturnType<typeof fixture>) {
  const { batch: B, inputs: K, units: N } = shape;
  const y = new Float64Array(B * N);
  const yScale = new Float64Array(B * N);
  const dx = new Float64Array(B * K);
  const dxScale = new Float64Array(B * K);
  const dMasked = new Float64Array(K * N);
  const dMaskedScale = new Float64Array(K * N);
  for (let r = 0; r < B; r += 1) {
    for (let o = 0; o < N; o += 1) {
      let sum = v.b[o]!;
      let scale = Math.abs(v.b[o]!);
      for (let i = 0; i < K; i += 1) {
        const term = v.x[r * K + i]! * v.w[i * N + o]! * v.m[i * N + o]!;
        sum += term;
        scale += Math.abs(term);
      }
      y[r * N + o] = sum;
      yScale[r * N + o] = scale;
    }
  }
  for (let i = 0; i < K; i += 1) {
    for (let o = 0; o < N; o += 1) {
      const masked = v.w[i * N + o]! * v.m[i * N + o]!;
      for (let r = 0; r < B; r += 1) {
        const upstream = v.c[r * N + o]!;
        dx[r * K + i] = dx[r * K + i]! + upstream * masked; // dx = dy·(W ⊙ M)ᵀ
        dxScale[r * K + i] = dxScale[r * K + i]! + Math.abs(upstream * masked);
        dMasked[i * N + o] = dMasked[i * N + o]! + v.x[r * K + i]! * upstream; // dW′ = xᵀ·dy
        dMaskedScale[i * N + o] = dMaskedScale[i * N + o]! + Math.abs(v.x[r * K + i]! * upstream);
      }
    }
  }
  const db = new Float64Array(N);
  for (let r = 0; r < B; r += 1) for (let o = 0; o < N; o += 1) db[o] = db[o]! + v.c[r * N + o]!;
  let loss = 0;
  for (let index = 0; index < y.length; index += 1) loss += v.c[index]! * y[index]!;
  return {
    loss,
    y,
    yScale,
    dx,
    dxScale,
    dw: dMasked.map((value, index) => value * v.m[index]!), // ∂L/∂W = dW′ ⊙ M
    ds: dMasked.map((value, index) => value * v.w[index]!), // ∂L/∂S = dW′ ⊙ W (Eq. 2)
    dMaskedScale,
    db,
  };
}

/** The value, the loss Σ c ⊙ y and the gradients in (x, W, b, S) of maskedDense on the active backend. */
function run(shape: Case, v: ReturnType<typeof fixture>) {
  return tf.tidy(() => {
    const c = tf.tensor2d(v.c, [shape.batch, shape.units]);
    const mask = tf.tensor2d(v.m, [shape.inputs, shape.units]);
    const project = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
      maskedDense(x as tf.Tensor2D, w as tf.Tensor2D, mask, b as tf.Tensor1D, s);
    const args = [
      tf.tensor2d(v.x, [shape.batch, shape.inputs]),
      tf.tensor2d(v.w, [shape.inputs, shape.units]),
      tf.tensor1d(v.b),
      tf.tensor2d(v.s, [shape.inputs, shape.units]),
    ];
    const y = project(args[0]!, args[1]!, args[2]!, args[3]!);
    const { value, grads } = tf.valueAndGrads((x, w, b, s) => tf.sum(tf.mul(c, project(x, w, b, s))))(args);
    return { y, loss: value, dx: grads[0]!, dw: grads[1]!, db: grads[2]!, ds: grads[3]! };
  });
}

/** |got − want| ≤ 1e-5 · (Σ|terms| + 1): float32 accumulation of the same terms in another order. */
async function expectClose(tensor: tf.Tensor, want: ArrayLike<number>, scale?: ArrayLike<number>) {
  const got = await tensor.data();
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let index = 0; index < want.length; index += 1) {
    const bound = 1e-5 * ((scale?.[index] ?? Math.abs(want[index]!)) + 1);
    worst = Math.max(worst, Math.abs(got[index]! - want[index]!) / bound);
  }
  expect(worst).toBeLessThanOrEqual(1);
}

async function kernelNames(work: () => tf.TensorContainer): Promise<string[]> {
  const profile = await tf.profile(() => {
    tf.dispose(work());
  });
  return profile.kernels.map((kernel) => kernel.name);
}

const CASES: Array<[string, Case]> = [
  // batch not a multiple of 4 (padded), units not a multiple of 4 (the scalar tail of the scan)
  ['7 × 33 → 17, 20% kept', { batch: 7, inputs: 33, units: 17, kept: 0.2 }],
  // 9 vectors of batch: one chunk
  ['36 × 20 → 8, 25% kept', { batch: 36, inputs: 20, units: 8, kept: 0.25 }],
  // the MLP benchmark's first layer at 90% sparsity: 25 vectors in chunks of 9, 8, 8
  ['100 × 784 → 300, 10% kept', { batch: 100, inputs: 784, units: 300, kept: 0.1 }],
  // 53 vectors of batch: five chunks (11, 11, 11, 10, 10)
  ['212 × 12 → 8, 20% kept', { batch: 212, inputs: 12, units: 8, kept: 0.2 }],
  // a soft mask: the listed value is W·M
  ['12 × 16 → 12, 15% kept at 0.5', { batch: 12, inputs: 16, units: 12, kept: 0.15, keptValue: 0.5 }],
];

describe('maskedDense, sparse route on wasm', () => {
  beforeAll(() => setBackend('wasm'));

  for (const [name, shape] of CASES) {
    it(`${name}: value and every gradient against float64`, async () => {
      await withLeakGuard(async () => {
        const v = fixture(shape, 11);
        const want = reference(shape, v);
        const got = run(shape, v);
        await expectClose(got.y, want.y, want.yScale);
        await expectClose(got.loss, [want.loss], [want.yScale.reduce((a, b) => a + b, 0)]);
        await expectClose(got.dx, want.dx, want.dxScale);
        await expectClose(got.dw, want.dw, want.dMaskedScale);
        await expectClose(got.ds, want.ds, want.dMaskedScale);
        await expectClose(got.db, want.db);
        tf.dispose(Object.values(got));
      });
    });
  }

  for (const activation of ['relu', 'gelu'] as const) {
    it(`with ${activation}: the same value and gradients as the dense route (1e-5)`, async () => {
      await withLeakGuard(async () => {
        const shape = { batch: 20, inputs: 24, units: 16, kept: 0.2 };
        const v = fixture(shape, 12);
        const both = (sparse: boolean) => {
          if (sparse) delete process.env.FINEPRUNE_SPARSE_ROUTE;
          else process.env.FINEPRUNE_SPARSE_ROUTE = '0';
          try {
            return tf.tidy(() => {
              const c = tf.tensor2d(v.c, [shape.batch, shape.units]);
              const mask = tf.tensor2d(v.m, [shape.inputs, shape.units]);
              const f = (x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, s: tf.Tensor) =>
                tf.sum(
                  tf.mul(
                    c,
                    maskedDense(x as tf.Tensor2D, w as tf.Tensor2D, mask, b as tf.Tensor1D, s, {
                      activation,
                    }),
                  ),
                );
              const { value, grads } = tf.valueAndGrads(f)([
                tf.tensor2d(v.x, [shape.batch, shape.inputs]),
                tf.tensor2d(v.w, [shape.inputs, shape.units]),
                tf.tensor1d(v.b),
                tf.tensor2d(v.s, [shape.inputs, shape.units]),
              ]);
              return [value, ...grads];
            });
          } finally {
            delete process.env.FINEPRUNE_SPARSE_ROUTE;
          }
        };
        const names = await kernelNames(() => both(true));
        expect(names).toContain(MASKED_SPARSE_KERNELS.product);
        const [sparse, dense] = [both(true), both(false)];
        for (const [index, tensor] of sparse.entries()) {
          const [got, want] = [await tensor.data(), await dense[index]!.data()];
          for (let k = 0; k < want.length; k += 1)
            expect(Math.abs(got[k]! - want[k]!)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[k]!)));
        }
        tf.dispose([...sparse, ...dense]);
      });
    });
  }

  it('takes the sparse kernels at ≤ 30% kept and the dense product above, remembering a dense mask', async () => {
    await withLeakGuard(async () => {
      const shape = { batch: 8, inputs: 40, units: 20, kept: 0.1 };
      const v = fixture(shape, 5);
      const x = tf.tensor2d(v.x, [8, 40]);
      const w = tf.tensor2d(v.w, [40, 20]);
      const sparseMask = tf.tensor2d(v.m, [40, 20]);
      const denseMask = tf.tidy(() =>
        tf.cast(tf.greater(tf.randomUniform([40, 20], 0, 1, 'float32', 3), 0.5), 'float32'),
      );
      const sparseNames = await kernelNames(() => maskedDense(x, w, sparseMask));
      expect(sparseNames).toContain(MASKED_SPARSE_KERNELS.product);
      expect(sparseNames).not.toContain('_FusedMatMul');
      expect(sparseNames).not.toContain('BatchMatMul');
      const first = await kernelNames(() => maskedDense(x, w, denseMask));
      expect(first).toContain(MASKED_SPARSE_KERNELS.compress); // listed once, found too dense
      expect(first).not.toContain(MASKED_SPARSE_KERNELS.product);
      const second = await kernelNames(() => maskedDense(x, w, denseMask));
      expect(second).not.toContain(MASKED_SPARSE_KERNELS.compress);
      tf.dispose([x, w, sparseMask, denseMask]);
    });
  });

  it('after a dense mask, lists the same weight again only on its 9th call', async () => {
    await withLeakGuard(async () => {
      const v = fixture({ batch: 8, inputs: 40, units: 20, kept: 0.1 }, 8);
      const x = tf.tensor2d(v.x, [8, 40]);
      const w = tf.tensor2d(v.w, [40, 20]);
      const sparseMask = tf.tensor2d(v.m, [40, 20]);
      const denseMask = tf.ones([40, 20]);
      expect(await kernelNames(() => maskedDense(x, w, denseMask))).toContain(MASKED_SPARSE_KERNELS.compress);
      for (let call = 1; call <= 8; call += 1) {
        const names = await kernelNames(() => maskedDense(x, w, sparseMask));
        expect(names).not.toContain(MASKED_SPARSE_KERNELS.compress);
      }
      expect(await kernelNames(() => maskedDense(x, w, sparseMask))).toContain(MASKED_SPARSE_KERNELS.product);
      tf.dispose([x, w, sparseMask, denseMask]);
    });
  });

  it('does not compute the input gradient when the input is not differentiated', async () => {
    await withLeakGuard(async () => {
      const v = fixture({ batch: 8, inputs: 40, units: 20, kept: 0.1 }, 6);
      const x = tf.tensor2d(v.x, [8, 40]);
      const w = tf.tidy(() => tf.variable(tf.tensor2d(v.w, [40, 20])));
      const mask = tf.tensor2d(v.m, [40, 20]);
      const names = await kernelNames(() => tf.variableGrads(() => tf.sum(maskedDense(x, w, mask)), [w]));
      expect(names).not.toContain(MASKED_SPARSE_KERNELS.inputGradient);
      const withInput = await kernelNames(() =>
        tf.grad((input: tf.Tensor) => tf.sum(maskedDense(input as tf.Tensor2D, w, mask)))(x),
      );
      expect(withInput).toContain(MASKED_SPARSE_KERNELS.inputGradient);
      tf.dispose([x, w, mask]);
    });
  });

  it('frees the scores gradient of the weight thunk when the scores are not differentiated', async () => {
    const v = fixture({ batch: 8, inputs: 40, units: 20, kept: 0.1 }, 7);
    const x = tf.tensor2d(v.x, [8, 40]);
    const w = tf.variable(tf.tensor2d(v.w, [40, 20]));
    const s = tf.tensor2d(v.s, [40, 20]);
    const mask = tf.tensor2d(v.m, [40, 20]);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.sum(maskedDense(x, w, mask, undefined, s)), [w]);
    tf.dispose([value, grads]);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w, s, mask]);
  });

  it('straightThroughGradients is dW′ ⊙ M and dW′ ⊙ W exactly (float32 products)', async () => {
    await withLeakGuard(async () => {
      const random = createRandom(9);
      const values = (n: number) => Float32Array.from({ length: n }, () => random.next() * 4 - 2);
      const [g, w, m] = [values(24), values(24), values(24)];
      const inputs = [tf.tensor1d(g), tf.tensor1d(w), tf.tensor1d(m)] as const;
      const [dw, ds] = straightThroughGradients(...inputs);
      const [gotW, gotS] = [await dw.data(), await ds.data()];
      for (let index = 0; index < 24; index += 1) {
        expect(gotW[index]).toBe(Math.fround(g[index]! * m[index]!));
        expect(gotS[index]).toBe(Math.fround(g[index]! * w[index]!));
      }
      tf.dispose([dw, ds, ...inputs]);
    });
  });
});
