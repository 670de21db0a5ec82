import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinRegistry } from '../src/builtins';
import { runRecipe } from '../src/run-recipe';
import { dataset, temporaryDirectory, tinyRecipe } from './support';

describe('a recipe pruning by blocks', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('runs block movement pruning and puts the block pattern of each matrix into run.json and the report', async () => {
    const recipe = tinyRecipe({
      name: 'blocks',
      training: {
        steps: 12,
        optimizer: { type: 'adam', learningRate: 0.01 },
        scoreOptimizer: { type: 'adam', learningRate: 0.01 },
        evaluateEvery: 6,
      },
      pruning: [
        {
          name: 'mlp',
          scores: { id: 'blockMovement', options: { rows: 8, cols: 8, init: { type: 'magnitude' } } },
          mask: { id: 'block', options: { rows: 8, cols: 8, pool: 'mean', scope: 'local' } },
          schedule: {
            id: 'cubic',
            options: { finalSparsity: 0.5, totalSteps: 12, warmupSteps: 2, cooldownSteps: 2, interval: 2 },
          },
        },
      ],
    });
    const outputDirectory = temporaryDirectory();
    const outcome = await runRecipe({
      recipe: validateRecipe(recipe),
      baseDirectory: outputDirectory,
      registry: builtinRegistry(),
      outputDirectory,
      dataset: await dataset('mnist'),
    });
    expect(outcome.status).toBe('completed');
    const record = outcome.record!;
    // 784 × 16 in 8 × 8 blocks: a grid of 98 × 2 blocks, drawn in cells of ⌈784/48⌉ = 17 rows × 1 column.
    expect(
      record.blockPatterns!.map(({ name, cellRows, cellCols, gridRows, gridCols }) => [
        name,
        cellRows,
        cellCols,
        gridRows,
        gridCols,
      ]),
    ).toEqual([
      [record.layers[0]!.name, 17, 1, 47, 16],
      [record.layers[1]!.name, 1, 1, 16, 10],
    ]);
    // The kept fractions average to the share of the matrix kept (cells of unequal size aside, the 16 × 10 one is exact).
    const second = record.blockPatterns![1]!;
    const keptSecond = second.kept.reduce((sum, value) => sum + value, 0);
    expect(keptSecond).toBe(record.layers[1]!.kept);
    const saved = JSON.parse(readFileSync(path.join(outputDirectory, 'run.json'), 'utf8'));
    expect(saved.blockPatterns).toHaveLength(2);
    expect(existsSync(path.join(outputDirectory, 'report.html'))).toBe(true);
    const page = readFileSync(path.join(outputDirectory, 'report.html'), 'utf8');
    expect(page.match(/data-plot="block-pattern"/g)).toHaveLength(2);
  }, 120_000);
});
