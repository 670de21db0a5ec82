/**
 * Reproduction of "Revisiting Loss Modelling for Unstructured Pruning" on MNIST (Table 1, Table 2,
 * Table 3, Fig. 3, Appendix C.4): the MLP 784-300-100-10 (tanh), 10,000 training examples held out
 * for validation (Appendix B.1), trained with SGD (lr 0.01, momentum 0.9, L2 5e-4, batch 100) until
 * the validation error stops improving (early stopping keeps the best epoch, Appendix B.2), then
 * pruned to 98.85% sparsity with MP, OBD, LM and QM in π stages (exponential and linear schedules),
 * λ over a grid, the Gauss–Newton diagonal exact and sampled, and GraSP, SynFlow and random pruning
 * (Appendix C.4); then one fine-tuning phase with the training hyper-parameters. Each seed's dense
 * network is trained once (cached with `--dense-cache`) and restored before every configuration.
 *
 * Every configuration draws its scoring batches and its Gauss–Newton labels from a seed derived
 * from the configuration itself (seed, criterion, π, schedule, λ, Gauss–Newton method), so a run
 * split over processes (`--seed-start`, `--seeds`, `--criteria`, `--stages`, `--output`) gives the
 * same numbers as one process. Results are written after every configuration to
 * results/<output>.json, so an interrupted run still leaves what it finished; `pnpm
 * loss-modelling-tables` merges the parts and prints the tables.
 *
 * The defaults are the published run (bench/README.md and packages/criteria/README.md):
 *
 *   cd bench && nice -n 10 npx tsx --conditions=source src/loss-modelling-mnist.ts
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { evaluateClassifier, type PrunableModel, sgd } from '@fineprune/core';
import {
  type DenseNetwork,
  denseNetwork,
  grasp,
  linearModel,
  magnitudeCriterion,
  optimalBrainDamage,
  quadraticModel,
  randomCriterion,
  type SaliencyCriterion,
  type StageScheduleKind,
  pruningFramework,
  snapshot,
  stageSchedule,
  synflow,
  trainSteps,
} from '@fineprune/criteria';
import { batches, evaluationBatches, loadMnist, type Split, splitValidation } from '@fineprune/datasets';
import { RESULTS_DIR, writeResult, selectBackend, runIfScript } from './harness';

const SPARSITY = 0.9885;
const HYPER = { learningRate: 0.01, momentum: 0.9, weightDecay: 5e-4, batchSize: 100 };
/** Criteria that use the Gauss–Newton diagonal (and so run once per `--gauss-newton` method). */
const CURVATURE = new Set(['obd', 'qm']);
/** Criteria whose masks no π or λ changes (no training between stages): run once, one-shot. */
const INVARIANT = new Set(['mp', 'random']);
/** The gradient-flow criteria of Appendix C.4, run at their own stage counts (`--appendix-stages`). */
const APPENDIX = new Set(['grasp', 'synflow']);

type GaussNewton = 'exact' | 'sampled';

/** One pruning configuration of a seed. */
export interface Configuration {
  criterion: string;
  stages: number;
  schedule: StageScheduleKind;
  lambda: number;
  /** The Gauss–Newton estimate of OBD and QM; null for the other criteria. */
  gaussNewton: GaussNewton | null;
}

