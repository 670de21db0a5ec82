import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RecipeInput } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli';
import { ExitCodes } from '../src/exit-codes';
import { captureIo, recipeFile, temporaryDirectory, tinyRecipe } from './support';

/** The last JSON line a command printed (its `error` event with `--json`). */
function lastJson(output: string): Record<string, unknown> {
  return JSON.parse(output.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** Runs `fineprune <command> <recipe> --json …` and returns the exit code and the error event. */
async function command(name: 'validate' | 'run', recipe: unknown, ...flags: string[]) {
  const output = captureIo();
  const file = typeof recipe === 'string' ? recipe : recipeFile(recipe);
  const exitCode = await main([name, file, '--json', ...flags], output);
  return { exitCode, output, event: exitCode === 0 ? undefined : lastJson(output.out()), file };
}

/** The tiny recipe with the cubic schedule's options replaced. */
function withSchedule(options: Record<string, unknown>, overrides: Partial<RecipeInput> = {}): RecipeInput {
  const recipe = tinyRecipe(overrides);
  recipe.pruning[0]!.schedule = { id: 'cubic', options };
  return recipe;
}

const CUBIC = { finalSparsity: 0.8, totalSteps: 12, warmupSteps: 2, cooldownSteps: 2, interval: 2 };

describe('recipe mistakes: validate refuses what run refuses, with the path, the cause and the fix', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('refuses misspelled options of every built-in plugin, suggesting the nearest valid name (exit 3)', async () => {
    for (const name of ['validate', 'run'] as const) {
      const { exitCode, event } = await command(
        name,
        withSchedule({ finalSparsty: 0.8, totalSteps: 12, intervl: 2 }),
      );
      expect(exitCode).toBe(ExitCodes.INVALID_RECIPE);
      expect(event).toMatchObject({
        code: 'INVALID_RECIPE',
        fix: expect.stringMatching(/^Did you mean "finalSparsity"\?/),
      });
      const issues = (event!.details as { issues: Array<{ path: string; fix: string }> }).issues;
      expect(issues.map((issue) => issue.path)).toEqual([
        'pruning[0].schedule.options.finalSparsty',
        'pruning[0].schedule.options.intervl',
        'pruning[0].schedule.options.finalSparsity',
      ]);
      expect(issues[1]!.fix).toMatch(/^Did you mean "interval"\?/);
    }
    const mask = tinyRecipe();
    mask.pruning[0]!.mask = { id: 'topV', options: { scpoe: 'global' } };
    expect((await command('validate', mask)).event!.fix).toMatch(/Did you mean "scope"\?/);
    const term = tinyRecipe({
      training: { steps: 12, optimizer: { learningRate: 0.01 }, scoreOptimizer: { learningRate: 0.01 } },
      lossTerms: [{ id: 'sigmoidPenalty', options: { lamda: 1 } }],
    });
    term.pruning[0]!.scores = { id: 'movement' };
    expect((await command('validate', term)).event!.fix).toMatch(/Did you mean "lambda"\?/);
  });

  it('runs the plugins’ own checks in validate: finalSparsity 1.5 and interval 0 (exit 3)', async () => {
    const sparse = await command('validate', withSchedule({ ...CUBIC, finalSparsity: 1.5 }));
    expect(sparse.exitCode).toBe(ExitCodes.INVALID_RECIPE);
    expect(sparse.event).toMatchObject({ code: 'INVALID_SPARSITY' });
    expect(sparse.event!.message).toMatch(
      /pruning\[0\]\.schedule: cubic: finalSparsity must be a number in \[0, 1\), got 1\.5/,
    );
    const interval = await command('validate', withSchedule({ ...CUBIC, interval: 0 }));
    expect(interval.exitCode).toBe(ExitCodes.INVALID_RECIPE);
    expect(interval.event).toMatchObject({ code: 'INVALID_SCHEDULE' });
    expect(interval.event!.message).toMatch(/cubic: interval must be an integer ≥ 1, got 0/);
  });

  it('refuses a schedule longer than the training: totalSteps 600 with training.steps 6 (exit 3)', async () => {
    const recipe = withSchedule(
      { finalSparsity: 0.5, totalSteps: 600 },
      { training: { steps: 6, optimizer: { learningRate: 0.01 } } },
    );
    for (const name of ['validate', 'run'] as const) {
      const { exitCode, event } = await command(name, recipe);
      expect(exitCode).toBe(ExitCodes.INVALID_RECIPE);
      // v(5) = 0.5 − 0.5·(1 − 5/600)³ = 0.0124 (Eq. 5 of Movement Pruning)
      expect(event!.message).toMatch(
        /schedule "cubic" reaches sparsity 0\.01240 at the last step \(5 of training\.steps 6\) instead of its final 0\.5: totalSteps 600 runs past training\.steps/,
      );
    }
  });

  it('refuses a run name that leaves out/ (exit 3)', async () => {
    const { exitCode, event } = await command('validate', tinyRecipe({ name: '..' }));
    expect(exitCode).toBe(ExitCodes.INVALID_RECIPE);
    expect((event!.details as { issues: Array<{ path: string }> }).issues[0]!.path).toBe('name');
  });

  it('bounds built-in models before allocating: mlp-784-999999-999999-10 (exit 3)', async () => {
    const before = tf.memory().numBytes;
    for (const name of ['validate', 'run'] as const) {
      const { exitCode, event } = await command(
        name,
        tinyRecipe({ model: { builtin: 'mlp-784-999999-999999-10' } }),
      );
      expect(exitCode).toBe(ExitCodes.INVALID_RECIPE);
      // 784·999999 + 999999 + 999999² + 999999 + 999999·10 + 10 weights and biases
      expect(event).toMatchObject({
        code: 'INVALID_RECIPE',
        details: { path: 'model.builtin', parameters: 1000793999215 },
      });
      expect(event!.message).toMatch(/would hold 1\.00e\+12 weights and biases \(4\.00e\+3 GB of float32\)/);
    }
    expect(tf.memory().numBytes).toBe(before);
  });

  it('refuses a checkpoint directory inside the exported model folder or on the starting model (exit 3)', async () => {
    const base = temporaryDirectory();
    const inside = await command(
      'validate',
      recipeFile(
        tinyRecipe({ checkpoint: { every: 0, directory: 'out/tiny/model/checkpoint' } }),
        'r.yaml',
        base,
      ),
    );
    expect(inside.exitCode).toBe(ExitCodes.INVALID_RECIPE);
    expect(inside.event!.message).toMatch(
      /checkpoint\.directory: the checkpoint directory .*out\/tiny\/model\/checkpoint is or lies inside the stripped model folder/,
    );
    const same = await command(
      'run',
      recipeFile(tinyRecipe(), 'r.yaml', base),
      '--checkpoint',
      path.join(base, 'out/tiny/model'),
    );
    expect(same.exitCode).toBe(ExitCodes.INVALID_RECIPE);
    const report = await command(
      'validate',
      recipeFile(tinyRecipe(), 'r.yaml', base),
      '--checkpoint',
      path.join(base, 'out/tiny/run.json'),
    );
    expect(report.event!.message).toMatch(/lies inside run\.json/);
    // the default, <out>/checkpoint, and a checkpoint beside the export are fine; without export.strip, <out>/model is free
    expect((await command('validate', recipeFile(tinyRecipe(), 'r.yaml', base))).exitCode).toBe(ExitCodes.OK);
    const unstripped = tinyRecipe({
      export: { strip: false, report: true },
      checkpoint: { every: 0, directory: 'out/tiny/model' },
    });
    expect((await command('validate', recipeFile(unstripped, 'r.yaml', base))).exitCode).toBe(ExitCodes.OK);
    // the model a run starts from is never written over
    mkdirSync(path.join(base, 'start'));
    writeFileSync(path.join(base, 'start', 'model.json'), '{}');
    const over = await command(
      'validate',
      recipeFile(
        tinyRecipe({ model: { path: './start' }, checkpoint: { every: 0, directory: './start' } }),
        'r.yaml',
        base,
      ),
    );
    expect(over.exitCode).toBe(ExitCodes.INVALID_RECIPE);
    expect(over.event!.message).toMatch(
      /model\.path: the checkpoint directory is .*start, the folder of the model this run starts from/,
    );
    mkdirSync(path.join(base, 'model'));
    writeFileSync(path.join(base, 'model', 'model.json'), '{}');
    const onOutput = await command(
      'validate',
      recipeFile(tinyRecipe({ model: { path: './model' } }), 'r.yaml', base),
      '--out',
      base,
    );
    expect(onOutput.exitCode).toBe(ExitCodes.INVALID_RECIPE);
    expect(onOutput.event!.message).toMatch(
      /the stripped model folder <out>\/model is .*\/model, the folder of the model this run starts from/,
    );
  });

  it('finds an output directory that cannot be written before loading data or training (exit 4), and validate leaves nothing behind', async () => {
    const base = temporaryDirectory();
    const blocker = path.join(base, 'a-file');
    writeFileSync(blocker, 'not a directory');
    const run = await command(
      'run',
      recipeFile(tinyRecipe(), 'r.yaml', base),
      '--out',
      path.join(blocker, 'out'),
    );
    expect(run.exitCode).toBe(ExitCodes.IO);
    expect(run.event).toMatchObject({ code: 'IO_FAILED', details: { directory: path.join(blocker, 'out') } });
    expect(run.event!.message).toMatch(
      /The output directory \(export\.directory or --out\) .*a-file\/out is not writable: ENOTDIR/,
    );
    // nothing ran: no start event, no checkpoint anywhere
    expect(run.output.out().split('\n').filter(Boolean)).toHaveLength(1);
    expect(readdirSync(base).sort()).toEqual(['a-file', 'r.yaml']);
    const checkpoint = await command(
      'validate',
      recipeFile(tinyRecipe(), 'r.yaml', base),
      '--checkpoint',
      blocker,
    );
    expect(checkpoint.exitCode).toBe(ExitCodes.IO);
    expect(checkpoint.event!.message).toMatch(
      /The checkpoint directory \(checkpoint\.directory or --checkpoint\)/,
    );
    const fine = await command(
      'validate',
      recipeFile(tinyRecipe(), 'r.yaml', base),
      '--out',
      path.join(base, 'x', 'y'),
    );
    expect(fine.exitCode).toBe(ExitCodes.OK);
    expect(existsSync(path.join(base, 'x'))).toBe(false);
    expect(existsSync(path.join(base, 'out'))).toBe(false);
  });

  it('refuses a model whose output width is not the number of classes, before training (exit 5)', async () => {
    const { exitCode, event, output } = await command(
      'run',
      tinyRecipe({ model: { builtin: 'mlp-784-16-3' } }),
    );
    expect(exitCode).toBe(ExitCodes.RUN_FAILED);
    expect(event).toMatchObject({
      code: 'SHAPE_MISMATCH',
      details: { path: 'model', outputs: 3, classes: 10 },
    });
    expect(event!.message).toMatch(/the model has 3 outputs, the mnist task has 10 classes/);
    expect(event!.fix).toMatch(/mlp-784-300-100-10/);
    expect(output.out()).not.toMatch(/"type":"start"/);
  });

  it('stops a run whose mask would keep no weight: topV at finalSparsity 0.999999 (exit 3)', async () => {
    const recipe = tinyRecipe();
    recipe.pruning[0]!.schedule = { id: 'constant', options: { sparsity: 0.999999 } };
    const { exitCode, event } = await command('run', recipe);
    expect(exitCode).toBe(ExitCodes.INVALID_RECIPE);
    // mlp-784-16-10 has 784·16 + 16·10 = 12704 kernel weights: 12704 − round(12703.987) = 0
    expect(event).toMatchObject({ code: 'EMPTY_MASK', details: { mask: 'topV', total: 12704 } });
    expect(event!.message).toMatch(
      /topV: at sparsity 0\.999999 the mask of the group of 2 parameters \(12704 weights\) would keep none of them/,
    );
  });

  it('stops a diverging run (Adam at lr 1e6) at the step it diverged (exit 5); with the guard off it trains on', async () => {
    const diverging = tinyRecipe({
      training: { steps: 12, optimizer: { type: 'adam', learningRate: 1e6 }, evaluateEvery: 0 },
    });
    const { exitCode, event, output } = await command('run', diverging);
    expect(exitCode).toBe(ExitCodes.RUN_FAILED);
    expect(event).toMatchObject({ code: 'DIVERGED', details: { step: 1, factor: 1e6 } });
    expect(event!.message).toMatch(
      /^Training diverged at step 1: the loss \S+ is above 1000000 × its running minimum/,
    );
    // only the first step ran
    expect(output.out().match(/"type":"step"/g)).toHaveLength(1);
    // with the growth check off, the same run trains on to the end with losses ~1e14 and exits 0 (what the issue saw)
    const unguarded = await command('run', {
      ...diverging,
      training: { ...diverging.training, divergenceGuard: false },
    });
    expect(unguarded.exitCode).toBe(ExitCodes.OK);
    const losses = unguarded.output
      .out()
      .split('\n')
      .filter((line) => line.includes('"type":"step"'))
      .map((line) => (JSON.parse(line) as { loss: number }).loss);
    expect(losses).toHaveLength(12);
    expect(losses[1]!).toBeGreaterThan(1e6 * losses[0]!);
  });
});
