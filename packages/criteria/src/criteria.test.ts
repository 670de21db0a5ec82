import * as tf from '@tensorflow/tfjs-core';
import {
  type Batch,
  type MaskFunction,
  Pruner,
  type PrunableModel,
  type SparsitySchedule,
  sgd,
} from '@fineprune/core';
import { FinepruneError, readFloat32, setBackend, topCountMasks, withLeakGuard } from '@fineprune/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  criterionFromConfig,
  grasp,
  linearModel,
  magnitudeCriterion,
  optimalBrainDamage,
  quadraticModel,
  randomCriterion,
  type SaliencyCriterion,
  synflow,
} from './criteria';
import { type DenseNetwork, denseNetwork } from './dense-network';
import { trainSteps } from './framework';
import { referenceMlp } from './reference-mlp';
import { syntheticBatch } from './test-support';

const context = (model: PrunableModel, step = 0) => ({
  step,
  model,
  random: { next: () => 0.5, nextUint32: () => 0 },
});

async function lossOf(model: PrunableModel, batch: Batch): Promise<number> {
  const loss = tf.tidy(() => model.loss(model.forward(batch.x, { training: false }), batch));
  const value = (await loss.data())[0]!;
  loss.dispose();
  return value;
}

async function saliencies(criterion: SaliencyCriterion, model: PrunableModel): Promise<Float32Array[]> {
  const result: Float32Array[] = [];
  for (const parameter of model.parameters()) {
    const tensor = await criterion.compute({ parameter, scores: undefined }, context(model));
    result.push(await readFloat32(tensor));
    tensor.dispose();
  }
  return result;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`saliency criteria on ${backend}`, () => {
    let linear: DenseNetwork;
    let mlp: DenseNetwork;
    let batch: Batch;
    beforeAll(async () => {
      await setBackend(backend);
      batch = syntheticBatch(128, 6, 3, 21);
      linear = denseNetwork({ units: [6, 3], activation: 'linear', seed: 1 });
      mlp = denseNetwork({ units: [6, 8, 3], activation: 'tanh', seed: 2 });
      // A few steps so that the gradient is not that of a random network.
      for (const model of [linear, mlp]) {
        const optimizer = sgd({ learningRate: 0.1 });
        await trainSteps(model, {
          optimizer,
          batch: () => ({ x: (batch.x as tf.Tensor).clone(), y: (batch.y as tf.Tensor).clone() }),
          steps: 20,
        });
        optimizer.dispose();
      }
    });
    afterAll(() => {
      linear.dispose();
      mlp.dispose();
      tf.dispose([batch.x, batch.y] as tf.TensorContainer);
    });

    it('LM and QM predict the loss change of removing one small weight (linear softmax model: G = H)', async () => {
      const parameter = linear.parameters()[0]!;
      const weights = await readFloat32(parameter.weight);
      const set = (k: number, value: number) =>
        tf.tidy(() => {
          const values = Float32Array.from(weights);
          values[k] = value;
          parameter.weight.assign(tf.tensor(values, parameter.shape as number[]));
        });
      const theta = 0.05; // a small weight: the step Δθ_k = −0.05 is local
      let lmError = 0;
      let qmError = 0;
      for (let k = 0; k < parameter.size; k += 3) {
        set(k, theta);
        const qm = quadraticModel({ gaussNewton: 'exact' });
        await qm.measure(linear, [batch]);
        const g = (await readFloat32(qm.measurements!.gradient!.get(parameter.name)!))[k]!;
        const G = (await readFloat32(qm.measurements!.gaussNewton!.get(parameter.name)!))[k]!;
        qm.dispose();
        const before = await lossOf(linear, batch);
        set(k, 0);
        const actual = (await lossOf(linear, batch)) - before;
        lmError = Math.max(lmError, Math.abs(-g * theta - actual)); // Eq. 6
        qmError = Math.max(qmError, Math.abs(-g * theta + 0.5 * G * theta * theta - actual)); // Eq. 5
      }
      tf.tidy(() => parameter.weight.assign(tf.tensor(weights, parameter.shape as number[])));
      // QM neglects O(θ³), LM O(θ²): QM within 1e-5 absolute and 5× better than LM.
      expect(qmError).toBeLessThan(1e-5);
      expect(qmError).toBeLessThan(lmError / 5);
    });

    it('LM and QM saliencies track the real loss change of removing each weight of a tanh MLP', async () => {
      const lm = linearModel();
      const qm = quadraticModel({ gaussNewton: 'exact' });
      await lm.measure(mlp, [batch]);
      await qm.measure(mlp, [batch]);
      const parameter = mlp.parameters()[1]!; // fc2/kernel, 24 weights
      const weights = await readFloat32(parameter.weight);
      const gradient = await readFloat32(qm.measurements!.gradient!.get(parameter.name)!);
      const curvature = await readFloat32(qm.measurements!.gaussNewton!.get(parameter.name)!);
      const base = await lossOf(mlp, batch);
      let lmError = 0;
      let qmError = 0;
      let scale = 0;
      for (let k = 0; k < parameter.size; k += 1) {
        tf.tidy(() => {
          const values = Float32Array.from(weights);
          values[k] = 0;
          parameter.weight.assign(tf.tensor(values, parameter.shape as number[]));
        });
        const actual = (await lossOf(mlp, batch)) - base;
        const theta = weights[k]!;
        lmError += Math.abs(-gradient[k]! * theta - actual);
        qmError += Math.abs(-gradient[k]! * theta + 0.5 * curvature[k]! * theta * theta - actual);
        scale += Math.abs(actual);
      }
      tf.tidy(() => parameter.weight.assign(tf.tensor(weights, parameter.shape as number[])));
      // The Gauss–Newton term captures most of the curvature: QM's summed error is below LM's and
      // below 25% of the summed real changes.
      expect(qmError).toBeLessThan(lmError);
      expect(qmError / scale).toBeLessThan(0.25);
      lm.dispose();
      qm.dispose();
    });

    it('MP, OBD, LM, QM, GraSP and SynFlow saliencies equal Eqs. 3–6 and C.4 worked out by hand in float64; λ adds ½λθ²', async () => {
      // g, G, H·g and ∂R/∂|θ| come from reference-mlp.ts: the tanh MLP's derivatives written out on
      // float64 arrays (backpropagation, the logit Jacobian per example, a float64 central difference),
      // sharing no code with measure().
      const reference = referenceMlp(mlp, 'tanh');
      const g = reference.gradient(batch);
      const G = reference.gaussNewton(batch);
      const hessianGradient = reference.hessianGradient(batch);
      const flow = reference.synflowGradient();
      const theta = reference.thetas;
      type Expected = (layer: number, k: number) => number;
      const cases: Array<[string, (options: { lambda: number }) => SaliencyCriterion, Expected, number]> = [
        // [id, factory, expected saliency before λ, tolerance as a fraction of the largest saliency]
        // float32 sums over 128 examples against float64: measured ≤ 4e-7, allowed 2e-6.
        ['mp', magnitudeCriterion, (l, k) => theta[l]![k]! ** 2, 2e-6], // Eq. 4
        ['obd', optimalBrainDamage, (l, k) => 0.5 * G[l]![k]! * theta[l]![k]! ** 2, 2e-6], // Eq. 3
        ['lm', linearModel, (l, k) => Math.abs(g[l]![k]! * theta[l]![k]!), 2e-6], // Eq. 6
        [
          'qm',
          quadraticModel,
          (l, k) => Math.abs(-g[l]![k]! * theta[l]![k]! + 0.5 * G[l]![k]! * theta[l]![k]! ** 2), // Eq. 5
          2e-6,
        ],
        // GraSP keeps θ ⊙ Hg; the criterion's float32 central difference (ε‖g‖ = 1e-3‖θ‖) is O(ε²)
        // off the float64 one: measured ≤ 5e-5, allowed 1e-3.
        ['grasp', grasp, (l, k) => theta[l]![k]! * hessianGradient[l]![k]!, 1e-3],
        ['synflow', synflow, (l, k) => Math.abs(theta[l]![k]! * flow[l]![k]!), 2e-6], // |θ ⊙ ∂R/∂θ|
      ];
      for (const lambda of [0, 0.3]) {
        for (const [id, factory, expected, tolerance] of cases) {
          const criterion = factory({ lambda });
          await criterion.measure(mlp, [batch]);
          const scores = await saliencies(criterion, mlp);
          scores.forEach((values, layer) => {
            const wanted = Array.from(
              values,
              (_, k) => expected(layer, k) + 0.5 * lambda * theta[layer]![k]! ** 2,
            );
            const scale = Math.max(...wanted.map(Math.abs));
            const worst = Math.max(...wanted.map((value, k) => Math.abs(values[k]! - value)));
            expect(worst / scale, `${id}, λ = ${lambda}, layer ${layer + 1}`).toBeLessThan(tolerance);
          });
          criterion.dispose();
        }
      }
    });

    it('MP with saliency: "half-square" (the reference code\'s ½θ²) halves every saliency and keeps the same masks, with and without λ', async () => {
      const theta = referenceMlp(mlp, 'tanh').thetas;
      for (const lambda of [0, 0.3]) {
        const square = magnitudeCriterion({ lambda });
        const half = criterionFromConfig(
          'mp',
          magnitudeCriterion({ lambda, saliency: 'half-square' }).toConfig(),
        );
        expect(half.toConfig()).toEqual({ lambda, saliency: 'half-square' });
        const [a, b] = [await saliencies(square, mlp), await saliencies(half, mlp)];
        for (const [layer, values] of a.entries()) {
          for (const [k, value] of values.entries()) {
            const weight = theta[layer]![k]!;
            expect(value).toBeCloseTo(weight ** 2 + 0.5 * lambda * weight ** 2, 6); // Eq. 4 + ½λθ²
            expect(b[layer]![k]!).toBeCloseTo(0.5 * weight ** 2 + 0.5 * lambda * weight ** 2, 6);
          }
        }
        for (const keep of [1, 10, 40, 70]) {
          expect(topCountMasks(b, keep).map((mask) => [...mask])).toEqual(
            topCountMasks(a, keep).map((mask) => [...mask]),
          );
        }
      }
      expect(() => magnitudeCriterion({ saliency: 'cube' as never })).toThrow(/saliency must be/);
    });

    it('λ → ∞ reproduces MP’s ranking (same global masks at every count)', async () => {
      const mp = magnitudeCriterion();
      const reference = await saliencies(mp, mlp);
      for (const factory of [optimalBrainDamage, linearModel, quadraticModel, grasp, synflow]) {
        const criterion = factory({ lambda: 1e9 });
        await criterion.measure(mlp, [batch]);
        const scores = await saliencies(criterion, mlp);
        for (const keep of [1, 10, 40, 70]) {
          const a = topCountMasks(reference, keep);
          const b = topCountMasks(scores, keep);
          expect(b.map((mask) => [...mask])).toEqual(a.map((mask) => [...mask]));
        }
        // Without the penalty every criterion ranks differently from MP at some count, so the
        // agreement above is λ's doing.
        const plain = factory({ lambda: 0 });
        await plain.measure(mlp, [batch]);
        const unpenalised = await saliencies(plain, mlp);
        const differing = [1, 10, 40, 70].filter((keep) => {
          const a = topCountMasks(reference, keep).map((mask) => [...mask]);
          const b = topCountMasks(unpenalised, keep).map((mask) => [...mask]);
          return JSON.stringify(a) !== JSON.stringify(b);
        });
        expect(differing.length, `${criterion.id} at λ = 0`).toBeGreaterThan(0);
        criterion.dispose();
        plain.dispose();
      }
    });

    it('leaks no tensor: measure, compute and dispose of every criterion', async () => {
      const all = [
        magnitudeCriterion(),
        optimalBrainDamage({ gaussNewton: 'sampled' }),
        linearModel(),
        quadraticModel(),
        randomCriterion({ seed: 1 }),
        grasp(),
        synflow(),
      ];
      await withLeakGuard(async () => {
        for (const criterion of all) {
          await criterion.measure(mlp, [batch]);
          const scores = await saliencies(criterion, mlp);
          expect(scores.every((values) => values.every(Number.isFinite))).toBe(true);
          criterion.dispose();
        }
      });
    });

    it('works inside the core Pruner: `data` makes the criterion measure itself once per step', async () => {
      const model = denseNetwork({ units: [6, 8, 3], activation: 'tanh', seed: 4 });
      let measured = 0;
      const criterion = linearModel({
        data: () => {
          measured += 1;
          return [{ x: (batch.x as tf.Tensor).clone(), y: (batch.y as tf.Tensor).clone() }];
        },
      });
      // A minimal global top-count mask (the real one lives in @fineprune/masks).
      const mask: MaskFunction = {
        id: 'test/global-top',
        targetKind: 'sparsity',
        compute: async (inputs, target) => {
          const arrays = await Promise.all(inputs.map((input) => readFloat32(input.scores)));
          const total = arrays.reduce((sum, array) => sum + array.length, 0);
          return topCountMasks(arrays, total - Math.round(target * total)).map((values, index) =>
            tf.tensor(values, [...inputs[index]!.parameter.shape]),
          );
        },
        toConfig: () => ({}),
      };
      const schedule: SparsitySchedule = {
        id: 'test/constant',
        kind: 'sparsity',
        valueAt: () => 0.5,
        updateInterval: 2,
        toConfig: () => ({}),
      };
      const pruner = new Pruner({
        model,
        scores: criterion,
        mask,
        schedule,
        optimizers: { weights: sgd({ learningRate: 0.05 }) },
      });
      await pruner.run({
        data: () => ({ x: (batch.x as tf.Tensor).clone(), y: (batch.y as tf.Tensor).clone() }),
        untilStep: 4,
      });
      expect(measured).toBe(2); // steps 0 and 2, once for both parameters
      const kept = tf.tidy(() => tf.addN(model.parameters().map((parameter) => tf.sum(parameter.mask))));
      expect((await kept.data())[0]).toBe(36); // 72 weights, half kept
      kept.dispose();
      pruner.dispose();
      criterion.dispose();
      model.dispose();
    });

    it('toConfig round-trips through criterionFromConfig, and reading before measuring says NOT_MEASURED', async () => {
      const qm = quadraticModel({ lambda: 0.1, gaussNewton: 'sampled', seed: 3 });
      const copy = criterionFromConfig(qm.id, qm.toConfig());
      expect(copy.toConfig()).toEqual(qm.toConfig());
      expect(copy.id).toBe('qm');
      const error = await Promise.resolve()
        .then(() => qm.compute({ parameter: mlp.parameters()[0]!, scores: undefined }, context(mlp)))
        .catch((caught: unknown) => caught);
      expect(FinepruneError.is(error) && error.code).toBe('NOT_MEASURED');
      expect(() => criterionFromConfig('nope')).toThrow(/Unknown criterion/);
      expect(() => linearModel({ lambda: -1 })).toThrow(/λ/);
    });
  });
}