interface Run extends Configuration {
  seed: number;
  configurationSeed: number;
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

/**
 * A 31-bit seed from the seed and the configuration itself (FNV-1a of their text), so that no
 * configuration's randomness depends on where it stands in a list or which process runs it.
 *
 * @example
 * ```ts
 * configurationSeed(0, { criterion: 'qm', stages: 14, schedule: 'exponential', lambda: 0, gaussNewton: 'sampled' }, 'scoring');
 * ```
 */
export function configurationSeed(seed: number, configuration: Configuration, purpose: string): number {
  const { criterion, stages, schedule, lambda, gaussNewton } = configuration;
  const key = `${seed}|${criterion}|${stages}|${schedule}|${lambda}|${gaussNewton ?? '-'}|${purpose}`;
  let hash = 0x811c9dc5;
  for (let index = 0; index < key.length; index += 1) {
    hash = Math.imul(hash ^ key.charCodeAt(index), 0x01000193) >>> 0;
  }
  return hash & 0x7fffffff;
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

/** `1000=0+1,140=0` → π 1000 only for seeds 0 and 1, π 140 only for seed 0. */
function stageSeedLimits(value: string): Map<number, Set<number>> {
  return new Map(
    value
      .split(',')
      .filter(Boolean)
      .map((entry) => {
        const [stages, seeds] = entry.split('=');
        return [Number(stages), new Set(seeds!.split('+').map(Number))];
      }),
  );
}

export interface PlanOptions {
  criteria: string[];
  stageCounts: number[];
  appendixStages: number[];
  lambdas: number[];
  allLambdaStages: Set<number>;
  lambdaCriteria: Set<string>;
  linearStages: Set<number>;
  fullSeeds: Set<number>;
  scheduleKinds: Set<string>;
  gaussNewtons: GaussNewton[];
  exactStages: Set<number>;
  exactLambdas: Set<number>;
  stageSeeds: Map<number, Set<number>>;
  mp: boolean;
}

/**
 * Every configuration of one seed, in a fixed order (the order changes no result).
 *
 * @example
 * ```ts
 * configurationsFor(0, plan).length; // 20 for the published plan
 * ```
 */
export function configurationsFor(seed: number, plan: PlanOptions): Configuration[] {
  const oneShot = (criterion: string): Configuration => ({
    criterion,
    stages: 1,
    schedule: 'exponential',
    lambda: 0,
    gaussNewton: null,
  });
  const configurations: Configuration[] = [];
  if (plan.mp) configurations.push(oneShot('mp'));
  if (plan.criteria.includes('random')) configurations.push(oneShot('random'));
  const staged = plan.criteria.filter((criterion) => !INVARIANT.has(criterion));
  for (const stages of [...new Set([...plan.stageCounts, ...plan.appendixStages])].sort((a, b) => a - b)) {
    if (plan.stageSeeds.has(stages) && !plan.stageSeeds.get(stages)!.has(seed)) continue;
    const linear = stages > 1 && (plan.linearStages.has(stages) || plan.fullSeeds.has(seed));
    const kinds = (linear ? (['exponential', 'linear'] as const) : (['exponential'] as const)).filter(
      (kind) => stages === 1 || plan.scheduleKinds.has(kind),
    );
    for (const schedule of kinds) {
      const here = staged.filter((criterion) =>
        (APPENDIX.has(criterion) ? plan.appendixStages : plan.stageCounts).includes(stages),
      );
      for (const criterion of here) {
        // The λ grid on the exponential schedule (the paper's main one); λ = 0 elsewhere.
        const gridded =
          plan.allLambdaStages.has(stages) &&
          schedule === 'exponential' &&
          plan.lambdaCriteria.has(criterion);
        for (const lambda of gridded ? plan.lambdas : [0]) {
          const methods = CURVATURE.has(criterion)
            ? plan.gaussNewtons.filter(
                (method) =>
                  method === 'sampled' ||
                  (plan.exactStages.has(stages) &&
                    plan.exactLambdas.has(lambda) &&
                    schedule === 'exponential'),
              )
            : [null];
          for (const gaussNewton of methods)
            configurations.push({ criterion, stages, schedule, lambda, gaussNewton });
        }
      }
    }
  }
  return configurations;
}

function criterionOf(configuration: Configuration, seed: number): SaliencyCriterion {
  const options = { lambda: configuration.lambda };
  const gaussNewton = configuration.gaussNewton ?? 'sampled';
  const sampling = configurationSeed(seed, configuration, 'gauss-newton');
  switch (configuration.criterion) {
    case 'mp':
      return magnitudeCriterion(options);
    case 'obd':
      return optimalBrainDamage({ ...options, gaussNewton, seed: sampling });
    case 'lm':
      return linearModel(options);
    case 'qm':
      return quadraticModel({ ...options, gaussNewton, seed: sampling });
    case 'random':
      return randomCriterion({ ...options, seed: configurationSeed(seed, configuration, 'random') });
    case 'grasp':
      return grasp(options);
    case 'synflow':
      return synflow(options);
    default:
      throw new Error(
        `unknown criterion ${configuration.criterion} (mp, obd, lm, qm, random, grasp, synflow)`,
      );
  }
}

interface DenseOutcome {
  trainLoss: number;
  epochsRun: number;
  bestEpoch: number;
  validationErrors: number[];
}

/**
 * Trains the dense network with SGD for at most `maxEpochs` epochs, evaluating the validation error
 * after each; keeps the best epoch's weights (early stopping, Appendix B.2) and stops after
 * `patience` epochs without improvement (0: never stops early).
 */
async function trainDense(
  model: DenseNetwork,
  train: Split,
  validation: Split,
  options: { seed: number; maxEpochs: number; patience: number; log: (message: string) => void },
): Promise<DenseOutcome> {
  const source = batches(train, { batchSize: HYPER.batchSize, seed: options.seed });
  const stepsPerEpoch = Math.floor(train.count / HYPER.batchSize);
  const optimizer = sgd({ learningRate: HYPER.learningRate, momentum: HYPER.momentum });
  const validationErrors: number[] = [];
  let best: { error: number; epoch: number; weights: ReturnType<typeof snapshot> } | undefined;
  let trainLoss = Number.NaN;
  for (let epoch = 1; epoch <= options.maxEpochs; epoch += 1) {
    const loss = await trainSteps(model, {
      optimizer,
      batch: (step) => source.batch(step),
      steps: stepsPerEpoch,
      firstStep: (epoch - 1) * stepsPerEpoch,
      weightDecay: HYPER.weightDecay,
      every: stepsPerEpoch,
    });
    const error = 1 - (await evaluateClassifier(model, evaluationBatches(validation, 2000))).accuracy;
    validationErrors.push(error);
    options.log(
      `seed ${options.seed} epoch ${epoch}: loss ${loss.toFixed(4)}, validation error ${(error * 100).toFixed(2)}%`,
    );
    if (!best || error < best.error) {
      best?.weights.dispose();
      best = { error, epoch, weights: snapshot(model) };
      trainLoss = loss;
    } else if (options.patience > 0 && epoch - best.epoch >= options.patience) break;
  }
  optimizer.dispose();
  best!.weights.restore();
  best!.weights.dispose();
  return { trainLoss, epochsRun: validationErrors.length, bestEpoch: best!.epoch, validationErrors };
}

/** The dense network of a seed: from the cache when there, else trained (and cached). */
async function denseFor(
  model: DenseNetwork,
  cacheFile: string | undefined,
  train: () => Promise<DenseOutcome>,
): Promise<DenseOutcome & { cached: boolean }> {
  if (cacheFile && existsSync(cacheFile)) {
    const saved = JSON.parse(readFileSync(cacheFile, 'utf8')) as DenseOutcome & { variables: number[][] };
    for (const [index, { variable }] of model.trainableVariables().entries()) {
      tf.tidy(() => variable.assign(tf.tensor(saved.variables[index]!, variable.shape)));
    }
    const { variables: _variables, ...outcome } = saved;
    return { ...outcome, cached: true };
  }
  const outcome = await train();
  if (cacheFile) {
    const variables = model.trainableVariables().map(({ variable }) => Array.from(variable.dataSync()));
    mkdirSync(path.dirname(cacheFile), { recursive: true });
    writeFileSync(`${cacheFile}.tmp`, JSON.stringify({ ...outcome, variables }));
    renameSync(`${cacheFile}.tmp`, cacheFile);
  }
  return { ...outcome, cached: false };
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      seeds: { type: 'string', default: '3' },
      'seed-start': { type: 'string', default: '0' },
      epochs: { type: 'string', default: '150' },
      patience: { type: 'string', default: '20' },
      'fine-tune-steps': { type: 'string', default: '1000' },
      criteria: { type: 'string', default: 'obd,lm,qm,random,grasp,synflow' },
      mp: { type: 'string', default: 'true' },
      stages: { type: 'string', default: '1,14,100,140,1000' },
      'appendix-stages': { type: 'string', default: '1,100,1000' },
      'stage-seeds': { type: 'string', default: '1000=0' },
      lambdas: { type: 'string', default: '0,0.01,1' },
      'stages-all-lambdas': { type: 'string', default: '140' },
      'lambda-criteria': { type: 'string', default: 'obd,lm,qm' },
      'fine-tune-lambdas': { type: 'string', default: '0,0.01,1' },
      'gauss-newton': { type: 'string', default: 'sampled,exact' },
      'exact-stages': { type: 'string', default: '14,140' },
      'exact-lambdas': { type: 'string', default: '0' },
      'linear-stages': { type: 'string', default: '' },
      'full-seeds': { type: 'string', default: '' },
      schedules: { type: 'string', default: 'exponential,linear' },
      'scoring-examples': { type: 'string', default: '1000' },
      'loss-examples': { type: 'string', default: '10000' },
      output: { type: 'string', default: 'loss-modelling-mnist' },
      'dense-cache': { type: 'string' },
      'wait-dense': { type: 'boolean', default: false },
      resume: { type: 'boolean', default: false },
    },
  });
  const backend = await selectBackend(values.backend!);
  const seeds = Number(values.seeds);
  const seedStart = Number(values['seed-start']);
  const maxEpochs = Number(values.epochs);
  const patience = Number(values.patience);
  const fineTuneSteps = Number(values['fine-tune-steps']);
  const fineTuneLambdas = new Set(list(values['fine-tune-lambdas']!));
  const scoringExamples = Number(values['scoring-examples']);
  const lossExamples = Number(values['loss-examples']);
  const output = values.output!;
  const cache = values['dense-cache'];
  const plan: PlanOptions = {
    criteria: values.criteria!.split(',').filter(Boolean),
    stageCounts: list(values.stages!),
    appendixStages: list(values['appendix-stages']!),
    lambdas: list(values.lambdas!),
    allLambdaStages: new Set(list(values['stages-all-lambdas']!)),
    lambdaCriteria: new Set(values['lambda-criteria']!.split(',')),
    linearStages: new Set(list(values['linear-stages']!)),
    fullSeeds: new Set(list(values['full-seeds']!)),
    scheduleKinds: new Set(values.schedules!.split(',')),
    gaussNewtons: values['gauss-newton']!.split(',') as GaussNewton[],
    exactStages: new Set(list(values['exact-stages']!)),
    exactLambdas: new Set(list(values['exact-lambdas']!)),
    stageSeeds: stageSeedLimits(values['stage-seeds']!),
    mp: values.mp === 'true',
  };
  const started = performance.now();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);

  const mnist = await loadMnist();
  const { train, validation } = splitValidation(mnist.train, 10_000, 0); // Appendix B.1: 10,000 held out
  const lossSplit = head(train, lossExamples);
  const runs: Run[] = [];
  // --resume: the runs an interrupted invocation already wrote to the same output are kept, not
  // rerun. Each configuration's randomness comes from the configuration itself, so a kept run is
  // the run this invocation would have made.
  const previous = values.resume ? previousRuns(output) : new Map<string, Run>();
  const dense: Array<
    DenseOutcome & { seed: number; trainSeconds: number; validationError: number; cached: boolean }
  > = [];
  const setup = {
    backend: backend.backend,
    sparsity: SPARSITY,
    architecture: '784-300-100-10 tanh, Glorot uniform, zero biases',
    data: 'MNIST 60k train: 50,000 train / 10,000 validation (seeded random hold-out, seed 0)',
    training: { ...HYPER, maxEpochs, patience, earlyStopping: 'best validation error over the epochs run' },
    fineTuning: { ...HYPER, steps: fineTuneSteps, lambdas: [...fineTuneLambdas] },
    scoring: { examplesPerStage: scoringExamples, freshEachStage: true, seedFrom: 'configuration' },
    lossMeasuredOn: `first ${lossExamples} training examples (L(θ) is the mean cross-entropy, no L2 term)`,
    seeds: Array.from({ length: seeds }, (_, index) => seedStart + index),
  };
  const save = (complete: boolean) =>
    writeResult(output, {
      flags: values,
      setup,
      dense,
      runs,
      elapsedSeconds: Math.round((performance.now() - started) / 1000),
      complete,
    });

  for (let seed = seedStart; seed < seedStart + seeds; seed += 1) {
    const model = denseNetwork({ units: [784, 300, 100, 10], activation: 'tanh', seed: 1000 + seed });
    const cacheFile = cache
      ? path.join(cache, `dense-seed-${seed}-epochs-${maxEpochs}-patience-${patience}.json`)
      : undefined;
    const trainStart = performance.now();
    if (cacheFile && values['wait-dense']) {
      while (!existsSync(cacheFile)) await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    const outcome = await denseFor(model, cacheFile, () =>
      trainDense(model, train, validation, { seed, maxEpochs, patience, log }),
    );
    const metrics = await evaluateClassifier(model, evaluationBatches(validation, 1000));
    dense.push({
      seed,
      ...outcome,
      trainSeconds: Math.round((performance.now() - trainStart) / 1000),
      validationError: 1 - metrics.accuracy,
    });
    log(
      `seed ${seed}: dense validation error ${((1 - metrics.accuracy) * 100).toFixed(2)}% (best epoch ${outcome.bestEpoch} of ${outcome.epochsRun})`,
    );
    const trained = snapshot(model);
    for (const configuration of configurationsFor(seed, plan)) {
      const kept = previous.get(runKey(seed, configuration));
      if (kept) {
        runs.push(kept);
        continue;
      }
      trained.restore();
      runs.push(
        await runConfiguration(model, configuration, seed, {
          train,
          validation,
          lossSplit,
          scoringExamples,
          fineTuneSteps:
            INVARIANT.has(configuration.criterion) || fineTuneLambdas.has(configuration.lambda)
              ? fineTuneSteps
              : 0,
        }),
      );
      const last = runs.at(-1)!;
      log(
        `seed ${seed} ${last.criterion}${last.gaussNewton ? ` (${last.gaussNewton} G)` : ''} π=${last.stages} ${last.schedule} λ=${last.lambda}: ΔL ${last.deltaLoss.toFixed(4)} gap ${(last.gapBeforeFineTuning * 100).toFixed(2)}% → ${last.gapAfterFineTuning === null ? '-' : `${(last.gapAfterFineTuning * 100).toFixed(2)}%`} (${last.seconds}s)`,
      );
      save(false);
    }
    trained.dispose();
    model.dispose();
  }
  const file = save(true);
  log(`written to ${file}`);
  return { setup, dense, runs };
}

