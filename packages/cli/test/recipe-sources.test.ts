import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { validateRecipe, type RecipeInput } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import { bertBaseUncasedConfig, createBertModel } from '@fineprune/transformers';
import { loadHuggingFaceDirectory, saveHuggingFaceDirectory } from '@fineprune/transformers/node';
import { fileSystem } from '@fineprune/layers';
import { readCompactFile } from '@fineprune/sparse';
import { loadDenseLayersModel } from '@fineprune/sparse/layers';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runRecipe } from '../src/run-recipe';
import { temporaryDirectory } from './support';

const WORDS = [
  'win',
  'money',
  'now',
  'free',
  'prize',
  'see',
  'you',
  'at',
  'lunch',
  'the',
  'meeting',
  'notes',
];
const VOCABULARY = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...WORDS];

/** A tiny BERT (2 layers of width 8) saved as a Hugging Face folder with its vocab.txt. */
async function tinyBertFolder(directory: string, numLabels = 2): Promise<string> {
  const folder = path.join(directory, 'bert');
  const config = {
    ...bertBaseUncasedConfig,
    vocabSize: VOCABULARY.length,
    hiddenSize: 8,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 16,
    maxPositions: 16,
  };
  const model = createBertModel({ config, task: { type: 'classification', numLabels }, seed: 5 });
  await saveHuggingFaceDirectory(model, folder);
  model.dispose();
  writeFileSync(path.join(folder, 'vocab.txt'), `${VOCABULARY.join('\n')}\n`);
  return folder;
}

/** 48 rows: spam texts from the first five words, ham from the others. */
function spamJsonl(directory: string): void {
  const rows = Array.from({ length: 48 }, (_, index) => {
    const spam = index % 2 === 1;
    const pool = spam ? WORDS.slice(0, 5) : WORDS.slice(5);
    const text = Array.from({ length: 4 }, (_, at) => pool[(index + at * 3) % pool.length]).join(' ');
    return JSON.stringify({ text, label: spam ? 'spam' : 'ham' });
  });
  writeFileSync(path.join(directory, 'train.jsonl'), `${rows.join('\n')}\n`);
}

