/**
 * Issue 18's encoder speed/accuracy curve (nn_pruning's): one fine-pruning run of the offline
 * encoder (bench/pretrained/encoder-small) on a transfer task, then its accuracy and its measured
 * end-to-end inference time on wasm against the dense model, side by side in this process, at batch
 * 1 and 16 of the task's sequence length. Methods: `dense`, unstructured `MvP` (paper-recipes.ts),
 * and the structured recipes of structured-recipes.ts (`blockMvP`, `headsNeurons`, `hybrid`, `2:4`).
 *
 * Every pruned model is deployed two ways, each timed against the same dense baseline (the dense
 * weights of the export loaded into a stock `BertModel`, as issue 16's table does):
 * - `shrunk`: `shrinkBertModel` (heads and neurons nothing reads are removed), stock TF.js kernels;
 * - `shrunkSparse`: the shrunk model's projections through issue 16's sparse kernels
 *   (`@fineprune/sparse`, mode `auto`: each projection takes the faster of sparse and dense).
 * The dev accuracy of every deployed form is measured too (it must equal the masked model's).
 * `--teachers DIR` adds distillation from the dense fine-tuned model of the same seed (saved by
 * encoder-transfer.ts under DIR/seed-<seed>), as the transfer benchmark's `kd` runs do; the file name
 * and the table row say `kd`; `--alphaDistil A` (0.5) and `--temperature T` (2) set its weights.
 *
 * Issue 18's levers toward its goal (≥ 2× at ≤ 1 point below dense):
 * - `--method units`: heads and neurons as whole units of the encoder's `structures()` (a head's
 *   query, key, value columns and attention-output rows together), `--unitScoring movement`
 *   (unit movement, default) or `magnitude` (unit L2 norm), heads ranked across the layers
 *   (`--headSelection global`, default; each layer keeps at least one) or per layer (`local`);
 *   `--headsRemaining` the share of the encoder's heads kept, `--remaining` that of the neurons.
 * - `--init teacher` (needs `--teachers`): the student starts from the dense fine-tuned model of
 *   its seed instead of the pretrained encoder, and is pruned and fine-tuned from there for
 *   `--steps` more steps (so it has had the teacher's steps plus its own); the dense reference
 *   stays that fine-tuned model, whose dev accuracy the result records (`teacherAccuracy`).
 * - `--steps N` (150) and `--learningRate` (3e-4, the weights' peak rate); `--devExamples N`
 *   evaluates every k-th dev example, N of them (0, the default: all; Brown's transfer runs: 527).
 *
 *   cd bench && nice -n 10 npx tsx --conditions=source src/encoder-structured.ts --task spam \
 *     --method headsNeurons --remaining 0.25 --seed 1 --data .cache/encoder-data.safetensors
 *
 * Writes results/encoder-structured-<task>-<method>-<remaining>-s<seed>.json; `--table` merges every
 * such file of a task into results/encoder-structured-<task>.json (mean ± std over seeds).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  adam,
  evaluateClassifier,
  type LossTerm,
  learningRateSchedule,
  Pruner,
  sparsityReport,
} from '@fineprune/core';
import { distillation } from '@fineprune/distillation';
import { loadDenseBert, loadSparseBert } from '@fineprune/example-sparse-demo/encoder';
import { readSafetensorsFile } from '@fineprune/safetensors/node';
import { clearSparseDenseChoices, encodeCompactHuggingFace, readCompactModel } from '@fineprune/sparse';
import { batchesFromEncoded } from '@fineprune/text';
import {
  type BertModel,
  configFromHuggingFace,
  createBertModel,
  huggingFaceConfig,
  huggingFaceTensors,
  loadHuggingFaceWeights,
  shrinkBertModel,
} from '@fineprune/transformers';
import { loadHuggingFaceDirectory } from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';
import { everyNth, loadTask } from './encoder-data';
import { PRETRAINED_DIR } from './encoder-fixtures';
import {
  blocksSideBySide,
  mean,
  median,
  RESULTS_DIR,
  runIfScript,
  selectBackend,
  std,
  writeResult,
} from './harness';
import { type PaperMethod, paperRecipe } from './paper-recipes';
import {
  STRUCTURED_METHODS,
  type StructuredMethod,
  type StructuredRecipeOptions,
  structuredRecipe,
} from './structured-recipes';

type Method = Extract<PaperMethod, 'dense' | 'MvP'> | StructuredMethod;

const round = (value: number, digits = 4) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Fine-prunes a fresh model from the pretrained encoder with one method; final masks applied. */
async function finePrune(options: {
  method: Method;
  remaining: number;
  headsRemaining: number;
  seed: number;
  steps: number;
  task: ReturnType<typeof loadTask>;
  pretrained: string;
  /** The dense fine-tuned teacher of the same seed: distillation as encoder-transfer.ts does it. */
  teacher?: BertModel;
  distil: { alphaDistil: number; temperature: number };
  /** The weights' peak learning rate. */
  learningRate: number;
  /** A fine-tuned Hugging Face directory to start from (classifier included) instead of `pretrained`. */
  initFrom?: string;
  units: Pick<StructuredRecipeOptions, 'headSelection' | 'unitScoring'>;
}): Promise<{ model: BertModel; seconds: number }> {
  const { method, steps, seed, task } = options;
  const start = options.initFrom ?? options.pretrained;
  const config = configFromHuggingFace(JSON.parse(readFileSync(path.join(start, 'config.json'), 'utf8')));
  const model = createBertModel({
    config,
    task: { type: 'classification', numLabels: task.labels.length },
    seed,
  });
  // The pretrained encoder has no classifier (strict: false); a fine-tuned start must have every entry.
  loadHuggingFaceWeights(model, await readSafetensorsFile(path.join(start, 'model.safetensors')), {
    strict: options.initFrom !== undefined,
  });
  const warmupSteps = Math.round(0.1 * steps);
  const cooldownSteps = Math.round(0.2 * steps);
  // Linear warm-up over 10% then linear decay (BERT fine-tuning), as encoder-transfer.ts.
  const weights = adam({
    learningRate: learningRateSchedule(options.learningRate, {
      type: 'linear',
      warmupSteps,
      totalSteps: steps,
    }),
    weightDecay: 0.01,
  });
  const scoreOptimizer = () => adam({ learningRate: 5e-2 });
  const recipe =
    method === 'dense' || method === 'MvP'
      ? paperRecipe({
          method,
          remaining: options.remaining,
          totalSteps: steps,
          warmupSteps,
          cooldownSteps,
          weights,
          scores: scoreOptimizer(),
        })
      : structuredRecipe({
          method,
          remaining: options.remaining,
          headsRemaining: options.headsRemaining,
          ...options.units,
          hiddenSize: config.hiddenSize,
          headSize: config.hiddenSize / config.numHeads,
          totalSteps: steps,
          warmupSteps,
          cooldownSteps,
          weights,
          scoreOptimizer,
        });
  // Default α_ce = α_distil = 0.5, T = 2: the transfer benchmark's distillation (Movement Pruning Sec. 6.2).
  const { alphaDistil, temperature } = options.distil;
  const lossTerms: LossTerm[] = [
    ...(recipe.lossTerms ?? []),
    ...(options.teacher
      ? [distillation({ teacher: options.teacher, temperature, alphaDistil, alphaCe: 1 - alphaDistil })]
      : []),
  ];
  const pruner = new Pruner({ model, ...recipe, lossTerms, seed, gradientClipping: { maxNorm: 1 } });
  const source = batchesFromEncoded(task.train, { batchSize: 16, seed, classes: task.labels.length });
  const started = performance.now();
  await pruner.run({ data: (step: number) => source.batch(step), untilStep: steps });
  if (method !== 'dense') await pruner.updateMasks();
  pruner.dispose();
  return { model, seconds: (performance.now() - started) / 1000 };
}

