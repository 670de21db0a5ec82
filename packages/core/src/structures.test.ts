import * as tf from '@tensorflow/tfjs-core';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { sgd } from './optimizers';
import { pruneOnce } from './prune-once';
import { Pruner } from './pruner';
import {
  checkStructures,
  expandUnits,
  keptUnits,
  parameterMasksFromUnits,
  poolUnits,
  type Structure,
  type StructureMember,
} from './structures';
import {
  errorOf,
  fixedSparsity,
  rejectionOf,
  testTopK,
  testUnitMagnitude,
  testUnitScores,
  testUnitTopK,
  tinyBatches,
  tinyMlp,
} from './testing';
import type { PrunableModel } from './types';

/** Axis 1 of a [2, 12] tensor: 2 blocks of 3 units of width 2, so entry i belongs to unit ⌊i/2⌋ mod 3. */
const INTERLEAVED: StructureMember = { parameter: 'w', axis: 1, role: 'input', repeats: 2, width: 2 };

async function leakFree<T>(fn: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  const result = await fn();
  expect(tf.memory().numTensors).toBe(before);
  return result;
}

/** The loss of the tiny MLP on one batch with the masks as they are (soft values allowed). */
async function lossWithMasks(
  model: ReturnType<typeof tinyMlp>,
  batch: ReturnType<ReturnType<typeof tinyBatches>>,
) {
  const loss = tf.tidy(() => model.loss(model.forward(batch.x, { training: false }), batch));
  const value = (await loss.data())[0]!;
  loss.dispose();
  return value;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`structures on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('spreads unit values by repeats, count and width, and pools and differentiates back per unit', async () => {
      await leakFree(async () => {
        const values = tf.tensor1d([10, 20, 30]);
        const spread = expandUnits(values, INTERLEAVED, [2, 12]);
        const row = [10, 10, 20, 20, 30, 30, 10, 10, 20, 20, 30, 30];
        expect(Array.from(await spread.data())).toEqual([...row, ...row]);
        // G = 0…23 as [2, 12]; unit 0 owns columns 0, 1, 6, 7 of both rows, and so on.
        const entries = tf.tidy(() => tf.reshape(tf.range(0, 24, 1, 'float32'), [2, 12]));
        const gradient = tf.grad((unit: tf.Tensor) =>
          tf.sum(tf.mul(expandUnits(unit, INTERLEAVED, [2, 12]), entries)),
        )(values);
        // unit 0: (0 + 1 + 6 + 7) + (12 + 13 + 18 + 19) = 76; unit 1: 22 + 70 = 92; unit 2: 30 + 78 = 108
        expect(Array.from(await gradient.data())).toEqual([76, 92, 108]);
        const sums = poolUnits(entries, INTERLEAVED, 3, 'sum');
        const maxima = poolUnits(entries, INTERLEAVED, 3, 'max');
        const squares = poolUnits(entries, INTERLEAVED, 3, 'sumOfSquares');
        expect(Array.from(await sums.data())).toEqual([76, 92, 108]);
        expect(Array.from(await maxima.data())).toEqual([19, 21, 23]);
        // unit 0: 0² + 1² + 6² + 7² + 12² + 13² + 18² + 19² = 86 + 998
        expect((await squares.data())[0]).toBe(1084);
        tf.dispose([values, spread, entries, gradient, sums, maxima, squares]);
      });
    });

    it('differentiates the spread of a convolution kernel member (rank 6 once split) per unit', async () => {
      await leakFree(async () => {
        // A [1, 2, 2, 3] kernel, units on axis 3: unit u owns entries u, u + 3, u + 6, u + 9.
        const member: StructureMember = { parameter: 'k', axis: 3, role: 'output' };
        const entries = tf.tidy(() => tf.reshape(tf.range(0, 12, 1, 'float32'), [1, 2, 2, 3]));
        const values = tf.tensor1d([1, 2, 3]);
        const gradient = tf.grad((unit: tf.Tensor) =>
          tf.sum(tf.mul(expandUnits(unit, member, [1, 2, 2, 3]), entries)),
        )(values);
        // unit 0: 0 + 3 + 6 + 9 = 18; unit 1: 22; unit 2: 26
        expect(Array.from(await gradient.data())).toEqual([18, 22, 26]);
        tf.dispose([entries, values, gradient]);
      });
    });

    it('multiplies the unit masks of every structure that touches a parameter', async () => {
      const model = tinyMlp(4, 3, 2);
      const structures: Structure[] = [
        ...model.structures!(),
        {
          name: 'fc2/outputs',
          kind: 'neuron',
          count: 2,
          members: [{ parameter: 'fc2/kernel', axis: 1, role: 'output' }],
        },
      ];
      await leakFree(async () => {
        const unitMasks = [tf.tensor1d([1, 0, 1]), tf.tensor1d([0, 1])];
        const [first, second] = parameterMasksFromUnits(structures, unitMasks, model.parameters());
        expect(await first!.array()).toEqual([
          [1, 0, 1],
          [1, 0, 1],
          [1, 0, 1],
          [1, 0, 1],
        ]);
        // fc2/kernel [3, 2]: row 1 gone (hidden unit 1), column 0 gone (output unit 0).
        expect(await second!.array()).toEqual([
          [0, 1],
          [0, 0],
          [0, 1],
        ]);
        tf.dispose([...unitMasks, first!, second!]);
      });
      model.dispose();
    });

    it('refuses structures that do not fit the parameters, naming the structure and the fix', () => {
      const model = tinyMlp(4, 3, 2);
      const parameters = model.parameters();
      const base = model.structures!()[0]!;
      const wrongCount = errorOf(() => checkStructures([{ ...base, count: 4 }], parameters));
      expect(wrongCount.code).toBe('SHAPE_MISMATCH');
      expect(wrongCount.message).toContain('fc1/neurons');
      expect(wrongCount.message).toContain('repeats · count · width = 1 · 4 · 1');
      const unknown = errorOf(() =>
        checkStructures(
          [{ ...base, members: [{ parameter: 'fc9/kernel', axis: 0, role: 'input' }] }],
          parameters,
        ),
      );
      expect(unknown.message).toContain('"fc9/kernel"');
      expect(errorOf(() => checkStructures([{ ...base, name: 'fc1/kernel' }], parameters)).message).toContain(
        'named twice, or like a parameter',
      );
      expect(
        errorOf(() => checkStructures([{ ...base, members: [{ ...base.members[0]!, axis: 2 }] }], parameters))
          .message,
      ).toContain('axis 2 is out of range');
      model.dispose();
    });

    it('prunes whole neurons once: the units with the smallest L1 norm over both kernels go', async () => {
      const model = tinyMlp(6, 5, 3);
      const [fc1, fc2] = model.parameters();
      const first = (await fc1!.weight.array()) as number[][];
      const second = (await fc2!.weight.array()) as number[][];
      // The L1 norm of hidden unit u: column u of fc1 plus row u of fc2, by hand.
      const norms = [0, 1, 2, 3, 4].map(
        (unit) =>
          first.reduce((sum, row) => sum + Math.abs(row[unit]!), 0) +
          second[unit]!.reduce((sum, value) => sum + Math.abs(value), 0),
      );
      const expectedKept = [...norms.keys()].sort((a, b) => norms[b]! - norms[a]!).slice(0, 3);
      const report = await leakFree(() =>
        pruneOnce(model, { scores: testUnitMagnitude, mask: testUnitTopK, sparsity: 0.4 }),
      );
      expect(report.units).toEqual([{ name: 'fc1/neurons', kind: 'neuron', count: 5, kept: 3 }]);
      const keptColumns = ((await fc1!.mask.array()) as number[][])[0]!;
      const keptRows = ((await fc2!.mask.array()) as number[][]).map((row) => row[0]!);
      const expected = [0, 1, 2, 3, 4].map((unit) => (expectedKept.includes(unit) ? 1 : 0));
      expect(keptColumns).toEqual(expected);
      expect(keptRows).toEqual(expected);
      expect((await keptUnits(model.structures!()[0]!, model.parameters())).map(Number)).toEqual(expected);
      model.dispose();
    });

    it('gives each learned unit score Eq. 2 summed over its unit: the derivative of the loss by the unit’s gate (central differences)', async () => {
      const model = tinyMlp(6, 5, 3, 4);
      const initial = [0.3, -0.1, 0.5, 0.2, 0.4];
      const pruner = new Pruner({
        model,
        scores: testUnitScores(initial),
        mask: testUnitTopK,
        schedule: fixedSparsity(0.4),
        // Weights frozen and plain SGD at rate 1 on the scores: S₁ − S₀ = −∂L/∂S exactly.
        freeze: () => true,
        optimizers: { weights: sgd({ learningRate: 1 }), scores: sgd({ learningRate: 1 }) },
      });
      const batch = tinyBatches(6, 3, 16)(0);
      const before = tf.memory().numTensors;
      await pruner.trainStep(batch);
      expect(tf.memory().numTensors).toBe(before);
      const scores = pruner.prunedUnits()[0]!.scores;
      const gradient = Array.from(await scores!.data(), (value, unit) => initial[unit]! - value);
      // Masks of that step: the top 3 initial scores (units 0, 2, 4).
      const [fc1, fc2] = model.parameters();
      expect(((await fc1!.mask.array()) as number[][])[0]).toEqual([1, 0, 1, 0, 1]);
      const masks = [fc1!.mask.clone(), fc2!.mask.clone()];
      const structure = model.structures!()[0]!;
      const epsilon = 1e-2;
      for (let unit = 0; unit < 5; unit += 1) {
        const gate = (sign: number) => {
          const oneHot = tf.mul(tf.reshape(tf.oneHot([unit], 5), [5]), sign * epsilon);
          for (const [index, parameter] of [fc1!, fc2!].entries()) {
            const spread = expandUnits(oneHot, structure.members[index]!, parameter.shape);
            parameter.mask.assign(tf.add(masks[index]!, spread));
          }
        };
        tf.tidy(() => gate(1));
        const up = await lossWithMasks(model, batch);
        tf.tidy(() => gate(-1));
        const down = await lossWithMasks(model, batch);
        const difference = (up - down) / (2 * epsilon);
        expect(Math.abs(gradient[unit]! - difference)).toBeLessThanOrEqual(
          2e-3 + 1e-2 * Math.abs(difference),
        );
      }
      // Kept units move. A unit masked in its kernel and in its reader gets only what flows through
      // what remains of it: relu(bias) = relu(0) = 0 here, so the loss is flat in its gate.
      expect([0, 2, 4].every((unit) => Math.abs(gradient[unit]!) > 1e-4)).toBe(true);
      // (the difference of float32 scores read back, so within one float32 rounding of 0)
      expect(Math.max(Math.abs(gradient[1]!), Math.abs(gradient[3]!))).toBeLessThan(1e-7);
      tf.dispose([...masks, batch.x, batch.y] as tf.Tensor[]);
      pruner.dispose();
      model.dispose();
    });

    it('saves and restores learned unit scores with the pruner state', async () => {
      const model = tinyMlp(6, 5, 3);
      const make = () =>
        new Pruner({
          model,
          scores: testUnitScores(0.1),
          mask: testUnitTopK,
          schedule: fixedSparsity(0.2),
          optimizers: { weights: sgd({ learningRate: 0.1 }), scores: sgd({ learningRate: 0.1 }) },
        });
      const pruner = make();
      await pruner.run({ data: tinyBatches(), untilStep: 3 });
      const state = pruner.exportState();
      expect(state.tensors['scores/fc1/neurons']?.shape).toEqual([5]);
      const saved = Array.from(await state.tensors['scores/fc1/neurons']!.data());
      pruner.dispose();
      const resumed = make();
      resumed.loadState(state);
      expect(Array.from(await resumed.prunedUnits()[0]!.scores!.data())).toEqual(saved);
      tf.dispose(Object.values(state.tensors));
      const broken = resumed.exportState();
      broken.tensors['scores/fc1/neurons']!.dispose();
      broken.tensors['scores/fc1/neurons'] = tf.zeros([4]);
      expect(errorOf(() => resumed.loadState(broken)).code).toBe('CHECKPOINT_MISMATCH');
      tf.dispose(Object.values(broken.tensors));
      resumed.dispose();
      model.dispose();
    });

    it('refuses unit scores with a weight mask, and a unit mask on a model without structures', async () => {
      const model = tinyMlp();
      const optimizers = { weights: sgd({ learningRate: 0.1 }), scores: sgd({ learningRate: 0.1 }) };
      const weightMask = errorOf(
        () =>
          new Pruner({
            model,
            scores: testUnitScores(),
            mask: testTopK,
            schedule: fixedSparsity(0.5),
            optimizers,
          }),
      );
      expect(weightMask.code).toBe('INCOMPATIBLE_PLUGINS');
      expect(weightMask.message).toContain('scores units');
      const plain: PrunableModel = { ...model, name: 'plain', structures: undefined };
      const noStructures = await rejectionOf(
        pruneOnce(plain, { scores: testUnitMagnitude, mask: testUnitTopK, sparsity: 0.5 }),
      );
      expect(noStructures.code).toBe('INCOMPATIBLE_PLUGINS');
      expect(noStructures.message).toContain('lists no structures');
      const empty: PrunableModel = { ...model, name: 'empty', structures: () => [] };
      const outside = await rejectionOf(
        pruneOnce(empty, { scores: testUnitMagnitude, mask: testUnitTopK, sparsity: 0.5 }),
      );
      expect(outside.code).toBe('INCOMPATIBLE_PLUGINS');
      expect(outside.message).toContain('no structure of model "empty" touches');
      model.dispose();
    });
  });
}
