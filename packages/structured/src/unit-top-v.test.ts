import * as tf from '@tensorflow/tfjs-core';
import {
  createPrunableParameter,
  type PluginContext,
  type PrunableModel,
  pruneOnce,
  Pruner,
  type Structure,
  sgd,
} from '@fineprune/core';
import { errorOf, rejectionOf, testLinearSchedule, tinyBatches, tinyMlp } from '@fineprune/core/testing';
import { createRandom, setBackend, withLeakGuard } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { structuredFromConfig } from './from-config';
import { valuesOf } from './test-support';
import { unitMagnitude } from './unit-magnitude';
import { unitThreshold } from './unit-threshold';
import { unitTopV } from './unit-top-v';

/** Parameters fc1 [4, 6], fc2 [6, 5], fc3 [5, 2] and the neurons of the two hidden layers. */
function twoHidden(seed: number) {
  const shapes = { 'fc1/kernel': [4, 6], 'fc2/kernel': [6, 5], 'fc3/kernel': [5, 2] } as const;
  const parameters = Object.entries(shapes).map(([name, shape], index) =>
    createPrunableParameter({
      name,
      group: name.split('/')[0]!,
      kind: 'dense',
      weight: tf.tidy(() => tf.variable(tf.randomNormal([...shape], 0, 1, 'float32', seed + index))),
    }),
  );
  const structures: Structure[] = [
    {
      name: 'fc1/neurons',
      kind: 'neuron',
      count: 6,
      members: [
        { parameter: 'fc1/kernel', axis: 1, role: 'output' },
        { parameter: 'fc2/kernel', axis: 0, role: 'input' },
      ],
    },
    {
      name: 'fc2/neurons',
      kind: 'neuron',
      count: 5,
      members: [
        { parameter: 'fc2/kernel', axis: 1, role: 'output' },
        { parameter: 'fc3/kernel', axis: 0, role: 'input' },
      ],
    },
  ];
  const model = {
    name: 'two-hidden',
    parameters: () => parameters,
    structures: () => structures,
  } as unknown as PrunableModel;
  const context = { step: 0, model, random: createRandom(1) } satisfies PluginContext;
  const dispose = () => tf.dispose(parameters.flatMap((parameter) => [parameter.weight, parameter.mask]));
  return { parameters, structures, context, dispose };
}