/** Best (lowest) CPU time per call of `dense` and `candidate` in alternating blocks, and the ratio. */
function sideBySide(dense: () => tf.Tensor, candidate: () => tf.Tensor, blocks: number) {
  const call = (run: () => tf.Tensor) => () => {
    const y = run();
    y.dataSync();
    y.dispose();
  };
  const [d, c] = blocksSideBySide(call(dense), call(candidate), blocks, 20, 300);
  const best = (values: number[]) => Math.min(...values);
  return {
    denseMs: round(best(d.cpu), 3),
    ms: round(best(c.cpu), 3),
    speedup: round(best(d.cpu) / best(c.cpu), 3),
    medianSpeedup: round(median(d.cpu) / median(c.cpu), 3),
    wallSpeedup: round(median(d.wall) / median(c.wall), 3),
  };
}

async function oneRun(values: Record<string, string | boolean | undefined>) {
  const started = performance.now();
  const log = (message: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);
  const backend = await selectBackend(String(values.backend));
  const taskName = values.task === 'spam' ? 'spam-assassin' : 'brown-genre';
  const task = loadTask(taskName, values.data as string | undefined, Number(values.sequence));
  const method = values.method as Method;
  if (!['dense', 'MvP', ...STRUCTURED_METHODS].includes(method)) throw new Error(`unknown method ${method}`);
  const seed = Number(values.seed);
  const remaining = method === 'dense' ? 1 : method === '2:4' ? 0.5 : Number(values.remaining);
  const levers = leversOf(values, method);
  // --teachers DIR: the dense fine-tuned model of this seed, saved by encoder-transfer.ts under DIR/seed-<seed>.
  const teacherDirectory = values.teachers ? path.join(String(values.teachers), `seed-${seed}`) : undefined;
  const teacher = teacherDirectory
    ? (
        await loadHuggingFaceDirectory(teacherDirectory, {
          task: { type: 'classification', numLabels: task.labels.length },
          seed,
          strict: true,
        })
      ).model
    : undefined;
  const headTask = { type: 'classification', numLabels: task.labels.length } as const;
  // --devExamples N: every k-th dev example, N of them (the transfer tables use 527 of Brown's 2,106); 0: all.
  const dev = everyNth(task.dev, Number(values.devExamples));
  const devBatches = () =>
    batchesFromEncoded(dev, {
      batchSize: 64,
      shuffle: false,
      dropRemainder: false,
      classes: task.labels.length,
    }).evaluationBatches();
  const accuracy = async (bert: BertModel) => round((await evaluateClassifier(bert, devBatches())).accuracy);
  // The dense fine-tuned model of this seed as loaded here: the reference of a run that starts from it.
  const teacherAccuracy = teacher ? await accuracy(teacher) : undefined;
  const { model, seconds } = await finePrune({
    teacher,
    method,
    remaining,
    headsRemaining: Number(values.headsRemaining),
    seed,
    steps: levers.steps,
    task,
    pretrained: String(values.pretrained),
    distil: { alphaDistil: levers.alphaDistil, temperature: levers.temperature },
    learningRate: levers.learningRate,
    ...(levers.init === 'teacher' ? { initFrom: teacherDirectory } : {}),
    units: { headSelection: levers.headSelection, unitScoring: levers.unitScoring },
  });
  teacher?.dispose();
  log(
    `${method} ${remaining} seed ${seed}${teacher ? ` with distillation (teacher ${teacherAccuracy})` : ''}: fine-pruned in ${seconds.toFixed(0)} s`,
  );
  const report = await sparsityReport(model.parameters());
  const { model: shrunk, report: shrinkReport } = await shrinkBertModel(model);
  // A dense (or barely pruned) model's compact export may exceed its safetensors size; here the
  // export is only the way the weights reach the timed models, so that is allowed.
  const compactBytes = async (bert: BertModel) =>
    encodeCompactHuggingFace(
      { config: huggingFaceConfig(bert), tensors: await huggingFaceTensors(bert) },
      { allowLarger: true },
    );
  const compactDense = await readCompactModel(await compactBytes(model));
  const compactShrunk = await readCompactModel(await compactBytes(shrunk));
  const masked = await accuracy(model);
  model.dispose();
  shrunk.dispose();
  clearSparseDenseChoices();
  const dense = loadDenseBert(compactDense, headTask);
  const deployed = {
    shrunk: { model: loadDenseBert(compactShrunk, headTask), dispose() {} },
    shrunkSparse: loadSparseBert(compactShrunk, headTask, { mode: 'auto' }),
  };
  deployed.shrunk.dispose = () => deployed.shrunk.model.dispose();
  const accuracies: Record<string, number> = { masked };
  for (const [name, bert] of Object.entries(deployed)) accuracies[name] = await accuracy(bert.model);
  log(`dev accuracy ${JSON.stringify(accuracies)}`);
  const length = task.dev.maxLength;
  const timings: Record<string, unknown> = {};
  for (const batch of [1, 16]) {
    const x = tf.tidy(() => ({
      inputIds: tf.tensor2d(dev.inputIds.slice(0, batch * length), [batch, length], 'int32'),
      attentionMask: tf.tensor2d(dev.attentionMask.slice(0, batch * length), [batch, length], 'int32'),
    }));
    const forward = (bert: BertModel) => () => bert.forward(x, { training: false }) as tf.Tensor;
    const row: Record<string, unknown> = {};
    for (const [name, bert] of Object.entries(deployed))
      row[name] = sideBySide(forward(dense), forward(bert.model), Number(values.blocks));
    timings[`batch ${batch} × ${length} tokens`] = row;
    log(`batch ${batch}: ${JSON.stringify(row)}`);
    tf.dispose([x.inputIds, x.attentionMask]);
  }
  dense.dispose();
  for (const bert of Object.values(deployed)) bert.dispose();
  const result = {
    backend: backend.backend,
    flags: values,
    task: { name: task.name, dev: dev.labels.length },
    method,
    targetRemaining: remaining,
    headsRemaining: hasHeads(method) ? Number(values.headsRemaining) : undefined,
    distillation: teacher !== undefined,
    ...levers,
    variant: variantOf(values, method, teacher !== undefined, levers),
    teacherAccuracy,
    seed,
    remaining: round(1 - report.sparsity),
    heads: shrinkReport.layers.map((layer) => `${layer.heads.kept}/${layer.heads.before}`),
    neurons: shrinkReport.layers.map((layer) => `${layer.neurons.kept}/${layer.neurons.before}`),
    encoderEntries: shrinkReport.encoderEntries,
    accuracy: accuracies,
    fineTuningSeconds: Math.round(seconds),
    latency: timings,
  };
  const file = writeResult(
    `encoder-structured-${values.task}-${method.replace(':', 'of')}-${remaining}${result.variant}-s${seed}`,
    result,
  );
  log(`written to ${file}`);
  return result;
}

