/**
 * Reproduction of "Revisiting Loss Modelling for Unstructured Pruning" on MNIST (Table 1, Table 2,
 * Fig. 3): the MLP 784-300-100-10 (tanh), 10,000 training examples held out for validation
 * (Appendix B.1), pruned to 98.85% sparsity with MP, OBD, LM and QM in π stages (exponential and
 * linear schedules), λ over a grid, then one fine-tuning phase with the training hyper-parameters
 * (SGD, lr 0.01, momentum 0.9, L2 5e-4, batch 100), shortened. Each seed's dense network is trained
 * once and restored before every configuration. Results are written after every configuration to
 * results/loss-modelling-mnist.json, so an interrupted run still leaves what it finished.
 *
 *   cd bench && nice -n 10 npx tsx --conditions=source src/loss-modelling-mnist.ts \
 *     [--seeds 5] [--epochs 4] [--fine-tune-steps 500] [--lambdas 0,0.01,1] [--stages 1,14,140]
 *     [--stages-all-lambdas 1,14] [--fine-tune-lambdas 0] [--gauss-newton sampled] [--backend wasm]
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateClassifier, sgd } from '@fineprune/core';
import {
  denseNetwork,
  linearModel,
  magnitudeCriterion,
  optimalBrainDamage,
  quadraticModel,
  type SaliencyCriterion,
  type StageScheduleKind,
  pruningFramework,
  snapshot,
  stageSchedule,
  trainSteps,
} from '@fineprune/criteria';
import { batches, evaluationBatches, loadMnist, type Split, splitValidation } from '@fineprune/datasets';
import { writeResult, selectBackend } from './harness';

const SPARSITY = 0.9885;

interface Run {
  seed: number;
  criterion: string;
  stages: number;
  schedule: StageScheduleKind;
  lambda: number;
  lossBefore: number;
  lossAfter: number;
  deltaLoss: number;
  denseError: number;
  prunedError: number;
  gapBeforeFineTuning: number;
  fineTunedError: number | null;
  gapAfterFineTuning: number | null;
  stepNorms: number[];
  maxStepNorm: number;
  seconds: number;
}

function head(split: Split, count: number): Split {
  return {
    images: split.images.subarray(0, count * split.featureSize),
    labels: split.labels.subarray(0, count),
    count,
    featureSize: split.featureSize,
  };
}

function list(value: string): number[] {
  return value.split(',').filter(Boolean).map(Number);
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      seeds: { type: 'string', default: '5' },
      epochs: { type: 'string', default: '4' },
      'fine-tune-steps': { type: 'string', default: '500' },
      lambdas: { type: 'string', default: '0,0.01,1' },
      stages: { type: 'string', default: '1,14,140' },
      'stages-all-lambdas': { type: 'string', default: '1,14' },
      'fine-tune-lambdas': { type: 'string', default: '0' },
      'gauss-newton': { type: 'string', default: 'sampled' },
      'scoring-examples': { type: 'string', default: '1000' },
      'loss-examples': { type: 'string', default: '10000' },
      'seed-start': { type: 'string', default: '0' },
      'linear-stages': { type: 'string', default: '14' },
      'full-seeds': { type: 'string', default: '0' },
      output: { type: 'string', default: 'loss-modelling-mnist' },
      schedules: { type: 'string', default: 'exponential,linear' },
      mp: { type: 'string', default: 'true' },
      criteria: { type: 'string', default: 'obd,lm,qm' },
      'dense-cache': { type: 'string' },
      'wait-dense': { type: 'boolean', default: false },
    },
  });
  const backend = await selectBackend(values.backend!);
  const seeds = Number(values.seeds);
  const epochs = Number(values.epochs);
  const fineTuneSteps = Number(values['fine-tune-steps']);
  const lambdas = list(values.lambdas!);
  const stageCounts = list(values.stages!);
  const allLambdaStages = new Set(list(values['stages-all-lambdas']!));
  const fineTuneLambdas = new Set(list(values['fine-tune-lambdas']!));
  const gaussNewton = values['gauss-newton'] as 'exact' | 'sampled';
  const scoringExamples = Number(values['scoring-examples']);
  const lossExamples = Number(values['loss-examples']);
  const seedStart = Number(values['seed-start']);
  const linearStages = new Set(list(values['linear-stages']!));
  const fullSeeds = new Set(list(values['full-seeds']!));
  const output = values.output!;
  const scheduleKinds = new Set(values.schedules!.split(','));
  const cache = values['dense-cache'];

  const mnist = await loadMnist();
  const { train, validation } = splitValidation(mnist.train, 10_000, 0); // Appendix B.1: 10,000 held out
  const lossSplit = head(train, lossExamples);
  const stepsPerEpoch = Math.floor(train.count / 100);
  const hyper = { learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4, batchSize: 100 };
  const runs: Run[] = [];
  const dense: Array<{ seed: number; trainSeconds: number; validationError: number; trainLoss: number }> = [];
  const started = performance.now();
  const setup = {
    backend: backend.backend,
    sparsity: SPARSITY,
    architecture: '784-300-100-10 tanh, Glorot uniform, zero biases',
    data: 'MNIST 60k train: 50,000 train / 10,000 validation (seeded random hold-out, seed 0)',
    training: { ...hyper, epochs, stepsPerEpoch, earlyStopping: false },
    fineTuning: {
      ...hyper,
      steps: fineTuneSteps,
      lambdas: [...fineTuneLambdas],
      plusMp: values.mp === 'true',
    },
    scoring: { examplesPerStage: scoringExamples, freshEachStage: true, gaussNewton },
    lossMeasuredOn: `first ${lossExamples} training examples (L(θ) is the mean cross-entropy, no L2 term)`,
    lambdas,
    stages: stageCounts,
    allLambdasForStages: [...allLambdaStages],
    linearSchedule: { stages: [...linearStages], everyStageCountForSeeds: [...fullSeeds] },
    seeds: Array.from({ length: seeds }, (_, index) => seedStart + index),
  };
  const save = () =>
    writeResult(output, {
      setup,
      dense,
      runs,
      elapsedSeconds: Math.round((performance.now() - started) / 1000),
      complete: false,
    });

  for (let seed = seedStart; seed < seedStart + seeds; seed += 1) {
    const model = denseNetwork({ units: [784, 300, 100, 10], activation: 'tanh', seed: 1000 + seed });
    const cacheFile = cache ? path.join(cache, `dense-seed-${seed}-epochs-${epochs}.json`) : undefined;
    const trainStart = performance.now();
    let trainLoss = Number.NaN;
    if (cacheFile && values['wait-dense']) {
      while (!existsSync(cacheFile)) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    if (cacheFile && existsSync(cacheFile)) {
      const saved = JSON.parse(readFileSync(cacheFile, 'utf8')) as {
        variables: number[][];
        trainLoss: number;
      };
      for (const [index, { variable }] of model.trainableVariables().entries()) {
        tf.tidy(() => variable.assign(tf.tensor(saved.variables[index]!, variable.shape)));
      }
      trainLoss = saved.trainLoss;
    } else {
      const source = batches(train, { batchSize: 100, seed });
      const optimizer = sgd({ learningRate: hyper.learningRate, momentum: hyper.momentum });
      trainLoss = await trainSteps(model, {
        optimizer,
        batch: (step) => source.batch(step),
        steps: epochs * stepsPerEpoch,
        weightDecay: hyper.weightDecay,
        every: stepsPerEpoch,
        onLoss: (step, loss) =>
          console.log(`seed ${seed} epoch ${Math.round((step + 1) / stepsPerEpoch)} loss ${loss.toFixed(4)}`),
      });
      optimizer.dispose();
      if (cacheFile) {
        const variables = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
        mkdirSync(path.dirname(cacheFile), { recursive: true });
        writeFileSync(`${cacheFile}.tmp`, JSON.stringify({ variables, trainLoss }));
        renameSync(`${cacheFile}.tmp`, cacheFile);
      }
    }
    const metrics = await evaluateClassifier(model, evaluationBatches(validation, 1000));
    dense.push({
      seed,
      trainSeconds: Math.round((performance.now() - trainStart) / 1000),
      validationError: 1 - metrics.accuracy,
      trainLoss,
    });
    console.log(`seed ${seed}: dense validation error ${((1 - metrics.accuracy) * 100).toFixed(2)}%`);
    const trained = snapshot(model);

    const configurations: Array<{
      criterion: string;
      stages: number;
      schedule: StageScheduleKind;
      lambda: number;
    }> = values.mp === 'true' ? [{ criterion: 'mp', stages: 1, schedule: 'exponential', lambda: 0 }] : [];
    for (const stages of stageCounts) {
      const linear = stages > 1 && (linearStages.has(stages) || fullSeeds.has(seed));
      const kinds = (linear ? (['exponential', 'linear'] as const) : (['exponential'] as const)).filter(
        (kind) => stages === 1 || scheduleKinds.has(kind),
      );
      for (const schedule of kinds) {
        // The λ grid on the exponential schedule (the paper's main one); λ = 0 on the linear one.
        for (const lambda of allLambdaStages.has(stages) && schedule === 'exponential' ? lambdas : [0]) {
          for (const criterion of values.criteria!.split(','))
            configurations.push({ criterion, stages, schedule, lambda });
        }
      }
    }
    for (const [index, configuration] of configurations.entries()) {
      trained.restore();
      const runStart = performance.now();
      const options = { lambda: configuration.lambda };
      const criterion: SaliencyCriterion =
        configuration.criterion === 'mp'
          ? magnitudeCriterion(options)
          : configuration.criterion === 'obd'
            ? optimalBrainDamage({ ...options, gaussNewton, seed: seed * 7919 + index })
            : configuration.criterion === 'lm'
              ? linearModel(options)
              : quadraticModel({ ...options, gaussNewton, seed: seed * 7919 + index });
      const scoring = batches(train, { batchSize: scoringExamples, seed: seed * 100_003 + index + 1 });
      const fineTune =
        configuration.criterion === 'mp' || fineTuneLambdas.has(configuration.lambda)
          ? async () => {
              const fineOptimizer = sgd({ learningRate: hyper.learningRate, momentum: hyper.momentum });
              const fineSource = batches(train, { batchSize: 100, seed: 50_000 + seed });
              await trainSteps(model, {
                optimizer: fineOptimizer,
                batch: (step) => fineSource.batch(step),
                steps: fineTuneSteps,
                weightDecay: hyper.weightDecay,
                every: fineTuneSteps,
              });
              fineOptimizer.dispose();
            }
          : undefined;
      const report = await pruningFramework({
        model,
        criterion,
        schedule: stageSchedule({
          stages: configuration.stages,
          finalSparsity: SPARSITY,
          kind: configuration.schedule,
        }),
        scoringData: (stage) => [scoring.batch(stage - 1)],
        ...(fineTune ? { fineTune } : {}),
        lossData: () => evaluationBatches(lossSplit, 2000),
        validationData: () => evaluationBatches(validation, 2000),
      });
      const stepNorms = report.stages.map((stage) => stage.stepNorm);
      runs.push({
        seed,
        ...configuration,
        lossBefore: report.lossBefore,
        lossAfter: report.lossAfter,
        deltaLoss: report.deltaLoss,
        denseError: report.denseError,
        prunedError: report.prunedError,
        gapBeforeFineTuning: report.gapBeforeFineTuning,
        fineTunedError: report.fineTunedError ?? null,
        gapAfterFineTuning: report.gapAfterFineTuning ?? null,
        stepNorms: stepNorms.length > 20 ? [] : stepNorms,
        maxStepNorm: Math.max(...stepNorms),
        seconds: Math.round((performance.now() - runStart) / 100) / 10,
      });
      const last = runs.at(-1)!;
      console.log(
        `seed ${seed} ${configuration.criterion} π=${configuration.stages} ${configuration.schedule} λ=${configuration.lambda}: ΔL ${last.deltaLoss.toFixed(4)} gap ${(last.gapBeforeFineTuning * 100).toFixed(2)}% → ${last.gapAfterFineTuning === null ? '-' : `${(last.gapAfterFineTuning * 100).toFixed(2)}%`} (${last.seconds}s)`,
      );
      save();
    }
    trained.dispose();
    model.dispose();
  }
  const result = {
    setup,
    dense,
    runs,
    elapsedSeconds: Math.round((performance.now() - started) / 1000),
    complete: true,
  };
  writeResult(output, result);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
