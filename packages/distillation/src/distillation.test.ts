import * as tf from '@tensorflow/tfjs-core';
import {
  type Batch,
  type LossContext,
  type PrunableModel,
  Pruner,
  type ScoreStrategy,
  adam,
  createPrunableParameter,
  FinepruneError,
  sparsityReport,
} from '@fineprune/core';
import {
  errorOf,
  fixedSparsity,
  testLearnedScores,
  testMagnitude,
  testTopK,
  tinyBatches,
  tinyMlp,
} from '@fineprune/core/testing';
import { countTensors, createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Teacher, distillation, distillationFromConfig } from './distillation';
import { distillationLoss } from './loss';

/** A loss context around given outputs and batch, as the Pruner builds it. */
function lossContext(
  outputs: tf.Tensor | tf.Tensor[],
  x: tf.Tensor,
  model = {} as PrunableModel,
): LossContext {
  return {
    step: 0,
    model,
    random: createRandom(0),
    batch: { x, y: x } as Batch, // y is never read by the term
    outputs,
    targets: {},
    pruned: [],
  };
}

/** Reads every variable of a model as plain numbers. */
async function snapshot(model: PrunableModel): Promise<number[][]> {
  return Promise.all(
    model.trainableVariables().map(async ({ variable }) => Array.from(await variable.data())),
  );
}

