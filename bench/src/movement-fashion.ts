/**
 * A small reproduction of the claim of Movement Pruning (Sanh et al., 2020, Table 2): when a
 * pretrained model is fine-pruned on a new task to high sparsity, first-order methods (MvP, soft
 * MvP, L0) keep more accuracy than magnitude pruning (MaP), with SMvP ≥ MvP > MaP at 3%.
 *
 * Transfer setting: the 784-300-100-10 MLP is pretrained on MNIST, then fine-pruned on
 * Fashion-MNIST with MaP (magnitude + local Top-v), MvP (movement + local Top-v), SMvP (movement +
 * threshold + λ Σ σ(S)) and L0 (l0 + hard-concrete + λ E[L0]) at 10% and 3% remaining weights,
 * several seeds each; also dense fine-tuning for reference. `--remaining` sets the targets (Fig. 2 of
 * the paper: a sweep such as 0.5,0.3,0.2,0.1,0.05,0.03,0.01). SMvP and L0 have no sparsity target:
 * their λ is given per target (`--smvpLambdas 0.1:2e-5,0.03:1e-4`, or a list in the order of
 * `--remaining`) or calibrated by probe runs on a separate seed (piecewise log-log interpolation of
 * the kept fraction against λ), and the sparsity actually reached is reported. Partial results are
 * written after every run. Writes results/movement-fashion.json (or `--output`).
 *
 *   cd bench && npx tsx --conditions=source src/movement-fashion.ts [--epochs 2] [--seeds 3 | 2-3 | 1,3]
 *     [--remaining 0.1,0.03] [--methods dense,MaP,MvP,SMvP,L0] [--smvpLambdas …] [--l0Lambdas …]
 */
import { parseArgs } from 'node:util';
import * as tfl from '@tensorflow/tfjs-layers';
import { Pruner, adam, evaluateClassifier, sparsityReport } from '@fineprune/core';
import { batches, evaluationBatches, loadFashionMnist, loadMnist } from '@fineprune/datasets';
import { fromLayersModel } from '@fineprune/layers';
import { topV } from '@fineprune/masks';
import { constant } from '@fineprune/schedulers';
import { magnitude } from '@fineprune/scores';
import { mean, std, writeResult, selectBackend, runIfScript } from './harness';
import { type PaperMethod, paperRecipe } from './paper-recipes';

type Method = PaperMethod;

function mlp(): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.dense({
        name: 'dense_1',
        units: 300,
        activation: 'relu',
        inputShape: [784],
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 7 }),
      }),
      tfl.layers.dense({
        name: 'dense_2',
        units: 100,
        activation: 'relu',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 8 }),
      }),
      tfl.layers.dense({
        name: 'dense_3',
        units: 10,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: 9 }),
      }),
    ],
  });
}

/**
 * λ per target from `0.1:2e-5,0.03:1e-4` (target:λ pairs) or `2e-5,1e-4` (in the order of the
 * targets); every target needs one.
 *
 * @example
 * ```ts
 * lambdasPerTarget('0.1:3.71e-4,0.03:8.51e-4', [0.1, 0.03], 'SMvP'); // { 0.1: 3.71e-4, 0.03: 8.51e-4 }
 * ```
 */
export function lambdasPerTarget(
  spec: string,
  targets: readonly number[],
  method: string,
): Record<number, number> {
  const entries = spec.split(',').filter((entry) => entry !== '');
  const pairs = entries.every((entry) => entry.includes(':'))
    ? entries.map((entry) => entry.split(':').map(Number) as [number, number])
    : entries.map((entry, index) => [targets[index]!, Number(entry)] as [number, number]);
  const lambdas = Object.fromEntries(pairs) as Record<number, number>;
  for (const target of targets) {
    if (!(lambdas[target]! >= 0))
      throw new Error(
        `${method}: no λ for the target ${target} in "${spec}" (targets: ${targets.join(', ')})`,
      );
  }
  return lambdas;
}

/**
 * `3` → seeds 1, 2, 3; `2,3` or `2-3` → seeds 2 and 3 (a process per seed gives the same runs).
 *
 * @example
 * ```ts
 * seedList('2-3'); // [2, 3]
 * ```
 */