function bertRecipe(overrides: Partial<RecipeInput> = {}): RecipeInput {
  return {
    version: 1,
    name: 'tiny-bert',
    seed: 7,
    backend: 'cpu',
    model: { huggingFace: './bert' },
    data: {
      text: { train: 'train.jsonl', validationFraction: 0.25 },
      tokenizer: { maxLength: 8 },
      batchSize: 4,
    },
    training: {
      steps: 8,
      optimizer: { type: 'adamw', learningRate: 0.01, schedule: { type: 'linear', warmupSteps: 2 } },
      scoreOptimizer: { type: 'adam', learningRate: 0.05 },
      gradientAccumulation: 2,
      evaluateEvery: 4,
      metrics: ['accuracy', 'f1'],
      keepBest: { metric: 'f1' },
    },
    pruning: [
      {
        name: 'encoder',
        scores: { id: 'movement' },
        mask: { id: 'topV', options: { scope: 'local' } },
        schedule: {
          id: 'cubic',
          options: { finalSparsity: 0.5, totalSteps: 8, warmupSteps: 1, cooldownSteps: 1, interval: 1 },
        },
      },
    ],
    ...overrides,
  };
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('recipes on the user’s own data and a Hugging Face BERT', () => {
  it('fine-prunes a BERT folder on a JSONL file (AdamW, linear schedule, accumulation, F1, best model) and exports the Hugging Face layout', async () => {
    const directory = temporaryDirectory();
    await tinyBertFolder(directory);
    spamJsonl(directory);
    const before = tf.memory().numTensors;
    const outcome = await runRecipe({ recipe: validateRecipe(bertRecipe()), baseDirectory: directory });
    expect(tf.memory().numTensors).toBe(before);
    expect(outcome.status).toBe('completed');
    const record = outcome.record!;
    expect(record.final.remaining).toBeGreaterThan(0.4);
    expect(record.final.remaining).toBeLessThan(0.6);
    const last = record.evaluations.at(-1)!;
    expect(last.step).toBe(8);
    expect(last.f1).toBeGreaterThanOrEqual(0);
    expect(last.f1).toBeLessThanOrEqual(1);
    const out = path.join(directory, 'out', 'tiny-bert');
    // The export is the Hugging Face layout, with the masks applied: half of each projection is zero.
    expect(existsSync(path.join(out, 'model', 'config.json'))).toBe(true);
    const { model } = await loadHuggingFaceDirectory(path.join(out, 'model'));
    const query = model
      .parameters()
      .find((parameter) => parameter.name === 'layer_0/attention/query/kernel')!;
    const values = await query.weight.data();
    const zeros = Array.from(values).filter((value) => value === 0).length;
    expect(zeros / values.length).toBeCloseTo(0.5, 1);
    model.dispose();
    // The best evaluation by F1 is kept beside it.
    const best = JSON.parse(readFileSync(path.join(out, 'best.json'), 'utf8'));
    expect(best.metric).toBe('f1');
    const f1s = record.evaluations.map((point) => point.f1!);
    expect(best.value).toBe(Math.max(...f1s));
    expect(best.step).toBe(record.evaluations[f1s.indexOf(Math.max(...f1s))]!.step);
    expect(existsSync(path.join(out, 'best', 'config.json'))).toBe(true);
  }, 120_000);

  it('resumes a BERT run bit for bit (weights, masks, scores, optimizer and learning-rate state)', async () => {
    const directory = temporaryDirectory();
    await tinyBertFolder(directory);
    spamJsonl(directory);
    const recipe = validateRecipe(bertRecipe({ checkpoint: { every: 3 }, export: { report: false } }));
    const whole = await runRecipe({
      recipe,
      baseDirectory: directory,
      outputDirectory: path.join(directory, 'a'),
    });
    expect(whole.status).toBe('completed');
    const controller = new AbortController();
    const first = await runRecipe({
      recipe,
      baseDirectory: directory,
      outputDirectory: path.join(directory, 'b'),
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'step' && event.step === 5) controller.abort();
      },
    });
    expect(first.status).toBe('interrupted');
    const resumed = await runRecipe({
      recipe,
      baseDirectory: directory,
      outputDirectory: path.join(directory, 'b'),
      resume: true,
    });
    expect(resumed.status).toBe('completed');
    const read = async (folder: string) => {
      const { model } = await loadHuggingFaceDirectory(path.join(folder, 'model'));
      const all = await Promise.all(
        model.variables().map(async (entry) => [entry.name, Array.from(await entry.variable.data())]),
      );
      model.dispose();
      return all;
    };
    expect(await read(path.join(directory, 'b'))).toEqual(await read(path.join(directory, 'a')));
  }, 180_000);

  it('distils from a BERT teacher folder (a complete classifier of the same labels)', async () => {
    const directory = temporaryDirectory();
    await tinyBertFolder(directory);
    spamJsonl(directory);
    const teacher = path.join(directory, 'teacher');
    mkdirSync(teacher);
    const recipe = bertRecipe({
      lossTerms: [
        {
          id: 'distillation',
          options: { teacher: './bert', temperature: 2, alphaDistil: 0.5, alphaCe: 0.5 },
        },
      ],
      training: {
        steps: 2,
        optimizer: { type: 'adamw', learningRate: 0.01 },
        scoreOptimizer: { type: 'adam', learningRate: 0.01 },
        evaluateEvery: 0,
      },
      pruning: [
        {
          scores: { id: 'movement' },
          mask: { id: 'topV' },
          schedule: { id: 'constant', options: { sparsity: 0.5 } },
        },
      ],
    });
    const before = tf.memory().numTensors;
    const steps: Array<{ loss: number; taskLoss: number }> = [];
    const outcome = await runRecipe({
      recipe: validateRecipe(recipe),
      baseDirectory: directory,
      onEvent: (event) => {
        if (event.type === 'step') steps.push({ loss: event.loss, taskLoss: event.taskLoss });
      },
    });
    expect(outcome.status).toBe('completed');
    expect(tf.memory().numTensors).toBe(before);
    // loss = 0.5 · CE + 0.5 · T² · KL with KL ≥ 0: at least half the task loss, and not the task
    // loss itself (the student trains with dropout, the teacher without, so KL > 0).
    expect(steps).toHaveLength(2);
    for (const { loss, taskLoss } of steps) {
      expect(loss).toBeGreaterThanOrEqual(0.5 * taskLoss - 1e-6);
      expect(Math.abs(loss - taskLoss)).toBeGreaterThan(1e-4);
    }
    // A teacher of another number of labels is refused before training, naming the file.
    await tinyBertFolder(teacher, 3);
    const wrong = validateRecipe({
      ...recipe,
      name: 'wrong-teacher',
      lossTerms: [{ id: 'distillation', options: { teacher: './teacher/bert' } }],
    });
    await expect(runRecipe({ recipe: wrong, baseDirectory: directory })).rejects.toMatchObject({
      code: 'CHECKPOINT_MISMATCH',
    });
  }, 120_000);

  it('prunes a TF.js model on an image folder (PNG files, one folder per class), exported as tfjs or as the compact sparse format', async () => {
    const directory = temporaryDirectory();
    for (const [label, value] of [
      ['dark', 20],
      ['light', 230],
    ] as const) {
      mkdirSync(path.join(directory, 'images', label), { recursive: true });
      for (let index = 0; index < 10; index++) {
        const image = new PNG({ width: 4, height: 4 });
        for (let pixel = 0; pixel < 16; pixel++)
          image.data.set([value + index, value, value, 255], pixel * 4);
        writeFileSync(path.join(directory, 'images', label, `${index}.png`), PNG.sync.write(image));
      }
    }
    const run = (format: 'tfjs' | 'sparse') =>
      runRecipe({
        recipe: validateRecipe({
          version: 1,
          name: `folder-${format}`,
          seed: 1,
          backend: 'cpu',
          model: { builtin: 'mlp-16-8-2' },
          data: { images: { train: 'images', width: 4, height: 4, validationFraction: 0.2 }, batchSize: 4 },
          training: { steps: 4, optimizer: { type: 'sgd', learningRate: 0.1, schedule: { type: 'cosine' } } },
          pruning: [
            {
              scores: { id: 'magnitude' },
              mask: { id: 'topV' },
              schedule: { id: 'constant', options: { sparsity: 0.5 } },
            },
          ],
          export: { format },
        }),
        baseDirectory: directory,
      });
    const outcome = await run('tfjs');
    expect(outcome.status).toBe('completed');
    expect(outcome.record!.final.remaining).toBeCloseTo(0.5, 2);
    const stock = await tfl.loadLayersModel(fileSystem(path.join(directory, 'out', 'folder-tfjs', 'model')));
    // The same run exported as one compact model.fpsparse holds the same weights, exactly (float32).
    expect((await run('sparse')).status).toBe('completed');
    const file = path.join(directory, 'out', 'folder-sparse', 'model', 'model.fpsparse');
    const compact = await loadDenseLayersModel(await readCompactFile(file), { source: file });
    const weights = (model: tfl.LayersModel) =>
      model.getWeights().map((weight) => Array.from(weight.dataSync()));
    expect(weights(compact)).toEqual(weights(stock));
    expect(weights(stock)[0]!.filter((value) => value === 0).length).toBe(64);
    stock.dispose();
    compact.dispose();
  }, 60_000);
});
