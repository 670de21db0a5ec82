import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RecipeInput, validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../../test/support';
import { runRecipe } from '../run-recipe';

const FIXTURE = fileURLToPath(new URL('../../test/__fixtures__/data-module.mjs', import.meta.url));

function moduleRecipe(exportName: string): RecipeInput {
  return {
    version: 1,
    name: `module-${exportName}`,
    seed: 0,
    backend: 'cpu',
    model: { builtin: 'mlp-4-8-2' },
    data: { module: './data-module.mjs', export: exportName, batchSize: 8 },
    training: { steps: 6, optimizer: { type: 'sgd', learningRate: 0.5 } },
    pruning: [
      {
        scores: { id: 'magnitude' },
        mask: { id: 'topV' },
        schedule: { id: 'constant', options: { sparsity: 0.5 } },
      },
    ],
    export: { report: false },
  };
}

/** Recipes here sit beside the fixture (inside the package, so the module resolves tfjs-core). */
function recipeDirectory(): string {
  return path.dirname(FIXTURE);
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('data modules', () => {
  it('trains on the batches a module makes and evaluates on its evaluation batches, without leaks', async () => {
    const before = tf.memory().numTensors;
    const outcome = await runRecipe({
      recipe: validateRecipe(moduleRecipe('createData')),
      baseDirectory: recipeDirectory(),
      outputDirectory: path.join(temporaryDirectory(), 'out'),
    });
    expect(outcome.status).toBe('completed');
    expect(outcome.record!.final.remaining).toBeCloseTo(0.5, 1);
    // 20 evaluation examples: accuracy is a multiple of 1/20.
    expect(Math.round(outcome.record!.final.accuracy * 20)).toBeCloseTo(
      outcome.record!.final.accuracy * 20,
      9,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each([
    ['notData', /did not return a data module/],
    ['badBatches', /batch\(0\) is not a batch \{ x, y \} of tensors/],
    ['missing', /missing/],
  ])('refuses %s with INVALID_RECIPE naming data.module', async (exportName, message) => {
    const error = await runRecipe({
      recipe: validateRecipe(moduleRecipe(exportName)),
      baseDirectory: recipeDirectory(),
      outputDirectory: path.join(temporaryDirectory(), 'out'),
    }).then(
      () => undefined,
      (reason: unknown) => reason as { code: string; message: string },
    );
    expect(error?.code).toBe('INVALID_RECIPE');
    expect(error?.message).toMatch(/data\.(module|export)/);
    expect(error?.message).toMatch(message);
  });
});
