import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { type Batch, sgd } from '@fineprune/core';
import { fromLayersModel } from '@fineprune/layers';
import { FinepruneError, readFloat32, setBackend, withLeakGuard } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearModel, magnitudeCriterion, optimalBrainDamage, quadraticModel } from './criteria';
import { type DenseNetwork, denseNetwork } from './dense-network';
import { pruningFramework, snapshot, spearman, trainSteps } from './framework';
import { pruneInStages } from './staged-pruning';
import { stageSchedule } from './stages';
import { referenceMlp } from './reference-mlp';
import { syntheticBatch } from './test-support';

function clone(batch: Batch): Batch {
  return { x: (batch.x as tf.Tensor).clone(), y: (batch.y as tf.Tensor).clone() };
}

async function keptCount(model: DenseNetwork): Promise<number> {
  const kept = tf.tidy(() => tf.addN(model.parameters().map((parameter) => tf.sum(parameter.mask))));
  const value = (await kept.data())[0]!;
  kept.dispose();
  return value;
}

describe('stage schedules (pure)', () => {
  it('hit the exact final count for linear and exponential schedules, π ∈ {1, 14, 140}', () => {
    const total = 784 * 300 + 300 * 100 + 100 * 10; // 266,200 weights of the paper's MLP
    const finalKept = total - Math.round(0.9885 * total);
    for (const kind of ['linear', 'exponential'] as const) {
      for (const stages of [1, 14, 140]) {
        const counts = stageSchedule({ stages, finalSparsity: 0.9885, kind }).keptCounts(total);
        expect(counts).toHaveLength(stages);
        expect(counts.at(-1)).toBe(finalKept);
        for (let index = 1; index < counts.length; index += 1)
          expect(counts[index]).toBeLessThanOrEqual(counts[index - 1]!);
      }
    }
  });

  it('linear removes equal counts; exponential removes a shrinking count (same fraction of what is left)', () => {
    const linear = stageSchedule({ stages: 4, finalSparsity: 0.8, kind: 'linear' }).keptCounts(1000);
    expect(linear).toEqual([800, 600, 400, 200]);
    const exponential = stageSchedule({ stages: 2, finalSparsity: 0.75, kind: 'exponential' });
    expect(exponential.sparsityAt(1)).toBeCloseTo(0.5, 12);
    const counts = stageSchedule({ stages: 5, finalSparsity: 0.9885, kind: 'exponential' }).keptCounts(
      100_000,
    );
    const removed = [100_000 - counts[0]!, ...counts.slice(1).map((count, index) => counts[index]! - count)];
    for (let index = 1; index < removed.length; index += 1)
      expect(removed[index]).toBeLessThan(removed[index - 1]!);
  });

  it('rejects π < 1 and a target sparsity ≥ 1', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (error) {
        return FinepruneError.is(error) ? error.code : 'other';
      }
      return 'none';
    };
    expect(code(() => stageSchedule({ stages: 0, finalSparsity: 0.9 }))).toBe('INVALID_SCHEDULE');
    expect(code(() => stageSchedule({ stages: 2.5, finalSparsity: 0.9 }))).toBe('INVALID_SCHEDULE');
    expect(code(() => stageSchedule({ stages: 3, finalSparsity: 1 }))).toBe('INVALID_SPARSITY');
    expect(code(() => stageSchedule({ stages: 3, finalSparsity: 1.2 }))).toBe('INVALID_SPARSITY');
  });

  it('keptCount: "half-even" prunes round-half-to-even(κN) as the reference code does (N = 1000, κ = 0.0125: 12, not 13)', () => {
    const halfUp = stageSchedule({ stages: 1, finalSparsity: 0.0125 });
    const halfEven = stageSchedule({ stages: 1, finalSparsity: 0.0125, keptCount: 'half-even' });
    expect(halfUp.keptCounts(1000)).toEqual([987]);
    expect(halfEven.keptCounts(1000)).toEqual([988]);
    // Away from halves the rules agree: κ = 0.0126 prunes 12.6 → 13 either way.
    expect(
      stageSchedule({ stages: 1, finalSparsity: 0.0126, keptCount: 'half-even' }).keptCounts(1000),
    ).toEqual([987]);
    // Every stage follows the rule: linear stages of 0.0125 (12.5 weights each) on N = 1000.
    const linear = (keptCount: 'round' | 'half-even') =>
      stageSchedule({ stages: 4, finalSparsity: 0.05, kind: 'linear', keptCount }).keptCounts(1000);
    expect(linear('round')).toEqual([987, 975, 962, 950]);
    expect(linear('half-even')).toEqual([988, 975, 962, 950]);
    expect(halfEven.toConfig()).toEqual({
      stages: 1,
      finalSparsity: 0.0125,
      kind: 'exponential',
      initialSparsity: 0,
      keptCount: 'half-even',
    });
    expect(() => stageSchedule({ stages: 1, finalSparsity: 0.5, keptCount: 'up' as never })).toThrow(
      /keptCount must be one of/,
    );
  });

  it('Spearman ρ of ranks', () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3], [10, 30, 20])).toBeCloseTo(0.5, 12);
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`pruning in stages on ${backend}`, () => {
    let model: DenseNetwork;
    let batch: Batch;
    beforeAll(async () => {
      await setBackend(backend);
      batch = syntheticBatch(200, 10, 4, 5);
      model = denseNetwork({ units: [10, 16, 4], activation: 'tanh', seed: 8 });
    });
    afterAll(() => {
      model.dispose();
      tf.dispose([batch.x, batch.y] as tf.TensorContainer);
    });

    it('both schedules end at the exact count, re-measure every stage, report ‖Δθ‖₂, and leak nothing', async () => {
      const saved = snapshot(model);
      for (const kind of ['linear', 'exponential'] as const) {
        saved.restore();
        let draws = 0;
        const result = await withLeakGuard(() =>
          pruneInStages({
            model,
            criterion: quadraticModel({ gaussNewton: 'sampled' }),
            schedule: stageSchedule({ stages: 6, finalSparsity: 0.9, kind }),
            scoringData: () => {
              draws += 1;
              return [clone(batch)];
            },
            lossData: () => [clone(batch)],
          }),
        );
        expect(draws).toBe(6);
        expect(result.total).toBe(224);
        expect(await keptCount(model)).toBe(224 - Math.round(0.9 * 224));
        expect(result.stages.at(-1)!.kept).toBe(22);
        expect(result.stages.reduce((sum, stage) => sum + stage.removed, 0)).toBe(224 - 22);
        for (const stage of result.stages) {
          expect(stage.stepNorm).toBeGreaterThan(0);
          expect(Number.isFinite(stage.lossAfter!)).toBe(true);
        }
      }
      // ‖Δθ‖₂ of a one-shot MP step is the norm of the removed weights.
      saved.restore();
      const weights = await Promise.all(model.parameters().map((parameter) => readFloat32(parameter.weight)));
      const all = weights.flatMap((values) => [...values]).sort((a, b) => a * a - b * b);
      const expected = Math.sqrt(all.slice(0, 112).reduce((sum, value) => sum + value * value, 0));
      const oneShot = await pruneInStages({
        model,
        criterion: magnitudeCriterion(),
        schedule: stageSchedule({ stages: 1, finalSparsity: 0.5 }),
      });
      expect(oneShot.stages[0]!.stepNorm).toBeCloseTo(expected, 4);
      saved.restore();
      saved.dispose();
    });

    it('Algorithm 1 end to end: ΔL and the validation gaps equal an independent float64 evaluation of each phase', async () => {
      const saved = snapshot(model);
      // The loss data and the validation data differ, so swapping them would show.
      const validation = syntheticBatch(100, 10, 4, 6);
      // Each phase's network evaluated outside the framework: reference-mlp.ts redoes the forward pass,
      // the mean cross-entropy and the error rate in float64 from the weights and masks read back.
      const phase = () => {
        const reference = referenceMlp(model, 'tanh');
        return { loss: reference.evaluate(batch).loss, error: reference.evaluate(validation).error };
      };
      const measured: Partial<Record<'dense' | 'pruned' | 'fineTuned', ReturnType<typeof phase>>> = {};
      const fineTuneSteps = async () => {
        const optimizer = sgd({ learningRate: 0.1, momentum: 0.9 });
        await trainSteps(model, { optimizer, batch: () => clone(batch), steps: 30, weightDecay: 5e-4 });
        optimizer.dispose();
      };
      const report = await pruningFramework({
        model,
        criterion: linearModel(),
        schedule: stageSchedule({ stages: 3, finalSparsity: 0.8 }),
        train: async () => {
          await fineTuneSteps();
          measured.dense = phase();
        },
        scoringData: () => [clone(batch)],
        fineTune: async () => {
          measured.pruned = phase(); // the pruned network, before fine-tuning
          await fineTuneSteps();
        },
        lossData: () => [clone(batch)],
        validationData: () => [clone(validation)],
      });
      measured.fineTuned = phase();
      const [dense, pruned, fineTuned] = [measured.dense!, measured.pruned!, measured.fineTuned!];
      // float32 forward passes against float64: losses within 1e-5 relative; error rates are counts.
      expect(Math.abs(report.lossBefore - dense.loss)).toBeLessThan(1e-5 * dense.loss);
      expect(Math.abs(report.lossAfter - pruned.loss)).toBeLessThan(1e-5 * pruned.loss);
      expect(Math.abs(report.fineTunedLoss! - fineTuned.loss)).toBeLessThan(1e-5 * fineTuned.loss);
      // Eq. 1: ΔL = |L(θ + Δθ) − L(θ)|; pruning 80% moves the loss well beyond the tolerance.
      expect(Math.abs(pruned.loss - dense.loss)).toBeGreaterThan(0.05);
      expect(Math.abs(report.deltaLoss - Math.abs(pruned.loss - dense.loss))).toBeLessThan(
        2e-5 * pruned.loss,
      );
      expect(report.denseError).toBe(dense.error);
      expect(report.prunedError).toBe(pruned.error);
      expect(report.fineTunedError).toBe(fineTuned.error);
      expect(report.gapBeforeFineTuning).toBeCloseTo(pruned.error - dense.error, 12);
      expect(report.gapAfterFineTuning!).toBeCloseTo(fineTuned.error - dense.error, 12);
      expect(report.stages).toHaveLength(3);
      expect(fineTuned.loss).toBeLessThan(pruned.loss);
      expect(await keptCount(model)).toBe(224 - Math.round(0.8 * 224));
      tf.dispose([validation.x, validation.y] as tf.TensorContainer);
      saved.restore();
      saved.dispose();
    });

    it('names the stage and parameter when a scoring batch does not fit the model', async () => {
      const saved = snapshot(model);
      const wrong = syntheticBatch(8, 7, 4, 1); // 7 features, the model takes 10
      const error = await pruneInStages({
        model,
        criterion: linearModel(),
        schedule: stageSchedule({ stages: 2, finalSparsity: 0.5 }),
        scoringData: (stage) => (stage === 1 ? [clone(batch)] : [clone(wrong)]),
      }).catch((caught: unknown) => caught);
      expect(FinepruneError.is(error) && error.code).toBe('SHAPE_MISMATCH');
      expect((error as Error).message).toMatch(/Stage 2 of 2, parameter "fc1\/kernel"/);
      tf.dispose([wrong.x, wrong.y] as tf.TensorContainer);
      saved.restore();
      saved.dispose();
    });

    it('names the stage and parameter when the loss becomes NaN during scoring', async () => {
      const saved = snapshot(model);
      const poisoned = tf.tidy(() => ({
        x: tf.mul(batch.x as tf.Tensor, tf.scalar(Number.NaN)),
        y: (batch.y as tf.Tensor).clone(),
      }));
      const error = await pruneInStages({
        model,
        criterion: optimalBrainDamage(),
        schedule: stageSchedule({ stages: 3, finalSparsity: 0.5 }),
        scoringData: (stage) => (stage < 3 ? [clone(batch)] : [clone(poisoned)]),
      }).catch((caught: unknown) => caught);
      expect(FinepruneError.is(error) && error.code).toBe('NON_FINITE');
      expect((error as Error).message).toMatch(/Stage 3 of 3, parameter "fc\d\/kernel"/);
      tf.dispose([poisoned.x, poisoned.y] as tf.TensorContainer);
      saved.restore();
      saved.dispose();
    });

    it('a data-driven criterion without scoring data is refused', async () => {
      await expect(
        pruneInStages({
          model,
          criterion: linearModel(),
          schedule: stageSchedule({ stages: 1, finalSparsity: 0.5 }),
        }),
      ).rejects.toThrow(/no scoringData/);
    });

    it('measures any PrunableModel (a tf.LayersModel through fromLayersModel) one example at a time', async () => {
      const layers = tfl.sequential({
        layers: [
          tfl.layers.dense({
            units: 5,
            inputShape: [10],
            activation: 'tanh',
            kernelInitializer: tfl.initializers.glorotUniform({ seed: 1 }),
          }),
          tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.glorotUniform({ seed: 2 }) }),
        ],
      });
      const prunable = fromLayersModel(layers, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
      const small = {
        x: tf.slice(batch.x as tf.Tensor, [0, 0], [20, 10]),
        y: tf.slice(batch.y as tf.Tensor, [0], [20]),
      };
      // The same weights in a DenseHookModel give the reference (fast-path) measurements.
      const twin = denseNetwork({ units: [10, 5, 4], activation: 'tanh' });
      const weights = layers.getWeights();
      tf.tidy(() => {
        twin.parameters()[0]!.weight.assign(weights[0]!);
        twin.parameters()[1]!.weight.assign(weights[2]!);
      });
      const slow = quadraticModel();
      const fast = quadraticModel();
      await slow.measure(prunable, [small]);
      await fast.measure(twin, [small]);
      for (const [index, parameter] of prunable.parameters().entries()) {
        const a = await readFloat32(slow.measurements!.gaussNewton!.get(parameter.name)!);
        const b = await readFloat32(fast.measurements!.gaussNewton!.get(twin.parameters()[index]!.name)!);
        const scale = Math.max(...b.map(Math.abs));
        for (const [k, value] of a.entries()) expect(Math.abs(value - b[k]!) / scale).toBeLessThan(1e-4);
      }
      slow.dispose();
      fast.dispose();
      tf.dispose([small.x, small.y]);
      twin.dispose();
      prunable.dispose();
      layers.dispose();
    });
  });
}
