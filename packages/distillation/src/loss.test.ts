import * as tf from '@tensorflow/tfjs-core';
import { errorOf } from '@fineprune/core/testing';
import { setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { distillationLoss } from './loss';

/** softmax(z / T) of one row in doubles. */
function softmax(row: readonly number[], temperature: number): number[] {
  const scaled = row.map((value) => value / temperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((value) => Math.exp(value - max));
  const total = exps.reduce((sum, value) => sum + value, 0);
  return exps.map((value) => value / total);
}

/** T² · mean over rows of KL(p_t ‖ p_s), by hand in doubles. */
function handLoss(student: number[][], teacher: number[][], temperature: number): number {
  let total = 0;
  student.forEach((row, index) => {
    const ps = softmax(row, temperature);
    const pt = softmax(teacher[index]!, temperature);
    total += pt.reduce((sum, p, k) => sum + p * (Math.log(p) - Math.log(ps[k]!)), 0);
  });
  return (temperature * temperature * total) / student.length;
}

const STUDENT = [
  [1, 2, 3],
  [0.5, -1, 2],
];
const TEACHER = [
  [3, 1, 0],
  [0, 0, 1],
];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`distillationLoss on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('equals T² · KL(p_t ‖ p_s) averaged over rows, computed by hand (2×3 logits)', async () => {
      await withLeakGuard(async () => {
        const student = tf.tensor2d(STUDENT);
        const teacher = tf.tensor2d(TEACHER);
        for (const temperature of [2, 1, 0.5]) {
          const value = distillationLoss(student, teacher, temperature);
          // float32 softmax/log of values of order 1: 1e-5 absolute is ~100 ulps of the result.
          expect(Math.abs((await value.data())[0]! - handLoss(STUDENT, TEACHER, temperature))).toBeLessThan(
            1e-5,
          );
          value.dispose();
        }
        // T defaults to 2
        const byDefault = distillationLoss(student, teacher);
        expect(Math.abs((await byDefault.data())[0]! - handLoss(STUDENT, TEACHER, 2))).toBeLessThan(1e-5);
        tf.dispose([student, teacher, byDefault]);
      });
    });

    it('is 0 when the student equals the teacher, and > 0 otherwise', async () => {
      await withLeakGuard(async () => {
        const logits = tf.tensor2d(STUDENT);
        const copy = tf.clone(logits);
        const same = distillationLoss(logits, copy, 2);
        // exp/log round-off of float32 leaves at most ~1e-7 per term
        expect(Math.abs((await same.data())[0]!)).toBeLessThan(1e-6);
        const shifted = tf.add(logits, 5); // softmax is shift-invariant: still 0
        const shiftedLoss = distillationLoss(logits, shifted, 2);
        expect(Math.abs((await shiftedLoss.data())[0]!)).toBeLessThan(1e-6);
        const teacher = tf.tensor2d(TEACHER);
        const other = distillationLoss(logits, teacher, 2);
        expect((await other.data())[0]).toBeGreaterThan(0.1);
        tf.dispose([logits, copy, same, shifted, shiftedLoss, teacher, other]);
      });
    });

    it('has the gradient α·T·(p_s − p_t)/batch with respect to the student logits (closed form and finite differences)', async () => {
      await withLeakGuard(async () => {
        const temperature = 2;
        const alpha = 0.5;
        const teacher = tf.tensor2d(TEACHER);
        const f = (student: tf.Tensor) =>
          tf.mul(distillationLoss(student, teacher, temperature), alpha) as tf.Scalar;
        const student = tf.tensor2d(STUDENT);
        const gradient = tf.grad(f)(student);
        const analytic = Array.from(await gradient.data());
        // d/dz_s [α T² · (1/B) Σ_rows Σ_k p_t,k (log p_t,k − log softmax(z_s/T)_k)] = α·T·(p_s − p_t)/B,
        // since d log softmax(z/T)_k / dz_j = (δ_kj − p_j)/T and Σ_k p_t,k = 1.
        const closed = STUDENT.flatMap((row, index) => {
          const ps = softmax(row, temperature);
          const pt = softmax(TEACHER[index]!, temperature);
          return ps.map((p, k) => (alpha * temperature * (p - pt[k]!)) / STUDENT.length);
        });
        // float32 gradient vs double closed form: 1e-5 absolute
        for (const [index, value] of analytic.entries())
          expect(Math.abs(value - closed[index]!)).toBeLessThan(1e-5);
        // Central differences of the float32 loss, step 1e-2: truncation O(h²·f''') ≈ 1e-5 and
        // round-off ≈ 1e-7/h = 1e-5, so 1e-3 is a safe bound.
        const h = 1e-2;
        const base = STUDENT.flat();
        for (let index = 0; index < base.length; index++) {
          const plus = base.slice();
          plus[index]! += h;
          const minus = base.slice();
          minus[index]! -= h;
          const [up, down] = [plus, minus].map((values) =>
            tf.tidy(() => f(tf.tensor2d(values, [2, 3])).dataSync()[0]!),
          );
          expect(Math.abs((up! - down!) / (2 * h) - analytic[index]!)).toBeLessThan(1e-3);
        }
        tf.dispose([teacher, student, gradient]);
      });
    });

    it('gives no gradient to the teacher logits', async () => {
      await withLeakGuard(async () => {
        const student = tf.tensor2d(STUDENT);
        const teacher = tf.tensor2d(TEACHER);
        const [toStudent, toTeacher] = tf.grads((s: tf.Tensor, t: tf.Tensor) => distillationLoss(s, t, 2))([
          student,
          teacher,
        ]);
        expect(Math.max(...Array.from(await toStudent!.data()).map(Math.abs))).toBeGreaterThan(1e-3);
        expect(Array.from(await toTeacher!.data())).toEqual([0, 0, 0, 0, 0, 0]);
        tf.dispose([student, teacher, toStudent!, toTeacher!]);
      });
    });

    it('averages the KL terms of several outputs (span heads: start and end logits)', async () => {
      await withLeakGuard(async () => {
        const start = [
          [0.2, 1.5, -0.3, 0.8],
          [1, 0, 0, 2],
        ];
        const end = [
          [2, -1, 0.5, 0.1],
          [0, 0.3, 0.6, 0.9],
        ];
        const startTeacher = [
          [1, 1, 0, 0],
          [0.5, 0.5, 3, 0],
        ];
        const endTeacher = [
          [0, 2, 0, 1],
          [1, -1, 1, -1],
        ];
        const value = tf.tidy(() =>
          distillationLoss(
            [tf.tensor2d(start), tf.tensor2d(end)],
            [tf.tensor2d(startTeacher), tf.tensor2d(endTeacher)],
            2,
          ),
        );
        const hand = (handLoss(start, startTeacher, 2) + handLoss(end, endTeacher, 2)) / 2;
        // 1e-5 absolute, as for one output
        expect(Math.abs((await value.data())[0]! - hand)).toBeLessThan(1e-5);
        value.dispose();
      });
    });

    it('averages over every leading position of rank-3 logits ([batch, length, classes])', async () => {
      const student = [
        [
          [1, 2, 3],
          [0, 0, 1],
        ],
        [
          [0.5, -1, 2],
          [2, 2, -2],
        ],
      ];
      const teacher = [
        [
          [3, 1, 0],
          [1, 0, 0],
        ],
        [
          [0, 0, 1],
          [-1, 0, 1],
        ],
      ];
      const value = tf.tidy(() => distillationLoss(tf.tensor3d(student), tf.tensor3d(teacher), 2));
      // 4 rows (2 × 2 positions): the mean over all of them, 1e-5 absolute
      expect(Math.abs((await value.data())[0]! - handLoss(student.flat(), teacher.flat(), 2))).toBeLessThan(
        1e-5,
      );
      value.dispose();
    });

    it('rejects bad temperatures, mismatched shapes and counts, class-less and integer logits', () => {
      tf.tidy(() => {
        const logits = tf.zeros([4, 3]);
        for (const temperature of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
          expect(errorOf(() => distillationLoss(logits, logits, temperature)).code).toBe('INVALID_ARGUMENT');
        const shape = errorOf(() => distillationLoss(logits, tf.zeros([4, 2]), 2));
        expect(shape.code).toBe('SHAPE_MISMATCH');
        expect(shape.message).toContain('[4, 3]');
        expect(shape.message).toContain('[4, 2]');
        const count = errorOf(() => distillationLoss([logits, logits], [logits], 2));
        expect(count.code).toBe('SHAPE_MISMATCH');
        expect(count.message).toContain('2 output(s)');
        expect(errorOf(() => distillationLoss(tf.zeros([3]), tf.zeros([3]), 2)).code).toBe('SHAPE_MISMATCH');
        expect(errorOf(() => distillationLoss(tf.zeros([0, 3]), tf.zeros([0, 3]), 2)).code).toBe(
          'SHAPE_MISMATCH',
        );
        expect(errorOf(() => distillationLoss(logits, tf.zeros([4, 3], 'int32'), 2)).code).toBe(
          'INVALID_ARGUMENT',
        );
        expect(errorOf(() => distillationLoss([], [], 2)).code).toBe('INVALID_ARGUMENT');
        expect(errorOf(() => distillationLoss(logits, [1, 2] as never, 2)).code).toBe('INVALID_ARGUMENT');
      });
    });
  });
}