/** KL term of the student against the teacher on a fixed batch (no gradient). */
async function klOn(student: PrunableModel, teacher: PrunableModel, x: tf.Tensor): Promise<number> {
  const value = tf.tidy(() =>
    distillationLoss(student.forward(x, { training: false }), teacher.forward(x, { training: false }), 2),
  );
  const result = (await value.data())[0]!;
  value.dispose();
  return result;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`distillation loss term on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('has the reference defaults, taskLossWeight α_ce, and round-trips its config', () => {
      const teacher: Teacher = (x) => tf.zeros([(x as tf.Tensor).shape[0]!, 3]);
      const term = distillation({ teacher });
      expect([term.id, term.temperature, term.alphaDistil, term.alphaCe, term.taskLossWeight]).toEqual([
        'distillation',
        2,
        0.5,
        0.5,
        0.5,
      ]);
      const custom = distillation({ teacher, temperature: 4, alphaDistil: 0.9, alphaCe: 0.1 });
      expect(custom.toConfig()).toEqual({
        type: 'distillation',
        temperature: 4,
        alphaDistil: 0.9,
        alphaCe: 0.1,
      });
      expect(custom.taskLossWeight).toBe(0.1);
      const copy = distillationFromConfig(custom.toConfig(), teacher);
      expect(copy.toConfig()).toEqual(custom.toConfig());
      expect(copy.teacher).toBe(teacher);
    });

    it('rejects bad options with INVALID_ARGUMENT, the cause and the fix', () => {
      const teacher: Teacher = () => tf.zeros([1, 3]);
      const cases: Array<[unknown, RegExp]> = [
        [{ teacher, temperature: 0 }, /temperature must be a finite number > 0, got 0/],
        [{ teacher, temperature: -2 }, /temperature/],
        [{ teacher, temperature: Number.NaN }, /temperature/],
        [{ teacher, temperature: Number.POSITIVE_INFINITY }, /temperature/],
        [{ teacher, alphaDistil: -0.1 }, /alphaDistil must be a finite number ≥ 0/],
        [{ teacher, alphaCe: -1 }, /alphaCe must be a finite number ≥ 0/],
        [{ teacher, alphaCe: Number.NaN }, /alphaCe/],
        [{ teacher, alphaDistil: 0, alphaCe: 0 }, /both 0/],
        [{}, /teacher must be a PrunableModel or a function/],
        [{ teacher: 'dense.json' }, /got string/],
        [{ teacher: null }, /got null/],
        [undefined, /options are missing/],
      ];
      for (const [options, message] of cases) {
        const error = errorOf(() => distillation(options as never));
        expect(error.code).toBe('INVALID_ARGUMENT');
        expect(error.message).toMatch(message);
        expect(error.fix.length).toBeGreaterThan(10);
      }
      expect(errorOf(() => distillationFromConfig({ type: 'sigmoidPenalty' }, teacher)).code).toBe(
        'INVALID_ARGUMENT',
      );
      expect(errorOf(() => distillationFromConfig({ temperatur: 2 }, teacher)).message).toMatch(/temperatur/);
      expect(errorOf(() => distillationFromConfig({ temperature: '2' }, teacher)).message).toMatch(
        /must be a number/,
      );
    });

    it('computes α_distil · T² · KL against a function teacher (hand value), without leaks', async () => {
      const studentRows = [
        [1, 2, 3],
        [0.5, -1, 2],
      ];
      const teacherRows = [
        [3, 1, 0],
        [0, 0, 1],
      ];
      // T² · mean KL for these rows at T = 2, from the doubles of loss.test.ts' hand computation:
      const softmax = (row: number[]) => {
        const exps = row.map((value) => Math.exp(value / 2));
        const total = exps.reduce((sum, value) => sum + value, 0);
        return exps.map((value) => value / total);
      };
      const kl = studentRows.reduce((sum, row, index) => {
        const ps = softmax(row);
        const pt = softmax(teacherRows[index]!);
        return sum + pt.reduce((inner, p, k) => inner + p * Math.log(p / ps[k]!), 0);
      }, 0);
      const expected = (0.3 * 4 * kl) / 2;
      const teacher: Teacher = (x) =>
        tf.tidy(() => tf.add(tf.tensor2d(teacherRows), tf.mul(x as tf.Tensor, 0)));
      const term = distillation({ teacher, alphaDistil: 0.3 });
      await withLeakGuard(async () => {
        const x = tf.zeros([2, 3]);
        const student = tf.tensor2d(studentRows);
        const value = term.compute(lossContext(student, x));
        // float32 vs double: 1e-5 absolute
        expect(Math.abs((await value.data())[0]! - expected)).toBeLessThan(1e-5);
        const outputs = term.teacherOutputs(x);
        expect(outputs.map((output) => output.shape)).toEqual([[2, 3]]);
        tf.dispose([x, student, value, ...outputs]);
      });
    });

    it('averages the KL of two outputs for span-style models (start and end logits)', async () => {
      const rows = {
        start: [
          [0.1, 2, -1, 0],
          [1, 1, 0.5, 0],
        ],
        end: [
          [2, 0, 0, -1],
          [0, 0.2, 1.4, 0.3],
        ],
        teacherStart: [
          [0, 3, 0, 0],
          [2, 0, 0, 1],
        ],
        teacherEnd: [
          [1, 1, 0, 0],
          [0, 0, 2, 0],
        ],
      };
      const rowKl = (student: number[], teacher: number[]) => {
        const soft = (row: number[]) => {
          const exps = row.map((value) => Math.exp(value / 2));
          const total = exps.reduce((sum, value) => sum + value, 0);
          return exps.map((value) => value / total);
        };
        const ps = soft(student);
        return soft(teacher).reduce((sum, p, k) => sum + p * Math.log(p / ps[k]!), 0);
      };
      const meanKl = (student: number[][], teacher: number[][]) =>
        (4 * (rowKl(student[0]!, teacher[0]!) + rowKl(student[1]!, teacher[1]!))) / 2;
      // α · (T²·KL_start + T²·KL_end) / 2, by hand
      const expected =
        (0.5 * (meanKl(rows.start, rows.teacherStart) + meanKl(rows.end, rows.teacherEnd))) / 2;
      const teacher: Teacher = () => [tf.tensor2d(rows.teacherStart), tf.tensor2d(rows.teacherEnd)];
      await withLeakGuard(async () => {
        const x = tf.zeros([2, 4]);
        const outputs = [tf.tensor2d(rows.start), tf.tensor2d(rows.end)];
        const value = distillation({ teacher }).compute(lossContext(outputs, x));
        // 1e-5 absolute
        expect(Math.abs((await value.data())[0]! - expected)).toBeLessThan(1e-5);
        tf.dispose([x, ...outputs, value]);
      });
    });

    it('reports mismatched teachers and teachers that throw, with shapes and the cause, without leaks', async () => {
      await withLeakGuard(async () => {
        const x = tf.zeros([2, 3]);
        const student = tf.zeros([2, 3]);
        const run = (teacher: Teacher, outputs: tf.Tensor | tf.Tensor[] = student) =>
          errorOf(() => distillation({ teacher }).compute(lossContext(outputs, x)));

        const shape = run(() => tf.zeros([2, 4]));
        expect(shape.code).toBe('SHAPE_MISMATCH');
        expect(shape.message).toMatch(
          /student logits have shape \[2, 3\] but teacher logits have shape \[2, 4\]/,
        );

        const count = run(() => [tf.zeros([2, 3]), tf.zeros([2, 3])]);
        expect(count.code).toBe('SHAPE_MISMATCH');
        expect(count.message).toMatch(/student has 1 output\(s\) \(\[2, 3\]\) but the teacher has 2/);

        const cause = new Error('weights not loaded');
        const thrown = run(() => {
          throw cause;
        });
        expect(thrown.code).toBe('INVALID_ARGUMENT');
        expect(thrown.message).toMatch(/the teacher threw on the batch: weights not loaded/);
        expect(thrown.cause).toBe(cause);

        const inner = run(() => {
          throw new FinepruneError({ code: 'DISPOSED', message: 'gone.', fix: 'Reload it.' });
        });
        expect(inner.code).toBe('DISPOSED');
        expect(FinepruneError.is(inner.cause)).toBe(true);

        // a teacher that leaves tensors behind before it throws: the op's scope frees them
        const messy = run(() => {
          tf.ones([100]);
          throw new Error('half-way');
        });
        expect(messy.message).toMatch(/half-way/);

        expect(run(() => 'logits' as never).message).toMatch(/returned no tensor/);
        expect(run(() => tf.zeros([2, 3], 'int32')).message).toMatch(/int32/);
        expect(run(() => [tf.zeros([2, 3], 'int32'), tf.zeros([2, 3])]).message).toMatch(/int32/);

        const itself = tinyMlp();
        const self = errorOf(() =>
          distillation({ teacher: itself }).compute(lossContext(student, x, itself)),
        );
        expect(self.message).toMatch(/teacher is the model being pruned/);
        itself.dispose();
        tf.dispose([x, student]);
      });
    });

    it('records no teacher gradient: teacher variables get none even when asked for', async () => {
      const student = tinyMlp(6, 5, 3, 1);
      const teacher = tinyMlp(6, 5, 3, 7);
      const term = distillation({ teacher });
      const batch = tinyBatches()(0);
      const variables = [...student.trainableVariables(), ...teacher.trainableVariables()].map(
        ({ variable }) => variable,
      );
      const { value, grads } = tf.variableGrads(
        () => term.compute(lossContext(student.forward(batch.x, { training: true }), batch.x as tf.Tensor)),
        variables,
      );
      // Every student variable gets a gradient that is not all zero (teacher ≠ student, so the KL term
      // pulls); the teacher's forward pass left nothing on the tape, so its variables get none at all.
      for (const { name, variable } of student.trainableVariables()) {
        const gradient = grads[variable.name];
        expect(gradient, name).toBeDefined();
        expect(Math.max(...Array.from(await gradient!.data(), Math.abs)), name).toBeGreaterThan(1e-6);
      }
      for (const { name, variable } of teacher.trainableVariables())
        expect(grads[variable.name], name).toBeUndefined();
      tf.dispose([value, ...Object.values(grads), batch.x as tf.Tensor, batch.y as tf.Tensor]);
      student.dispose();
      teacher.dispose();
    });

    it('keeps no teacher activation on the gradient tape', async () => {
      const student = tinyMlp(6, 5, 3, 1);
      const teacher = tinyMlp(6, 400, 3, 7); // hidden activations: 256 × 400 float32 = 409,600 bytes
      const batch = tinyBatches(6, 3, 256)(0);
      const variables = student.trainableVariables().map(({ variable }) => variable);
      const bytesHeld = (loss: (outputs: tf.Tensor) => tf.Scalar) => {
        let held = 0;
        const { value, grads } = tf.variableGrads(() => {
          const result = loss(student.forward(batch.x, { training: true }) as tf.Tensor);
          held = tf.memory().numBytes; // what the tape keeps for the backward pass, and the rest
          return result;
        }, variables);
        tf.dispose([value, ...Object.values(grads)]);
        return held;
      };
      const term = distillation({ teacher });
      const withTerm = bytesHeld((outputs) =>
        term.compute(lossContext(outputs, batch.x as tf.Tensor, student)),
      );
      const recorded = bytesHeld((outputs) =>
        distillationLoss(outputs, teacher.forward(batch.x, { training: false }), 2),
      );
      // The plain teacher forward inside the tape keeps its hidden activations (≥ 409,600 bytes);
      // the term keeps none of them.
      expect(recorded - withTerm).toBeGreaterThan(409_600);
      tf.dispose([batch.x as tf.Tensor, batch.y as tf.Tensor]);
      student.dispose();
      teacher.dispose();
    });

    it('in a Pruner: one step reports α_ce·taskLoss + term, and the teacher does not change', async () => {
      const student = tinyMlp(6, 5, 3, 1);
      const teacher = tinyMlp(6, 5, 3, 7);
      const term = distillation({ teacher, temperature: 2, alphaDistil: 0.7, alphaCe: 0.3 });
      const pruner = new Pruner({
        model: student,
        scores: testMagnitude,
        mask: testTopK,
        schedule: fixedSparsity(0.5),
        lossTerms: [term],
        optimizers: { weights: adam({ learningRate: 0.01 }) },
      });
      const before = await snapshot(teacher);
      const batch = tinyBatches()(0);
      await pruner.updateMasks(); // the masks the step will use (same weights, same target)
      const [task, distil] = tf.tidy(() => {
        const outputs = student.forward(batch.x, { training: false });
        const teacherLogits = teacher.forward(batch.x, { training: false });
        return [student.loss(outputs, batch), tf.mul(distillationLoss(outputs, teacherLogits, 2), 0.7)];
      });
      const [taskValue, termValue] = [(await task!.data())[0]!, (await distil!.data())[0]!];
      const result = await pruner.trainStep(batch);
      // the same float32 computations in another order: 1e-5
      expect(Math.abs(result.taskLoss - taskValue)).toBeLessThan(1e-5);
      expect(Math.abs(result.loss - (0.3 * taskValue + termValue))).toBeLessThan(1e-5);
      expect(termValue).toBeGreaterThan(0.01); // the teacher differs, so the term is not trivially 0
      for (let step = 1; step < 5; step++) {
        const next = tinyBatches()(step);
        await pruner.trainStep(next);
        tf.dispose([next.x as tf.Tensor, next.y as tf.Tensor]);
      }
      expect(await snapshot(teacher)).toEqual(before);
      tf.dispose([task!, distil!, batch.x as tf.Tensor, batch.y as tf.Tensor]);
      pruner.dispose();
      student.dispose();
      teacher.dispose();
    });

    for (const [label, scores, scoreOptimizer] of [
      ['learned scores', testLearnedScores(0.1), true],
      ['magnitude scores', testMagnitude, false],
    ] as Array<[string, ScoreStrategy, boolean]>) {
      it(`trains the student towards the teacher with ${label}`, async () => {
        const student = tinyMlp(6, 5, 3, 1);
        const teacher = tinyMlp(6, 5, 3, 7);
        // The labels of tinyBatches change with the step, so the task loss can hardly fall; the
        // teacher is a fixed function of x, so the KL to it on a held-out batch must.
        const pruner = new Pruner({
          model: student,
          scores,
          mask: testTopK,
          schedule: fixedSparsity(0.4),
          lossTerms: [distillation({ teacher })],
          optimizers: {
            weights: adam({ learningRate: 0.02 }),
            ...(scoreOptimizer ? { scores: adam({ learningRate: 0.02 }) } : {}),
          },
        });
        const heldOut = tf.randomNormal([64, 6], 0, 1, 'float32', 99);
        await pruner.updateMasks();
        const initial = await klOn(student, teacher, heldOut);
        await pruner.run({ data: tinyBatches(6, 3, 32), untilStep: 60 });
        const final = await klOn(student, teacher, heldOut);
        expect(final).toBeLessThan(0.6 * initial);
        const report = await sparsityReport(student.parameters());
        expect(report.sparsity).toBeCloseTo(0.4, 1);
        if (scoreOptimizer) {
          const [first] = pruner.pruned();
          const values = Array.from(await first!.scores!.data());
          expect(values.some((value) => Math.abs(value - 0.1) > 1e-4)).toBe(true);
        }
        heldOut.dispose();
        pruner.dispose();
        student.dispose();
        teacher.dispose();
      });
    }

    it('leaks no tensor across 20 steps', async () => {
      const student = tinyMlp(6, 5, 3, 1);
      const teacher = tinyMlp(6, 5, 3, 7);
      const pruner = new Pruner({
        model: student,
        scores: testLearnedScores(0.1),
        mask: testTopK,
        schedule: fixedSparsity(0.5),
        lossTerms: [distillation({ teacher })],
        optimizers: { weights: adam({ learningRate: 0.01 }), scores: adam({ learningRate: 0.01 }) },
      });
      await pruner.run({ data: tinyBatches(), untilStep: 1 }); // optimizer slots are created here
      const before = countTensors();
      await pruner.run({ data: tinyBatches(), untilStep: 21 });
      expect(countTensors()).toBe(before);
      pruner.dispose();
      student.dispose();
      teacher.dispose();
    });

    it('runs a PrunableModel teacher with training: false on its masked weights (W ⊙ M)', async () => {
      await withLeakGuard(async () => {
        const weight = tf.tidy(() => tf.variable(tf.tensor2d([[1, -1, 0.5]])));
        const parameter = createPrunableParameter({ name: 'w', group: 'w', kind: 'dense', weight });
        tf.tidy(() => parameter.mask.assign(tf.tensor2d([[1, 0, 1]])));
        const modes: boolean[] = [];
        const teacher: PrunableModel = {
          specVersion: 1,
          name: 'one-layer',
          parameters: () => [parameter],
          forward: (x, { training }) => {
            modes.push(training);
            return tf.tidy(() => tf.matMul(x as tf.Tensor2D, parameter.effectiveWeight() as tf.Tensor2D));
          },
          loss: () => tf.scalar(0),
          trainableVariables: () => [{ name: 'w', variable: weight }],
          frozenVariables: () => [],
        };
        const x = tf.ones([1, 1]);
        const [outputs] = distillation({ teacher }).teacherOutputs(x);
        expect(Array.from(await outputs!.data())).toEqual([1, 0, 0.5]);
        expect(modes).toEqual([false]);
        tf.dispose([outputs!, x, weight, parameter.mask]);
      });
    });
  });
}
