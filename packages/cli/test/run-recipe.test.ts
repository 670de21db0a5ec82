import { validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { runRecipe } from '../src/run-recipe';
import { dataset, temporaryDirectory, tinyRecipe } from './support';

describe('runRecipe', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('frees every tensor it made, after a completed run and after a run that fails while building its plugins', async () => {
    const mnist = await dataset('mnist');
    const directory = temporaryDirectory();
    // Warm-up: the first run registers kernels and caches that live for the process.
    await runRecipe({ recipe: validateRecipe(tinyRecipe()), baseDirectory: directory, dataset: mnist });
    const before = tf.memory().numTensors;
    const outcome = await runRecipe({
      recipe: validateRecipe(tinyRecipe({ name: 'second' })),
      baseDirectory: directory,
      dataset: mnist,
    });
    expect(outcome.status).toBe('completed');
    expect(tf.memory().numTensors).toBe(before);
    const failing = tinyRecipe({ name: 'failing' });
    // A learned score strategy without training.scoreOptimizer fails in the plugin phase, after the model is built.
    failing.pruning[0]!.scores = { id: 'movement' };
    await expect(
      runRecipe({ recipe: validateRecipe(failing), baseDirectory: directory, dataset: mnist }),
    ).rejects.toMatchObject({ code: 'INVALID_RECIPE' });
    expect(tf.memory().numTensors).toBe(before);
  });
});
