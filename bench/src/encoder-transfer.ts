/**
 * The movement-pruning transfer setting at this project's scale (Tables 2 and 3, Figures 5 and 6 of
 * *Movement Pruning*): the offline-pretrained small encoder (bench/pretrained/encoder-small, made by
 * python/pretrain_encoder_torch.py; `--pretrained` names another, e.g. encoder-small-tfjs from
 * encoder-pretrain.ts) is fine-tuned dense on a downstream task (the baseline, and the teacher), and
 * fine-pruned with MaP, MvP, SMvP and L0 to a target share of remaining encoder weights, with and
 * without distillation from the dense model, local and global selection, several seeds. Results
 * (dev accuracy, remaining weights per projection, seconds) go to results/<output>.json after every
 * run, so a long run can be read while it goes and split over processes (one wasm thread each;
 * python/transfer_grid.py runs the whole grid that way).
 *
 *   cd bench && npx tsx --conditions=source src/encoder-transfer.ts --task brown --seeds 1,2,3 \
 *     --methods dense,MaP,MvP,SMvP,L0 --remaining 0.1,0.03 --distil no,yes --steps 400
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { adam, evaluateClassifier, type LossTerm, Pruner, sparsityReport } from '@fineprune/core';
import { distillation } from '@fineprune/distillation';
import { readSafetensorsFile } from '@fineprune/safetensors/node';
import { batchesFromEncoded } from '@fineprune/text';
import {
  type BertModel,
  configFromHuggingFace,
  createBertModel,
  loadHuggingFaceWeights,
} from '@fineprune/transformers';
import { loadHuggingFaceDirectory, saveHuggingFaceDirectory } from '@fineprune/transformers/node';
import { everyNth, loadTask } from './encoder-data';
import { PRETRAINED_DIR, SMALL_ENCODER } from './encoder-fixtures';
import { type PaperMethod, paperRecipe } from './paper-recipes';
import { mean, std, writeResult, selectBackend, runIfScript } from './harness';

export type TransferMethod = PaperMethod;

const list = (value: string | undefined) => (value ? value.split(',').filter((entry) => entry !== '') : []);

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      task: { type: 'string', default: 'brown' },
      seeds: { type: 'string', default: '1,2,3' },
      methods: { type: 'string', default: 'dense,MaP,MvP,SMvP,L0' },
      remaining: { type: 'string', default: '0.1,0.03' },
      distil: { type: 'string', default: 'no,yes' },
      scopes: { type: 'string', default: 'local' },
      steps: { type: 'string', default: '400' },
      batch: { type: 'string', default: '16' },
      sequence: { type: 'string', default: '128' },
      devExamples: { type: 'string', default: '0' },
      learningRate: { type: 'string', default: '3e-4' },
      scoreLearningRate: { type: 'string', default: '5e-2' },
      l0ScoreLearningRate: { type: 'string', default: '1e-1' },
      smvpLambda: { type: 'string', default: '0.1:1e-6,0.03:1e-5' },
      l0Lambda: { type: 'string', default: '0.1:2e-4,0.03:8e-4' },
      pretrained: { type: 'string', default: PRETRAINED_DIR },
      output: { type: 'string', default: '' },
      // The tokenized tasks from `pnpm encoder-data` (default: tokenize the corpora packages now).
      data: { type: 'string' },
      // Save each dense fine-tuned model (a distillation teacher) under <dir>/seed-<seed>/ …
      saveTeachers: { type: 'string' },
      // … and load teachers from there when this process has not trained them (split runs).
      teachers: { type: 'string' },
    },
  });
  const started = performance.now();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);
  const backend = await selectBackend(values.backend!);
  const steps = Number(values.steps);
  const batchSize = Number(values.batch);
  const sequence = Number(values.sequence);
  const seeds = list(values.seeds).map(Number);
  const methods = list(values.methods) as TransferMethod[];
  const targets = list(values.remaining).map(Number);
  const distilModes = list(values.distil).map((mode) => mode === 'yes');
  const scopes = list(values.scopes) as Array<'local' | 'global'>;
  const lambdas = (spec: string) =>
    new Map(list(spec).map((pair) => pair.split(':').map(Number) as [number, number]));
  const smvpLambda = lambdas(values.smvpLambda!);
  const l0Lambda = lambdas(values.l0Lambda!);

  const task = loadTask(values.task === 'spam' ? 'spam-assassin' : 'brown-genre', values.data, sequence);
  const dev = everyNth(task.dev, Number(values.devExamples));
  const devSource = batchesFromEncoded(dev, {
    batchSize: Math.min(64, dev.labels.length),
    shuffle: false,
    dropRemainder: false,
    classes: task.labels.length,
  });
  log(
    `task ${task.name}: ${task.labels.length} labels, ${task.train.labels.length} train / ${dev.labels.length} dev examples`,
  );

  // `--pretrained none` starts from a random encoder (for probes and for the no-pretraining control).
  const fromScratch = values.pretrained === 'none';
  const config = fromScratch
    ? SMALL_ENCODER
    : configFromHuggingFace(JSON.parse(readFileSync(path.join(values.pretrained!, 'config.json'), 'utf8')));
  const pretrainedFile = fromScratch
    ? undefined
    : await readSafetensorsFile(path.join(values.pretrained!, 'model.safetensors'));
  let loadReported = false;
  const freshModel = (seed: number): BertModel => {
    const model = createBertModel({
      config,
      task: { type: 'classification', numLabels: task.labels.length },
      seed,
    });
    if (pretrainedFile) {
      const report = loadHuggingFaceWeights(model, pretrainedFile, { strict: false });
      // Only the pooler and the classifier may be missing (an MLM checkpoint has neither).
      const missingEncoder = report.missing.filter((name) => !/pooler|classifier/.test(name));
      if (missingEncoder.length > 0 || report.mismatched.length > 0) {
        throw new Error(
          `The pretrained encoder does not fit: missing ${missingEncoder.join(', ')}; mismatched ${report.mismatched.join(', ')}`,
        );
      }
      if (!loadReported) {
        loadReported = true;
        log(
          `pretrained encoder: ${report.loaded.length} tensors loaded; left initialised: ${report.missing.join(', ')}`,
        );
      }
    }
    return model;
  };
  const warmupSteps = Math.round(0.1 * steps);
  const cooldownSteps = Math.round(0.2 * steps);
  const peak = Number(values.learningRate);
  // Linear warm-up over the first 10% then linear decay, as in BERT fine-tuning.
  const weightRate = (step: number) =>
    Math.max(
      peak * (step < warmupSteps ? (step + 1) / warmupSteps : (steps - step) / (steps - warmupSteps)),
      1e-8,
    );

  const output = values.output || `encoder-transfer-${task.name}`;
  const runs: Array<Record<string, unknown>> = [];
  const result: Record<string, unknown> = {
    backend: backend.backend,
    flags: values,
    task: {
      name: task.name,
      labels: task.labels.length,
      train: task.train.labels.length,
      dev: dev.labels.length,
    },
    setting: {
      encoder: config,
      pretrained: values.pretrained,
      fineTuning: `${steps} steps, batch ${batchSize} × ${sequence} tokens, AdamW peak ${peak} (10% warm-up, linear decay), scores Adam ${values.scoreLearningRate} (L0 log α: ${values.l0ScoreLearningRate}); embeddings frozen; cubic schedule (Eq. 5) with ${warmupSteps} warm-up and ${cooldownSteps} cool-down steps`,
      smvp: 'movement scores, M = (σ(S) > τ), τ 0 → 0.1 on the cubic schedule, λ Σ σ(S) ramped by τ/τ_f, 0.5% floor per matrix',
      l0: 'l0 scores, hard-concrete b = 2/3, l = −0.1, r = 1.1, λ E[L0], test-time M̂',
      distillation: 'teacher = the dense fine-tuned model of the same seed; α_ce = α_distil = 0.5, T = 2',
    },
    runs,
  };
  const save = () =>
    writeResult(output, { ...result, seconds: Math.round((performance.now() - started) / 1000) });

  const teachers = new Map<number, BertModel>();
  const runOnce = async (
    method: TransferMethod,
    remaining: number,
    seed: number,
    distil: boolean,
    scope: 'local' | 'global',
  ) => {
    const model = freshModel(seed);
    const weights = adam({ learningRate: weightRate, weightDecay: 0.01 });
    const scoresOptimizer = adam({
      learningRate: Number(method === 'L0' ? values.l0ScoreLearningRate : values.scoreLearningRate),
    });
    const lambda =
      method === 'SMvP'
        ? (smvpLambda.get(remaining) ?? 1e-5)
        : method === 'L0'
          ? (l0Lambda.get(remaining) ?? 5e-4)
          : undefined;
    let recipe = paperRecipe({
      method,
      remaining,
      totalSteps: steps,
      warmupSteps,
      cooldownSteps,
      scope,
      lambda,
      weights,
      scores: scoresOptimizer,
    });
    if (distil) {
      if (!teachers.has(seed) && values.teachers) {
        const { model: saved } = await loadHuggingFaceDirectory(path.join(values.teachers, `seed-${seed}`), {
          task: { type: 'classification', numLabels: task.labels.length },
          seed,
          strict: true,
        });
        teachers.set(seed, saved);
        log(`teacher of seed ${seed} loaded from ${values.teachers}`);
      }
      const teacher = teachers.get(seed);
      if (!teacher)
        throw new Error(
          `distillation needs the dense run of seed ${seed} first (include "dense", or pass --teachers)`,
        );
      const term: LossTerm = distillation({ teacher, temperature: 2, alphaDistil: 0.5, alphaCe: 0.5 });
      recipe = { ...recipe, lossTerms: [...(recipe.lossTerms ?? []), term] };
    }
    const pruner = new Pruner({
      model,
      ...recipe,
      seed,
      gradientClipping: { maxNorm: 1 },
    });
    const source = batchesFromEncoded(task.train, {
      batchSize,
      seed,
      classes: task.labels.length,
    });
    const runStart = performance.now();
    await pruner.run({ data: (step: number) => source.batch(step), untilStep: steps });
    const seconds = (performance.now() - runStart) / 1000;
    if (method !== 'dense') await pruner.updateMasks(); // final masks from the final scores (L0: M̂)
    const metrics = await evaluateClassifier(model, devSource.evaluationBatches());
    const report = await sparsityReport(model.parameters());
    pruner.dispose();
    if (method === 'dense' && !teachers.has(seed)) {
      teachers.set(seed, model);
      if (values.saveTeachers) {
        await saveHuggingFaceDirectory(model, path.join(values.saveTeachers, `seed-${seed}`), {
          dtype: 'F16',
        });
      }
    } else model.dispose();
    return {
      accuracy: metrics.accuracy,
      remaining: 1 - report.sparsity,
      perParameterRemaining: Object.fromEntries(
        report.parameters.map((row) => [row.name, Math.round((row.kept / row.total) * 10000) / 10000]),
      ),
      ...(lambda !== undefined ? { lambda } : {}),
      seconds: Math.round(seconds),
      tokensPerSecond: Math.round((steps * batchSize * sequence) / seconds),
    };
  };

  for (const seed of seeds) {
    for (const method of methods.includes('dense') ? ['dense' as const] : []) {
      const outcome = await runOnce(method, 1, seed, false, 'local');
      runs.push({ method, target: 1, seed, distil: false, scope: 'local', ...outcome });
      log(`dense seed ${seed}: ${(outcome.accuracy * 100).toFixed(2)}% (${outcome.seconds} s)`);
      save();
    }
    for (const target of targets) {
      for (const distil of distilModes) {
        for (const method of methods.filter((entry) => entry !== 'dense')) {
          for (const scope of method === 'MaP' || method === 'MvP' ? scopes : (['local'] as const)) {
            const outcome = await runOnce(method, target, seed, distil, scope);
            runs.push({ method, target, seed, distil, scope, ...outcome });
            log(
              `${method}${distil ? '+KD' : ''} ${scope} ${target * 100}% seed ${seed}: ${(outcome.accuracy * 100).toFixed(2)}% at ${(outcome.remaining * 100).toFixed(2)}% remaining (${outcome.seconds} s, ${outcome.tokensPerSecond} tokens/s)`,
            );
            save();
          }
        }
      }
    }
  }
  const table: Array<Record<string, unknown>> = [];
  const keys = new Set(runs.map((run) => `${run.method}|${run.target}|${run.distil}|${run.scope}`));
  for (const key of keys) {
    const rows = runs.filter((run) => `${run.method}|${run.target}|${run.distil}|${run.scope}` === key);
    const accuracy = rows.map((row) => (row.accuracy as number) * 100);
    const remaining = rows.map((row) => (row.remaining as number) * 100);
    const [method, target, distil, scope] = key.split('|');
    table.push({
      method,
      targetRemainingPercent: Number(target) * 100,
      distillation: distil === 'true',
      scope,
      accuracyMean: Math.round(mean(accuracy) * 100) / 100,
      accuracyStd: Math.round(std(accuracy) * 100) / 100,
      remainingPercentMean: Math.round(mean(remaining) * 100) / 100,
      remainingPercentStd: Math.round(std(remaining) * 100) / 100,
      runs: rows.length,
    });
  }
  result.table = table;
  for (const teacher of teachers.values()) teacher.dispose();
  const file = save();
  console.table(table);
  log(`written to ${file}`);
  return result;
}

runIfScript(import.meta.url, main);
