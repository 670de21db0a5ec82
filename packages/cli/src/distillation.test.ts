import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Batch, FinepruneError } from '@fineprune/core';
import { type Split, batches } from '@fineprune/datasets';
import { distillationLoss } from '@fineprune/distillation';
import { fileSystem } from '@fineprune/layers';
import { type RecipeInput, validateRecipe } from '@fineprune/recipes';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { dataset, temporaryDirectory, tinyRecipe } from '../test/support';
import { builtinRegistry } from './builtins';
import { main } from './cli';
import { ExitCodes } from './exit-codes';
import { builtinModel, loadSavedModel } from './models';
import { runRecipe } from './run-recipe';
import type { RunEvent } from './run-types';

/** A recipe like `tinyRecipe` that distils from the teacher at `teacher` (relative to the base directory). */
function distillationRecipe(teacher: unknown, options: Record<string, unknown> = {}): RecipeInput {
  return tinyRecipe({
    name: 'tiny-distillation',
    lossTerms: [
      {
        id: 'distillation',
        options: { teacher, temperature: 2, alphaDistil: 0.5, alphaCe: 0.5, ...options },
      },
    ],
  });
}

async function failure(promise: Promise<unknown>): Promise<FinepruneError> {
  const error = await promise.then(
    () => undefined,
    (caught) => caught,
  );
  expect(FinepruneError.is(error), String(error)).toBe(true);
  return error as FinepruneError;
}

async function saveModel(model: tfl.LayersModel, directory: string): Promise<void> {
  await model.save(fileSystem(directory));
  model.dispose();
}

