import { FinepruneError } from '@fineprune/core';
import { describe, expect, it } from 'vitest';
import { trainingIssues, warmupStepsOf } from './check';
import { createPluginRegistry } from './registry';
import { shortenRecipe } from './resolve';
import { sampleRecipe } from './test-support';
import { validateRecipe } from './validate';

function issuesOf(
  change: (input: Record<string, any>) => void,
): Array<{ path: string; message: string; fix: string }> {
  const input = sampleRecipe() as Record<string, any>;
  change(input);
  try {
    validateRecipe(input);
  } catch (error) {
    if (!FinepruneError.is(error)) throw error;
    return (error.details as { issues: Array<{ path: string; message: string; fix: string }> }).issues;
  }
  return [];
}

function dataIssues(data: unknown) {
  return issuesOf((input) => {
    input.data = data;
  });
}

describe('data sources in the schema', () => {
  it('accepts each kind of source with its defaults', () => {
    const text = validateRecipe({
      ...sampleRecipe(),
      data: {
        text: { train: 'train.jsonl', labels: ['ham', 'spam'] },
        tokenizer: { maxLength: 64 },
        batchSize: 16,
      },
    });
    expect(text.data.text).toMatchObject({
      train: 'train.jsonl',
      textColumn: 'text',
      labelColumn: 'label',
      delimiter: ',',
      maxRowBytes: 1024 * 1024,
    });
    expect(text.data.tokenizer).toEqual({ lowercase: true, maxLength: 64 });
    const images = validateRecipe({
      ...sampleRecipe(),
      data: { images: { train: 'pngs/train', width: 28, height: 28 } },
    });
    expect(images.data.images).toMatchObject({
      channels: 1,
      resize: 'none',
      maxImageBytes: 16 * 1024 * 1024,
    });
    const module = validateRecipe({
      ...sampleRecipe(),
      data: { module: './data.mjs', export: 'createData' },
    });
    expect(module.data.module).toBe('./data.mjs');
    expect(validateRecipe({ ...sampleRecipe(), data: { dataset: 'spam-assassin' } }).data.dataset).toBe(
      'spam-assassin',
    );
  });

  it('needs exactly one source, and refuses a tokenizer for images or an export without a module', () => {
    expect(dataIssues({ batchSize: 10 })).toEqual([
      {
        path: 'data',
        message: 'names no data source',
        fix: 'Give exactly one of `dataset`, `text`, `images` or `module`.',
      },
    ]);
    expect(dataIssues({ dataset: 'mnist', module: './x.mjs' })[0]!.message).toBe(
      'names 2 data sources (dataset, module)',
    );
    expect(dataIssues({ images: { train: 'x', width: 2, height: 2 }, tokenizer: {} })[0]).toMatchObject({
      path: 'data.tokenizer',
      message: 'applies to text data only',
    });
    expect(dataIssues({ dataset: 'mnist', export: 'build' })[0]!.path).toBe('data.export');
    expect(dataIssues({ text: { train: 'a.csv', colum: 'x' } })[0]).toMatchObject({
      path: 'data.text',
      message: 'has unknown key "colum"',
    });
    expect(dataIssues({ images: { train: 'x', width: 0, height: 2 } })[0]!.path).toBe('data.images.width');
  });
});

describe('training settings', () => {
  const recipe = (training: Record<string, unknown>) =>
    validateRecipe({
      ...sampleRecipe(),
      training: { steps: 100, optimizer: { learningRate: 1e-3 }, ...training },
    });

  it('resolves warm-ups given in steps or as a fraction', () => {
    expect(warmupStepsOf(recipe({}).training.optimizer, 100)).toBe(0);
    const fraction = recipe({
      optimizer: { learningRate: 1e-3, schedule: { type: 'linear', warmupFraction: 0.1 } },
    });
    expect(warmupStepsOf(fraction.training.optimizer, 150)).toBe(15);
  });

  it('refuses a warm-up as long as the run, both warm-up forms, and a minimum above the peak', () => {
    expect(
      trainingIssues(
        recipe({ optimizer: { learningRate: 1e-3, schedule: { type: 'linear', warmupSteps: 100 } } }),
      ),
    ).toEqual([
      {
        path: 'training.optimizer.schedule',
        message: 'warms up for 100 steps, which does not end before training.steps 100',
        fix: 'Use a warm-up shorter than the run (for example warmupFraction: 0.1, 10 steps).',
      },
    ]);
    expect(
      trainingIssues(
        recipe({
          optimizer: {
            learningRate: 1e-3,
            schedule: { type: 'cosine', warmupSteps: 1, warmupFraction: 0.1 },
          },
        }),
      )[0]!.message,
    ).toBe('gives both warmupSteps and warmupFraction');
    expect(
      trainingIssues(
        recipe({ scoreOptimizer: { learningRate: 1e-3, schedule: { type: 'cosine', minimum: 0.1 } } }),
      )[0]!.path,
    ).toBe('training.scoreOptimizer.schedule.minimum');
    expect(
      trainingIssues(
        recipe({ optimizer: { learningRate: 1e-3, schedule: { type: 'linear', warmupSteps: 10 } } }),
      ),
    ).toEqual([]);
  });

  it('shortenRecipe scales a warm-up given in steps with the run', () => {
    const long = recipe({ optimizer: { learningRate: 1e-3, schedule: { type: 'linear', warmupSteps: 10 } } });
    const short = shortenRecipe(long, createPluginRegistry([]), { maxSteps: 20 });
    expect(short.training.optimizer.schedule!.warmupSteps).toBe(2);
    expect(long.training.optimizer.schedule!.warmupSteps).toBe(10);
  });
});