const hasHeads = (method: Method) => method === 'headsNeurons' || method === 'units';

/** The levers of issue 18's goal (see the header), checked; defaults are the original protocol's. */
function leversOf(values: Record<string, string | boolean | undefined>, method: Method) {
  const choice = <T extends string>(flag: string, allowed: readonly T[]): T => {
    const value = String(values[flag]) as T;
    if (!allowed.includes(value))
      throw new Error(`--${flag} must be one of ${allowed.join(', ')}, got ${value}`);
    return value;
  };
  const positive = (flag: string) => {
    const value = Number(values[flag]);
    if (!(value > 0 && Number.isFinite(value)))
      throw new Error(`--${flag} must be a positive number, got ${values[flag]}`);
    return value;
  };
  const init = choice('init', ['pretrained', 'teacher'] as const);
  if (init === 'teacher' && !values.teachers) throw new Error('--init teacher needs --teachers DIR');
  const alphaDistil = Number(values.alphaDistil);
  if (!(alphaDistil >= 0 && alphaDistil <= 1))
    throw new Error(`--alphaDistil must be in [0, 1], got ${values.alphaDistil}`);
  return {
    init,
    steps: positive('steps'),
    learningRate: positive('learningRate'),
    alphaDistil,
    temperature: positive('temperature'),
    headSelection: method === 'units' ? choice('headSelection', ['global', 'local'] as const) : undefined,
    unitScoring: method === 'units' ? choice('unitScoring', ['movement', 'magnitude'] as const) : undefined,
  };
}