export function seedList(spec: string): number[] {
  if (/^\d+-\d+$/.test(spec)) {
    const [first, last] = spec.split('-').map(Number) as [number, number];
    return Array.from({ length: last - first + 1 }, (_, index) => first + index);
  }
  if (spec.includes(',')) return spec.split(',').map(Number);
  return Array.from({ length: Number(spec) }, (_, index) => index + 1);
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      epochs: { type: 'string', default: '2' },
      pretrainEpochs: { type: 'string', default: '3' },
      seeds: { type: 'string', default: '3' },
      remaining: { type: 'string', default: '0.1,0.03' },
      smvpLambdas: { type: 'string', default: '' },
      l0Lambdas: { type: 'string', default: '' },
      probeLambdasSmvp: { type: 'string', default: '2e-5,1e-4,5e-4' },
      probeLambdasL0: { type: 'string', default: '2e-5,1e-4,5e-4' },
      methods: { type: 'string', default: 'dense,MaP,MvP,SMvP,L0' },
      output: { type: 'string', default: 'movement-fashion' },
    },
  });
  const started = performance.now();
  const backend = await selectBackend(values.backend!);
  const epochs = Number(values.epochs);
  const seeds = seedList(values.seeds!);
  const methods = values.methods!.split(',') as Method[];
  const targets = values.remaining!.split(',').map(Number); // remaining weights
  const mnist = await loadMnist();
  const fashion = await loadFashionMnist();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);

  // 1. Pretrain on MNIST (dense).
  const pretrainModel = mlp();
  const pretrainPrunable = fromLayersModel(pretrainModel, {
    loss: 'sparseCategoricalCrossentropy',
    fromLogits: true,
  });
  const pretrainSource = batches(mnist.train, { batchSize: 100, seed: 0 });
  const pretrainSteps = Number(values.pretrainEpochs) * pretrainSource.stepsPerEpoch;
  const pretrainer = new Pruner({
    model: pretrainPrunable,
    scores: magnitude(),
    mask: topV(),
    schedule: constant({ sparsity: 0, updateInterval: pretrainSteps }),
    optimizers: { weights: adam({ learningRate: 1e-3 }) },
  });
  await pretrainer.run({ data: pretrainSource, untilStep: pretrainSteps });
  const pretrainedMnist = await evaluateClassifier(pretrainPrunable, evaluationBatches(mnist.test, 1000));
  const pretrainedFashion = await evaluateClassifier(pretrainPrunable, evaluationBatches(fashion.test, 1000));
  const pretrained = pretrainPrunable
    .variables()
    .map(({ name, variable }) => ({ name, value: variable.clone() }));
  pretrainer.dispose();
  pretrainPrunable.dispose();
  pretrainModel.dispose();
  log(
    `pretrained on MNIST: ${(pretrainedMnist.accuracy * 100).toFixed(2)}% (Fashion-MNIST before fine-tuning: ${(pretrainedFashion.accuracy * 100).toFixed(2)}%)`,
  );

  const source = (seed: number) => batches(fashion.train, { batchSize: 100, seed });
  const totalSteps = epochs * source(0).stepsPerEpoch;
  const warmupSteps = Math.round(0.1 * totalSteps);
  const cooldownSteps = Math.round(0.2 * totalSteps);

  /** One fine-pruning run; returns test accuracy and the sparsity reached. */
  const runOnce = async (method: Method, remaining: number, seed: number, lambda?: number) => {
    const model = mlp();
    const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy', fromLogits: true });
    for (const { name, variable } of prunable.variables())
      variable.assign(pretrained.find((entry) => entry.name === name)!.value);
    const weights = adam({ learningRate: 1e-3 });
    const scoresOptimizer = adam({ learningRate: 1e-2 });
    const recipe = paperRecipe({
      method,
      remaining,
      totalSteps,
      warmupSteps,
      cooldownSteps,
      lambda,
      weights,
      scores: scoresOptimizer,
    });
    const pruner = new Pruner({ model: prunable, ...recipe, seed });
    const runStart = performance.now();
    await pruner.run({ data: source(seed), untilStep: totalSteps });
    const seconds = (performance.now() - runStart) / 1000;
    await pruner.updateMasks(); // final masks from the final scores (L0: the deterministic M̂)
    const metrics = await evaluateClassifier(prunable, evaluationBatches(fashion.test, 1000));
    const report = await sparsityReport(prunable.parameters());
    pruner.dispose();
    prunable.dispose();
    model.dispose();
    return {
      accuracy: metrics.accuracy,
      remaining: 1 - report.sparsity,
      perLayerRemaining: report.parameters.map((row) => Math.round((row.kept / row.total) * 10000) / 10000),
      seconds: Math.round(seconds * 10) / 10,
      msPerStep: Math.round((seconds / totalSteps) * 100000) / 100,
    };
  };

  const result: Record<string, unknown> = {
    backend: backend.backend,
    flags: values,
    setting: {
      model: '784-300-100-10 ReLU MLP',
      pretraining: `MNIST, ${values.pretrainEpochs} epochs, Adam 1e-3, batch 100`,
      fineTuning: `Fashion-MNIST, ${epochs} epochs (${totalSteps} steps), batch 100, Adam 1e-3 for weights, Adam 1e-2 for scores`,
      schedule: `cubic (Eq. 5) with ${warmupSteps} warm-up and ${cooldownSteps} cool-down steps; MaP/MvP local Top-v (target every 10 steps; MvP masks every step); SMvP keeps σ(S) > τ with τ 0 → 0.1, λ ramped by τ/τ_f, floor 0.5% per matrix; L0 b = 2/3, l = −0.1, r = 1.1, test-time M̂`,
      seeds,
    },
    pretrained: {
      mnistAccuracy: pretrainedMnist.accuracy,
      fashionAccuracyBeforeFineTuning: pretrainedFashion.accuracy,
    },
  };
  const save = () =>
    writeResult(values.output!, { ...result, seconds: Math.round((performance.now() - started) / 1000) });

  // 2. Calibrate λ for SMvP and L0 (no sparsity target of their own) on probe runs with seed 100.
  const calibration: Record<string, Array<{ lambda: number; remaining: number }>> = {};
  const lambdaFor: Record<string, Record<number, number>> = {};
  for (const [method, fixed, probes] of [
    ['SMvP', values.smvpLambdas, values.probeLambdasSmvp],
    ['L0', values.l0Lambdas, values.probeLambdasL0],
  ] as const) {
    if (!methods.includes(method)) continue;
    if (fixed) {
      lambdaFor[method] = lambdasPerTarget(fixed, targets, method);
      continue;
    }
    const points: Array<{ lambda: number; remaining: number }> = [];
    for (const lambda of probes!.split(',').map(Number)) {
      const probe = await runOnce(method, 0.1, 100, lambda);
      points.push({ lambda, remaining: probe.remaining });
      log(
        `probe ${method} λ=${lambda}: ${(probe.remaining * 100).toFixed(2)}% remaining, ${(probe.accuracy * 100).toFixed(2)}%`,
      );
    }
    calibration[method] = points;
    // Piecewise-linear interpolation of log(λ) against log(remaining) between the two probes that
    // bracket each target (or the two nearest, extrapolating), since the curve bends.
    const sorted = [...points].sort((a, b) => b.remaining - a.remaining);
    lambdaFor[method] = Object.fromEntries(
      targets.map((target) => {
        let index = sorted.findIndex(
          (point, i) =>
            i + 1 < sorted.length && point.remaining >= target && sorted[i + 1]!.remaining <= target,
        );
        if (index < 0) index = target > sorted[0]!.remaining ? 0 : sorted.length - 2;
        const a = sorted[index]!;
        const b = sorted[index + 1]!;
        const ya = Math.log(Math.max(a.remaining, 1e-4));
        const yb = Math.log(Math.max(b.remaining, 1e-4));
        const fraction = yb === ya ? 0.5 : (Math.log(target) - ya) / (yb - ya);
        const lambda = Math.exp(Math.log(a.lambda) + fraction * (Math.log(b.lambda) - Math.log(a.lambda)));
        return [target, Number(lambda.toPrecision(3))]; // three digits, printed as used
      }),
    );
    log(
      `${method}: λ ${targets.map((target) => `${target * 100}% ${lambdaFor[method]![target]!.toExponential(3)}`).join(', ')}`,
    );
  }
  result.calibration = { probes: calibration, lambda: lambdaFor };
  save();

  // 3. The table.
  const runs: Array<Record<string, unknown>> = [];
  result.runs = runs;
  // Seeds outermost, so that a run cut short still has every cell of the table for its first seeds.
  for (const seed of seeds) {
    for (const target of targets) {
      for (const method of methods) {
        if (method === 'dense' && target !== targets[0]) continue;
        const lambda = lambdaFor[method]?.[target];
        const outcome = await runOnce(method, target, seed, lambda);
        runs.push({
          method,
          target: method === 'dense' ? 1 : target,
          seed,
          ...(lambda !== undefined ? { lambda } : {}),
          ...outcome,
        });
        log(
          `${method} ${method === 'dense' ? '' : `${target * 100}%`} seed ${seed}: ${(outcome.accuracy * 100).toFixed(2)}% at ${(outcome.remaining * 100).toFixed(2)}% remaining (${outcome.msPerStep} ms/step)`,
        );
        save();
      }
    }
  }
  const table: Array<Record<string, unknown>> = [];
  for (const method of methods) {
    for (const target of method === 'dense' ? [1] : targets) {
      const rows = runs.filter((run) => run.method === method && run.target === target);
      if (rows.length === 0) continue;
      const accuracy = rows.map((row) => (row.accuracy as number) * 100);
      const remaining = rows.map((row) => (row.remaining as number) * 100);
      table.push({
        method,
        targetRemainingPercent: target * 100,
        accuracyMean: Math.round(mean(accuracy) * 100) / 100,
        accuracyStd: Math.round(std(accuracy) * 100) / 100,
        remainingPercentMean: Math.round(mean(remaining) * 1000) / 1000,
        remainingPercentStd: Math.round(std(remaining) * 1000) / 1000,
        runs: rows.length,
      });
    }
  }
  result.table = table;
  for (const entry of pretrained) entry.value.dispose();
  const file = save();
  console.table(table);
  console.log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
