import { readFileSync } from 'node:fs';
import path from 'node:path';
import { validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import { loadBertCheckpoint, loadHuggingFaceDirectory } from '@fineprune/transformers/node';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { runRecipe } from '../src/run-recipe';
import type { RunRecord } from '../src/run-record';
import { bertRecipe, logitsOfTwoRows, spamJsonl, tinyBertFolder } from './bert-support';
import { temporaryDirectory } from './support';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('export.shrink of a BERT recipe', () => {
  it('writes the shrunk encoder in the Hugging Face layout; it reloads with the per-layer sizes and the masked logits', async () => {
    const directory = temporaryDirectory();
    await tinyBertFolder(directory, 2, { hiddenSize: 8, intermediateSize: 16 });
    spamJsonl(directory);
    const outcome = await runRecipe({
      recipe: validateRecipe(
        bertRecipe({
          training: {
            steps: 8,
            optimizer: { type: 'adamw', learningRate: 0.01 },
            evaluateEvery: 4,
          },
          pruning: [
            {
              name: 'units',
              scores: { id: 'unitMagnitude' },
              mask: { id: 'unitTopV', options: { scope: 'local' } },
              schedule: {
                id: 'cubic',
                options: { finalSparsity: 0.5, totalSteps: 8, warmupSteps: 1, cooldownSteps: 1, interval: 1 },
              },
            },
          ],
          export: { shrink: true },
        }),
      ),
      baseDirectory: directory,
    });
    expect(outcome.status).toBe('completed');
    const out = path.join(directory, 'out', 'tiny-bert');
    const record: RunRecord = JSON.parse(readFileSync(path.join(out, 'run.json'), 'utf8'));
    // Local Top-v at 50%: one of 2 heads and 8 of 16 neurons kept in each of the 2 layers.
    expect(record.shrink!.structures.map(({ name, count, kept }) => [name, count, kept])).toEqual([
      ['layer_0/attention/heads', 2, 1],
      ['layer_0/ffn/neurons', 16, 8],
      ['layer_1/attention/heads', 2, 1],
      ['layer_1/ffn/neurons', 16, 8],
    ]);
    expect(record.shrink!.parametersAfter).toBeLessThan(record.shrink!.parametersBefore);
    const config = JSON.parse(readFileSync(path.join(out, 'model', 'config.json'), 'utf8'));
    expect(config.intermediate_sizes).toEqual([8, 8]);
    expect(Object.keys(config.pruned_heads).sort()).toEqual(['0', '1']);

    const { model: reloaded } = await loadHuggingFaceDirectory(path.join(out, 'model'));
    expect(reloaded.config.intermediateSizes).toEqual([8, 8]);
    const { model: masked, state } = await loadBertCheckpoint(path.join(out, 'checkpoint'));
    tf.dispose(Object.values(state.tensors));
    const expected = logitsOfTwoRows(masked);
    const actual = logitsOfTwoRows(reloaded);
    const difference = tf.tidy(() => tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0]!);
    expect(difference).toBeLessThanOrEqual(1e-5);
    tf.dispose([expected, actual]);
    masked.dispose();
    reloaded.dispose();
  }, 120_000);
});
