import path from 'node:path';
import { brownGenreTask, spamTask } from '@fineprune/corpora';
import { type RecipeInput, validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import {
  BERT_VOCAB_SIZE,
  createBertTokenizer,
  disposeBatch,
  ExampleOrder,
  type TextBatch,
} from '@fineprune/text';
import { bertBaseUncasedConfig, createBertModel } from '@fineprune/transformers';
import { saveHuggingFaceDirectory } from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_TEXT_SPLIT_SEED, loadRunData } from '../src/data-sources';
import { runRecipe } from '../src/run-recipe';
import { temporaryDirectory } from './support';

const tokenizer = createBertTokenizer();

/** A tiny BERT (2 layers of width 8) over the bert-base-uncased vocabulary, as a Hugging Face folder without vocab.txt. */
async function tinyBertFolder(directory: string, numLabels: number): Promise<void> {
  const config = {
    ...bertBaseUncasedConfig,
    vocabSize: BERT_VOCAB_SIZE,
    hiddenSize: 8,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 16,
    maxPositions: 64,
  };
  const model = createBertModel({ config, task: { type: 'classification', numLabels }, seed: 2 });
  await saveHuggingFaceDirectory(model, path.join(directory, 'bert'));
  model.dispose();
}

function builtinRecipe(dataset: 'spam-assassin' | 'brown-genre', data: Partial<RecipeInput['data']> = {}) {
  return validateRecipe({
    version: 1,
    name: dataset,
    seed: 11,
    backend: 'cpu',
    model: { huggingFace: './bert' },
    data: { dataset, tokenizer: { maxLength: 16 }, batchSize: 8, ...data },
    training: {
      steps: 4,
      optimizer: { type: 'adamw', learningRate: 0.01 },
      scoreOptimizer: { type: 'adam', learningRate: 0.05 },
      evaluateEvery: 2,
    },
    pruning: [
      {
        name: 'encoder',
        scores: { id: 'movement' },
        mask: { id: 'topV', options: { scope: 'local' } },
        schedule: {
          id: 'cubic',
          options: { finalSparsity: 0.5, totalSteps: 4, warmupSteps: 1, cooldownSteps: 1, interval: 1 },
        },
      },
    ],
  } as RecipeInput);
}

/** Checks a batch against the examples at `indices`: shapes, labels and each row's tokens. */
async function expectBatchOf(
  batch: TextBatch,
  examples: readonly { text: string; label: number }[],
  indices: Int32Array,
  maxLength: number,
): Promise<void> {
  expect(batch.x.inputIds.shape).toEqual([indices.length, maxLength]);
  expect([batch.x.inputIds.dtype, batch.x.attentionMask.dtype, batch.y.dtype]).toEqual([
    'int32',
    'int32',
    'int32',
  ]);
  expect(Array.from(await batch.y.data())).toEqual(Array.from(indices, (index) => examples[index]!.label));
  const ids = (await batch.x.inputIds.array()) as number[][];
  indices.forEach((index, row) => {
    const encoded = tokenizer.encode(examples[index]!.text, { maxLength, padToMaxLength: true });
    expect(ids[row]).toEqual(Array.from(encoded.ids));
  });
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('the built-in text tasks (data.dataset: spam-assassin | brown-genre)', () => {
  it('spam-assassin: the corpus split (20% of each label to dev, by the fixed seed 0), batches of the task examples, and a run', async () => {
    const directory = temporaryDirectory();
    await tinyBertFolder(directory, 2);
    const task = spamTask({ seed: BUILTIN_TEXT_SPLIT_SEED });
    const { train, dev } = task.stats;
    // The corpus sends round(0.2 · n) of each label's n deduplicated messages to dev.
    expect(dev.ham).toBe(Math.round(0.2 * (train.ham + dev.ham)));
    expect(dev.spam).toBe(Math.round(0.2 * (train.spam + dev.spam)));
    const recipe = builtinRecipe('spam-assassin');
    const data = await loadRunData(recipe, directory);
    expect([data.kind, data.name, data.classes, data.sequenceLength]).toEqual([
      'text',
      'spam-assassin',
      2,
      16,
    ]);
    expect(data.labels).toEqual(['ham', 'spam']);
    expect([data.trainCount, data.testCount]).toEqual([train.ham + train.spam, dev.ham + dev.spam]);
    expect(data.trainCount).toBe(task.train.length);
    // Training batch 1 holds the task's training examples in the recipe seed's order; evaluation
    // walks the dev examples in order.
    const order = new ExampleOrder(task.train.length, { batchSize: 8, seed: 11 });
    const before = tf.memory().numTensors;
    const batch = data.train.batch(1) as TextBatch;
    await expectBatchOf(batch, task.train, order.indices(1), 16);
    disposeBatch(batch);
    const evaluation = data.evaluationBatches();
    const first = evaluation.next().value as TextBatch;
    evaluation.return?.();
    await expectBatchOf(
      first,
      task.dev,
      Int32Array.from({ length: 64 }, (_, index) => index),
      16,
    );
    disposeBatch(first);
    expect(tf.memory().numTensors).toBe(before);

    const outcome = await runRecipe({
      recipe: builtinRecipe('spam-assassin', { testLimit: 32 }),
      baseDirectory: directory,
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(outcome.status).toBe('completed');
    expect(outcome.record!.evaluations.at(-1)!.step).toBe(4);
    expect(outcome.record!.final.remaining).toBeCloseTo(0.5, 2);
  }, 240_000);

  it('brown-genre: 15 genres, chunks of data.tokenizer.maxLength wordpieces, the corpus split, batches of the chunks', async () => {
    const directory = temporaryDirectory();
    await tinyBertFolder(directory, 15);
    const data = await loadRunData(builtinRecipe('brown-genre', { tokenizer: { maxLength: 64 } }), directory);
    const task = brownGenreTask(tokenizer, { seed: BUILTIN_TEXT_SPLIT_SEED, chunkTokens: 64 });
    expect(data.labels).toEqual(task.labels);
    expect(data.labels).toHaveLength(15);
    expect([data.trainCount, data.testCount]).toEqual([task.train.length, task.dev.length]);
    const batch = data.train.batch(0) as TextBatch;
    await expectBatchOf(
      batch,
      task.train,
      new ExampleOrder(task.train.length, { batchSize: 8, seed: 11 }).indices(0),
      64,
    );
    disposeBatch(batch);
  }, 240_000);
});