describe('distillation in recipes', () => {
  let base: string;

  beforeAll(async () => {
    await setBackend('cpu');
    base = temporaryDirectory();
    // The teacher: the same MLP trained dense (sparsity 0), stripped to out/model as any run writes it.
    const outcome = await runRecipe({
      recipe: validateRecipe(
        tinyRecipe({
          name: 'dense-teacher',
          pruning: [
            {
              scores: { id: 'magnitude' },
              mask: { id: 'topV' },
              schedule: { id: 'constant', options: { sparsity: 0 } },
            },
          ],
        }),
      ),
      baseDirectory: base,
      outputDirectory: path.join(base, 'dense-teacher'),
      dataset: await dataset('mnist'),
    });
    expect(outcome.record!.final.remaining).toBe(1);
  });

  it('registers the built-in loss term `distillation`', () => {
    const registry = builtinRegistry();
    expect(registry.has('lossTerm', 'distillation')).toBe(true);
    expect(registry.get('lossTerm', 'distillation')!.description).toMatch(/KL/);
  });

  it('applies α_ce·task loss + α_distil·T²·KL at the first step (checked against an independent computation)', async () => {
    const mnist = await dataset('mnist');
    const recipe = validateRecipe(distillationRecipe('./dense-teacher/model'));
    const steps: Array<Extract<RunEvent, { type: 'step' }>> = [];
    const outcome = await runRecipe({
      recipe,
      baseDirectory: base,
      outputDirectory: temporaryDirectory(),
      dataset: mnist,
      onEvent: (event) => {
        if (event.type === 'step') steps.push(event);
      },
    });
    expect(outcome.status).toBe('completed');
    expect(steps).toHaveLength(12);

    // Step 1 by hand: the seeded student (masks all ones: the cubic schedule is at 0 in warm-up),
    // the saved teacher, and batch 0 of the first 200 training digits.
    const train: Split = {
      ...mnist.train,
      count: 200,
      images: mnist.train.images.subarray(0, 200 * mnist.train.featureSize),
      labels: mnist.train.labels.subarray(0, 200),
    };
    const batch: Batch = batches(train, { batchSize: 20, seed: recipe.seed }).batch(0);
    const student = builtinModel('mlp-784-16-10', recipe.seed);
    const teacher = await loadSavedModel('./dense-teacher/model', { baseDirectory: base });
    const [task, term] = tf.tidy(() => {
      const logits = student.predict(batch.x as tf.Tensor) as tf.Tensor;
      const teacherLogits = teacher.predict(batch.x as tf.Tensor) as tf.Tensor;
      const labels = tf.oneHot(tf.cast(batch.y as tf.Tensor, 'int32') as tf.Tensor1D, 10);
      return [tf.losses.softmaxCrossEntropy(labels, logits), distillationLoss(logits, teacherLogits, 2)];
    });
    const [taskValue, termValue] = [(await task!.data())[0]!, (await term!.data())[0]!];
    tf.dispose([task!, term!, batch.x as tf.Tensor, batch.y as tf.Tensor]);
    student.dispose();
    teacher.dispose();
    // float32 forward passes computed two ways (fast dense vs layers predict): 1e-4 relative
    expect(Math.abs(steps[0]!.taskLoss - taskValue)).toBeLessThan(1e-4 * taskValue);
    expect(termValue).toBeGreaterThan(0.01);
    expect(Math.abs(steps[0]!.loss - (0.5 * taskValue + 0.5 * termValue))).toBeLessThan(
      1e-4 * steps[0]!.loss,
    );
    // and at every step the total is α_ce·task + a non-negative KL term, not the task loss
    for (const step of steps) expect(step.loss).toBeGreaterThanOrEqual(0.5 * step.taskLoss - 1e-6);
  });

  it('runs a distillation recipe end to end with `fineprune run` (shortened), the teacher relative to the recipe', async () => {
    const directory = path.join(base, 'cli');
    mkdirSync(directory, { recursive: true });
    const file = path.join(directory, 'distil.yaml');
    writeFileSync(
      file,
      stringify({
        ...distillationRecipe('../dense-teacher/model'),
        training: { steps: 40, optimizer: { learningRate: 0.01 }, evaluateEvery: 0 },
      }),
    );
    let stdout = '';
    let stderr = '';
    const io = {
      stdout: {
        write: (text: string) => {
          stdout += text;
        },
      },
      stderr: {
        write: (text: string) => {
          stderr += text;
        },
      },
    };
    const code = await main(
      ['run', file, '--max-steps', '6', '--json', '--out', path.join(directory, 'out')],
      io,
    );
    expect(code, stderr).toBe(ExitCodes.OK);
    const events = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; loss?: number; taskLoss?: number; step?: number });
    const steps = events.filter((event) => event.type === 'step');
    expect(steps.at(-1)!.step).toBe(6);
    // with α_ce = 0.5 and a teacher that disagrees, the total is not the task loss
    for (const step of steps) expect(Math.abs(step.loss! - step.taskLoss!)).toBeGreaterThan(1e-3);
    expect(events.at(-1)!.type).toBe('done');
  });

  it('reports a missing, unloadable or mismatched teacher with the recipe path, before training', async () => {
    const mnist = await dataset('mnist');
    const run = (teacher: unknown, options: Record<string, unknown> = {}) =>
      failure(
        runRecipe({
          recipe: validateRecipe(distillationRecipe(teacher, options)),
          baseDirectory: base,
          outputDirectory: temporaryDirectory(),
          dataset: mnist,
        }),
      );

    const missing = await run('./no-such-teacher');
    expect(missing.code).toBe('IO_FAILED');
    expect(missing.message).toMatch(
      /lossTerms\[0\]: options\.teacher: .*no-such-teacher holds neither a TF\.js model \(model\.json\) nor a Hugging Face BERT folder/,
    );
    expect(missing.details?.path).toBe('lossTerms[0]');

    const broken = path.join(base, 'broken-teacher');
    mkdirSync(broken, { recursive: true });
    writeFileSync(path.join(broken, 'model.json'), '{"modelTopology": ');
    const unloadable = await run('./broken-teacher');
    expect(unloadable.message).toMatch(
      /lossTerms\[0\]: options\.teacher: the model in .*broken-teacher cannot be loaded/,
    );

    const absent = await run(undefined);
    expect(absent.code).toBe('INVALID_RECIPE');
    expect(absent.message).toMatch(
      /lossTerms\[0\]\.options\.teacher: loss term "distillation" needs option "teacher"/,
    );
    const blank = await run(' ');
    expect(blank.code).toBe('INVALID_RECIPE');
    expect(blank.message).toMatch(
      /lossTerms\[0\]: options\.teacher: a path to the teacher model is required/,
    );

    await saveModel(builtinModel('mlp-784-8-5', 1), path.join(base, 'five-classes'));
    const mismatch = await run('./five-classes');
    expect(mismatch.code).toBe('SHAPE_MISMATCH');
    expect(mismatch.message).toMatch(
      /maps \[null, 784\] to \[null, 5\] but the model maps \[null, 784\] to \[null, 10\]/,
    );

    const temperature = await run('./dense-teacher/model', { temperature: 0 });
    expect(temperature.code).toBe('INVALID_ARGUMENT');
    expect(temperature.message).toMatch(
      /lossTerms\[0\]: distillation: temperature must be a finite number > 0/,
    );

    const typo = await run('./dense-teacher/model', { temprature: 2 });
    expect(typo.code).toBe('INVALID_RECIPE');
    expect(typo.message).toMatch(
      /lossTerms\[0\]\.options\.temprature: loss term "distillation" has no option "temprature"/,
    );
    expect(typo.fix).toMatch(/Did you mean "temperature"\?/);
  });

  it('distils from a teacher that ends in a softmax through its log-probabilities', async () => {
    const teacher = tfl.sequential({
      layers: [
        tfl.layers.dense({
          units: 10,
          activation: 'softmax',
          inputShape: [784],
          kernelInitializer: tfl.initializers.glorotUniform({ seed: 5 }),
        }),
      ],
    });
    await saveModel(teacher, path.join(base, 'softmax-teacher'));
    const steps: number[] = [];
    const outcome = await runRecipe({
      recipe: validateRecipe({
        ...distillationRecipe('./softmax-teacher'),
        training: { steps: 3, optimizer: { learningRate: 0.01 }, evaluateEvery: 0 },
        pruning: [
          {
            scores: { id: 'magnitude' },
            mask: { id: 'topV' },
            schedule: { id: 'constant', options: { sparsity: 0.5 } },
          },
        ],
      }),
      baseDirectory: base,
      outputDirectory: temporaryDirectory(),
      dataset: await dataset('mnist'),
      onEvent: (event) => {
        if (event.type === 'step') steps.push(event.loss - 0.5 * event.taskLoss);
      },
    });
    expect(outcome.status).toBe('completed');
    // the KL term of a random softmax teacher against a random student: positive and finite
    for (const term of steps) expect(term > 0 && Number.isFinite(term)).toBe(true);
  });
});
