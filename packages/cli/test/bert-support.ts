/** A tiny BERT folder, a text file for it and a recipe, shared by the BERT recipe tests. */

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RecipeInput } from '@fineprune/recipes';
import { type BertModel, bertBaseUncasedConfig, createBertModel } from '@fineprune/transformers';
import * as tf from '@tensorflow/tfjs-core';
import { saveHuggingFaceDirectory } from '@fineprune/transformers/node';

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
export const VOCABULARY = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...WORDS];

/**
 * A tiny BERT (2 layers of width 8, or the widths given; 16 positions, or `maxPositions`) saved as a
 * Hugging Face folder with its vocab.txt.
 */
export async function tinyBertFolder(
  directory: string,
  numLabels = 2,
  widths: { hiddenSize: number; intermediateSize: number } = { hiddenSize: 8, intermediateSize: 16 },
  maxPositions = 16,
): Promise<string> {
  const folder = path.join(directory, 'bert');
  const config = {
    ...bertBaseUncasedConfig,
    vocabSize: VOCABULARY.length,
    ...widths,
    numLayers: 2,
    numHeads: 2,
    maxPositions,
  };
  const model = createBertModel({ config, task: { type: 'classification', numLabels }, seed: 5 });
  await saveHuggingFaceDirectory(model, folder);
  model.dispose();
  writeFileSync(path.join(folder, 'vocab.txt'), `${VOCABULARY.join('\n')}\n`);
  return folder;
}

/** `count` rows (48 by default): spam texts from the first five words, ham from the others. */
export function spamJsonl(directory: string, file = 'train.jsonl', count = 48): void {
  const rows = Array.from({ length: count }, (_, index) => {
    const spam = index % 2 === 1;
    const pool = spam ? WORDS.slice(0, 5) : WORDS.slice(5);
    const text = Array.from({ length: 4 }, (_, at) => pool[(index + at * 3) % pool.length]).join(' ');
    return JSON.stringify({ text, label: spam ? 'spam' : 'ham' });
  });
  writeFileSync(path.join(directory, file), `${rows.join('\n')}\n`);
}

export function bertRecipe(overrides: Partial<RecipeInput> = {}): RecipeInput {
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

/** Logits of two 8-token rows (ids inside the tiny vocabulary of 17 entries, the second row padded). */
export function logitsOfTwoRows(model: BertModel): tf.Tensor {
  return tf.tidy(() => {
    const inputIds = tf.tensor2d(
      [
        [2, 5, 6, 7, 8, 9, 3, 0],
        [2, 14, 15, 16, 3, 0, 0, 0],
      ],
      undefined,
      'int32',
    );
    const attentionMask = tf.tensor2d(
      [
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 0, 0, 0],
      ],
      undefined,
      'int32',
    );
    return model.forward({ inputIds, attentionMask }, { training: false }) as tf.Tensor;
  });
}