const unitsOf = (values: number[]) => ({ tensor: tf.tensor1d(values), values });

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`unitTopV and unitThreshold on ${backend}`, () => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it('keeps exactly count − round(v · count) units of each structure (local), ties to the lower index', async () => {
      await withLeakGuard(async () => {
        const { structures, context, dispose } = twoHidden(1);
        const a = unitsOf([5, 1, 4, 4, 0, 2]);
        const b = unitsOf([1, 1, 1, 1, 1]);
        const masks = await unitTopV().computeUnits!(
          [
            { structure: structures[0]!, scores: a.tensor },
            { structure: structures[1]!, scores: b.tensor },
          ],
          0.5,
          context,
        );
        // 6 − 3 = 3 of the first: 5, 4, 4; 5 − round(2.5) = 2 of the tied second: the first two.
        expect(await valuesOf(masks[0]!)).toEqual([1, 0, 1, 1, 0, 0]);
        expect(await valuesOf(masks[1]!)).toEqual([1, 1, 0, 0, 0]);
        const empty = await rejectionOf(
          Promise.resolve(
            unitTopV().computeUnits!([{ structure: structures[1]!, scores: b.tensor }], 0.95, context),
          ),
        );
        expect(empty.code).toBe('EMPTY_MASK');
        expect(empty.message).toContain('"fc2/neurons"');
        tf.dispose([...masks, a.tensor, b.tensor]);
        dispose();
      });
    });

    it('ranks units across structures with global scope, each structure keeping at least one', async () => {
      await withLeakGuard(async () => {
        const { structures, context, dispose } = twoHidden(2);
        const a = unitsOf([9, 8, 7, 6, 5, 4]);
        const b = unitsOf([3.5, 1, 2, 0, 10]);
        const inputs = [
          { structure: structures[0]!, scores: a.tensor },
          { structure: structures[1]!, scores: b.tensor },
        ];
        const global = unitTopV({ scope: 'global' });
        // 11 units at 0.5: 11 − round(5.5) = 5 kept: 10, 9, 8, 7, 6.
        const half = await global.computeUnits!(inputs, 0.5, context);
        expect(await valuesOf(half[0]!)).toEqual([1, 1, 1, 1, 0, 0]);
        expect(await valuesOf(half[1]!)).toEqual([0, 0, 0, 0, 1]);
        // At 0.9, one unit (10) would be kept overall; the first structure keeps its best too.
        const high = await global.computeUnits!(inputs, 0.9, context);
        expect(await valuesOf(high[0]!)).toEqual([1, 0, 0, 0, 0, 0]);
        expect(await valuesOf(high[1]!)).toEqual([0, 0, 0, 0, 1]);
        tf.dispose([...half, ...high, a.tensor, b.tensor]);
        dispose();
      });
    });

    it('pools per-weight scores over every member of a unit, and spreads unit masks over the members', async () => {
      await withLeakGuard(async () => {
        const { parameters, context, dispose } = twoHidden(3);
        const inputs = parameters.map((parameter) => ({ parameter, scores: tf.abs(parameter.weight) }));
        const masks = await unitTopV().compute(inputs, 0.5, context);
        const [w1, w2, w3] = (await Promise.all(
          parameters.map((parameter) => parameter.weight.array()),
        )) as number[][][];
        // Hand-computed L1 norms: column u of fc1 plus row u of fc2 (and column of fc2 plus row of fc3).
        const l1 = (column: (u: number) => number[], row: (u: number) => number[], count: number) =>
          Array.from({ length: count }, (_, u) =>
            [...column(u), ...row(u)].reduce((sum, v) => sum + Math.abs(v), 0),
          );
        const first = l1(
          (u) => w1!.map((r) => r[u]!),
          (u) => w2![u]!,
          6,
        );
        const second = l1(
          (u) => w2!.map((r) => r[u]!),
          (u) => w3![u]!,
          5,
        );
        const top = (values: number[], keep: number) => {
          const cut = [...values].sort((x, y) => y - x)[keep - 1]!;
          return values.map((value) => (value >= cut ? 1 : 0));
        };
        const keptFirst = top(first, 3);
        const keptSecond = top(second, 2);
        const m1 = (await masks[0]!.array()) as number[][];
        const m2 = (await masks[1]!.array()) as number[][];
        const m3 = (await masks[2]!.array()) as number[][];
        expect(m1[0]).toEqual(keptFirst);
        // fc2 belongs to both structures: entry (i, j) is kept when unit i of fc1 and unit j of fc2 are.
        expect(m2.map((row, i) => row.map((value, j) => value === keptFirst[i]! * keptSecond[j]!))).toEqual(
          m2.map((row) => row.map(() => true)),
        );
        expect(m3.map((row) => row[0])).toEqual(keptSecond);
        tf.dispose([...masks, ...inputs.map((input) => input.scores)]);
        dispose();
      });
    });

    it('keeps the units above τ (or σ(S) > τ), and at least minKeptUnits', async () => {
      await withLeakGuard(async () => {
        const { structures, context, dispose } = twoHidden(4);
        const a = unitsOf([2, -1, 0.5, 3, -2, 0.1]);
        const b = unitsOf([-3, -2, -1, -4, -5]);
        const inputs = [
          { structure: structures[0]!, scores: a.tensor },
          { structure: structures[1]!, scores: b.tensor },
        ];
        const raw = await unitThreshold().computeUnits!(inputs, 0.4, context);
        expect(await valuesOf(raw[0]!)).toEqual([1, 0, 1, 1, 0, 0]);
        expect(await valuesOf(raw[1]!)).toEqual([0, 0, 1, 0, 0]); // none above: its best unit
        // σ(S) > 0.5 ⇔ S > 0; two units kept at least.
        const sigmoid = await unitThreshold({ on: 'sigmoid', minKeptUnits: 2 }).computeUnits!(
          inputs,
          0.5,
          context,
        );
        expect(await valuesOf(sigmoid[0]!)).toEqual([1, 0, 1, 1, 0, 1]);
        expect(await valuesOf(sigmoid[1]!)).toEqual([0, 1, 1, 0, 0]);
        expect(errorOf(() => unitThreshold({ minKeptUnits: 0 })).code).toBe('INVALID_SPARSITY');
        tf.dispose([...raw, ...sigmoid, a.tensor, b.tensor]);
        dispose();
      });
    });

    it('scores units by their L2 norm over every member (unitMagnitude), as written out by hand', async () => {
      await withLeakGuard(async () => {
        const model = tinyMlp(2, 2, 2, 5);
        const [fc1, fc2] = model.parameters();
        tf.tidy(() =>
          fc1!.weight.assign(
            tf.tensor2d([
              [3, 1],
              [0, 2],
            ]),
          ),
        );
        tf.tidy(() =>
          fc2!.weight.assign(
            tf.tensor2d([
              [4, 0],
              [2, 1],
            ]),
          ),
        );
        const structure = model.structures!()[0]!;
        const context = { step: 0, model, random: createRandom(1) };
        const l2 = (await unitMagnitude().computeUnits!(
          { structure, members: [fc1!, fc2!], scores: undefined },
          context,
        )) as tf.Tensor;
        const l1 = (await unitMagnitude({ norm: 'l1' }).computeUnits!(
          { structure, members: [fc1!, fc2!], scores: undefined },
          context,
        )) as tf.Tensor;
        // unit 0: column (3, 0) and row (4, 0) → √25 = 5; unit 1: (1, 2) and (2, 1) → √10.
        const norms = await valuesOf(l2);
        expect(norms[0]).toBeCloseTo(5, 5);
        expect(norms[1]).toBeCloseTo(Math.sqrt(10), 5);
        expect(await valuesOf(l1)).toEqual([7, 6]);
        tf.dispose([l2, l1]);
        model.dispose();
      });
    });

    it('prunes neurons once and gradually through the driver, without leaks, and round-trips configs', async () => {
      const model = tinyMlp(6, 8, 3, 9);
      await withLeakGuard(() =>
        pruneOnce(model, { scores: unitMagnitude(), mask: unitTopV(), sparsity: 0.5 }),
      );
      const [fc1, fc2] = model.parameters();
      const kept = async () => {
        const columns = tf.max(fc1!.mask, 0);
        const rows = tf.max(fc2!.mask, 1);
        const result = [await valuesOf(columns), await valuesOf(rows)];
        tf.dispose([columns, rows]);
        return result;
      };
      let [columns, rows] = await kept();
      expect(columns!.reduce((a, b) => a + b, 0)).toBe(4);
      expect(rows).toEqual(columns);
      const pruner = new Pruner({
        model,
        scores: unitMagnitude(),
        mask: unitTopV(),
        schedule: testLinearSchedule(0.75, 6, 2),
        optimizers: { weights: sgd({ learningRate: 0.05 }), scores: sgd({ learningRate: 0.1 }) },
      });
      await withLeakGuard(() => pruner.run({ data: tinyBatches(6, 3), untilStep: 8 }));
      [columns, rows] = await kept();
      expect(columns!.reduce((a, b) => a + b, 0)).toBe(2); // 8 − round(0.75 · 8)
      expect(rows).toEqual(columns);
      for (const plugin of [
        unitTopV({ scope: 'global', keptCount: 'floor' }),
        unitThreshold({ on: 'sigmoid' }),
        unitMagnitude({ norm: 'l1' }),
      ])
        expect(structuredFromConfig(plugin.toConfig()).toConfig()).toEqual(plugin.toConfig());
      expect(errorOf(() => structuredFromConfig({ type: 'nope' })).message).toContain('"nope"');
      expect(errorOf(() => unitTopV({ scope: 'everywhere' as never })).message).toContain('scope must be');
      pruner.dispose();
      model.dispose();
    });
  });
}