/** The identity of one run in a result file: seed and configuration. */
function runKey(
  seed: number,
  run: Pick<Run, 'criterion' | 'stages' | 'schedule' | 'lambda' | 'gaussNewton'>,
): string {
  return JSON.stringify([seed, run.criterion, run.stages, run.schedule, run.lambda, run.gaussNewton ?? null]);
}

/** The runs of an earlier, interrupted invocation with the same output name (none if no file). */
function previousRuns(output: string): Map<string, Run> {
  const file = path.join(RESULTS_DIR, `${output}.json`);
  const kept = new Map<string, Run>();
  if (!existsSync(file)) return kept;
  const earlier = JSON.parse(readFileSync(file, 'utf8')) as { runs?: Array<Run & { seed: number }> };
  for (const run of earlier.runs ?? []) kept.set(runKey(run.seed, run), run);
  return kept;
}

/** Algorithm 1 for one configuration on the restored dense network: stages, ΔL, gaps, fine-tuning. */
async function runConfiguration(
  model: PrunableModel,
  configuration: Configuration,
  seed: number,
  data: { train: Split; validation: Split; lossSplit: Split; scoringExamples: number; fineTuneSteps: number },
): Promise<Run> {
  const runStart = performance.now();
  const scoringSeed = configurationSeed(seed, configuration, 'scoring');
  const scoring = batches(data.train, { batchSize: data.scoringExamples, seed: scoringSeed });
  const fineTune =
    data.fineTuneSteps > 0
      ? async () => {
          const optimizer = sgd({ learningRate: HYPER.learningRate, momentum: HYPER.momentum });
          const source = batches(data.train, { batchSize: HYPER.batchSize, seed: 50_000 + seed });
          await trainSteps(model, {
            optimizer,
            batch: (step) => source.batch(step),
            steps: data.fineTuneSteps,
            weightDecay: HYPER.weightDecay,
            every: data.fineTuneSteps,
          });
          optimizer.dispose();
        }
      : undefined;
  const criterion = criterionOf(configuration, seed);
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
    lossData: () => evaluationBatches(data.lossSplit, 2000),
    validationData: () => evaluationBatches(data.validation, 2000),
  });
  criterion.dispose();
  const stepNorms = report.stages.map((stage) => stage.stepNorm);
  return {
    seed,
    ...configuration,
    configurationSeed: scoringSeed,
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
  };
}

runIfScript(import.meta.url, main);