/**
 * The part of a run's file name (and table key) after the method and target that says how it
 * differs from the original protocol; empty for the original runs, so their names are unchanged.
 */
function variantOf(
  values: Record<string, string | boolean | undefined>,
  method: Method,
  distilled: boolean,
  levers: ReturnType<typeof leversOf>,
): string {
  const heads = Number(values.headsRemaining);
  const parts = [
    method === 'units' || (method === 'headsNeurons' && heads !== 0.5) ? `heads${heads}` : '',
    method === 'units' ? `${levers.headSelection}-${levers.unitScoring}` : '',
    levers.init === 'teacher' ? 'fromTeacher' : '',
    distilled ? 'kd' : '',
    distilled && (levers.alphaDistil !== 0.5 || levers.temperature !== 2)
      ? `a${levers.alphaDistil}-T${levers.temperature}`
      : '',
    levers.steps !== 150 ? `steps${levers.steps}` : '',
    levers.learningRate !== 3e-4 ? `lr${levers.learningRate}` : '',
  ];
  return parts
    .filter(Boolean)
    .map((part) => `-${part}`)
    .join('');
}

/** Merges the single runs of a task: accuracy and speed-ups, mean ± std over seeds, per method and target. */
function table(taskFlag: string) {
  const prefix = `encoder-structured-${taskFlag}-`;
  const runs = readdirSync(RESULTS_DIR)
    .filter((name) => name.startsWith(prefix) && /-s\d+\.json$/.test(name))
    .map((name) => JSON.parse(readFileSync(path.join(RESULTS_DIR, name), 'utf8')));
  // Runs written before the levers had no `variant`: it is rebuilt from their heads share and
  // distillation, as variantOf names them, so seeds of the same recipe share a row.
  const legacyVariant = (run: Record<string, any>) =>
    (run.method === 'headsNeurons' && run.headsRemaining !== undefined && run.headsRemaining !== 0.5
      ? `-heads${run.headsRemaining}`
      : '') + (run.distillation === true ? '-kd' : '');
  const keyOf = (run: Record<string, any>) =>
    `${run.method}|${run.targetRemaining}|${run.variant ?? legacyVariant(run)}`;
  const keys = [...new Set(runs.map(keyOf))];
  const denseAccuracy = runs.filter((run) => run.method === 'dense').map((run) => run.accuracy.masked * 100);
  // The transfer benchmark's dense runs of the same protocol (encoder-transfer.ts, 150 steps on
  // SpamAssassin), for the reference accuracy beside this script's own dense runs.
  const transferTask = taskFlag === 'spam' ? 'spam-assassin' : 'brown-genre';
  const transferDense = readdirSync(RESULTS_DIR)
    .filter((name) => new RegExp(`^encoder-gpu-${transferTask}-dense-s\\d+\\.json$`).test(name))
    .map((name) => JSON.parse(readFileSync(path.join(RESULTS_DIR, name), 'utf8')).runs[0].accuracy * 100);
  const rows = keys.map((key) => {
    const group = runs.filter((run) => keyOf(run) === key);
    const stat = (values: number[]) => ({ mean: round(mean(values), 2), std: round(std(values), 2) });
    const speedups: Record<string, unknown> = {};
    for (const batch of Object.keys(group[0].latency)) {
      for (const form of ['shrunk', 'shrunkSparse']) {
        speedups[`${form} ${batch}`] = stat(group.map((run) => run.latency[batch][form].speedup));
      }
    }
    const accuracy = stat(group.map((run) => run.accuracy.masked * 100));
    return {
      method: group[0].method,
      targetRemaining: group[0].targetRemaining,
      headsRemaining: group[0].headsRemaining,
      distillation: group[0].distillation === true,
      variant: group[0].variant ?? '',
      init: group[0].init ?? 'pretrained',
      steps: group[0].steps ?? 150,
      seeds: group.map((run) => run.seed),
      accuracy,
      deployedAccuracyEqual: group.every(
        (run) =>
          run.accuracy.shrunk === run.accuracy.masked && run.accuracy.shrunkSparse === run.accuracy.masked,
      ),
      pointsBelowDense: denseAccuracy.length > 0 ? round(mean(denseAccuracy) - accuracy.mean, 2) : undefined,
      pointsBelowTransferDense:
        transferDense.length > 0 ? round(mean(transferDense) - accuracy.mean, 2) : undefined,
      // The dense fine-tuned teachers of the same seeds, as loaded by the run (distilled runs only).
      teacherAccuracy: group.every((run) => run.teacherAccuracy !== undefined)
        ? stat(group.map((run) => run.teacherAccuracy * 100))
        : undefined,
      pointsBelowTeacher: group.every((run) => run.teacherAccuracy !== undefined)
        ? round(mean(group.map((run) => (run.teacherAccuracy - run.accuracy.masked) * 100)), 2)
        : undefined,
      remaining: stat(group.map((run) => run.remaining * 100)),
      // What the deployed (shrunk) encoder layers hold, as a share of the dense ones.
      encoderEntriesAfterShrink: stat(
        group.map((run) => (run.encoderEntries.after / run.encoderEntries.before) * 100),
      ),
      heads: group[0].heads,
      headsPerSeed: group.map((run) => run.heads.join(' ')),
      neurons: group[0].neurons,
      speedups,
    };
  });
  const file = writeResult(`encoder-structured-${taskFlag}`, {
    task: taskFlag,
    dense: { thisScript: denseAccuracy, transferBenchmark: transferDense.map((value) => round(value, 2)) },
    rows,
  });
  console.log(JSON.stringify(rows, null, 1));
  console.log(`written to ${file}`);
  return { rows };
}

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: 'string', default: 'wasm' },
      task: { type: 'string', default: 'spam' },
      method: { type: 'string', default: 'headsNeurons' },
      remaining: { type: 'string', default: '0.25' },
      headsRemaining: { type: 'string', default: '0.5' },
      seed: { type: 'string', default: '1' },
      steps: { type: 'string', default: '150' },
      sequence: { type: 'string', default: '128' },
      blocks: { type: 'string', default: '8' },
      devExamples: { type: 'string', default: '0' },
      pretrained: { type: 'string', default: PRETRAINED_DIR },
      data: { type: 'string' },
      teachers: { type: 'string' },
      init: { type: 'string', default: 'pretrained' },
      headSelection: { type: 'string', default: 'global' },
      unitScoring: { type: 'string', default: 'movement' },
      alphaDistil: { type: 'string', default: '0.5' },
      temperature: { type: 'string', default: '2' },
      learningRate: { type: 'string', default: '0.0003' },
      table: { type: 'boolean', default: false },
    },
  });
  if (values.table) return table(String(values.task));
  return oneRun(values);
}

runIfScript(import.meta.url, main);
