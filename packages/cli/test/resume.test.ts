import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileSystem, loadCheckpoint } from '@fineprune/layers';
import { setBackend } from '@fineprune/tensor';
import * as tf from '@tensorflow/tfjs-core';
import { stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { builtinRegistry } from '../src/builtins';
import { ExitCodes } from '../src/exit-codes';
import { BIN, temporaryDirectory, tinyRecipe } from './support';

const STEPS = 160;
const EVERY = 20;

/** Movement pruning when the scores package provides it (learned scores and their optimizer slots are then checkpointed too). */
const movement = builtinRegistry().has('scores', 'movement');

function writeRecipe(directory: string): string {
  const file = path.join(directory, 'resume.yaml');
  const recipe = tinyRecipe({
    name: 'resume',
    data: { dataset: 'mnist', batchSize: 10, trainLimit: 200, testLimit: 50 },
    training: {
      steps: STEPS,
      optimizer: { type: 'adam', learningRate: 0.01 },
      ...(movement ? { scoreOptimizer: { type: 'adam', learningRate: 0.05 } } : {}),
      evaluateEvery: 0,
    },
    pruning: [
      {
        name: 'mlp',
        scores: { id: movement ? 'movement' : 'magnitude' },
        mask: { id: 'topV', options: { scope: 'global' } },
        schedule: {
          id: 'cubic',
          options: {
            finalSparsity: 0.85,
            totalSteps: STEPS,
            warmupSteps: 10,
            cooldownSteps: 30,
            interval: 5,
          },
        },
      },
    ],
    checkpoint: { every: EVERY },
    export: { strip: false, report: false },
  });
  writeFileSync(file, stringify(recipe));
  return file;
}

interface Child {
  process: ChildProcess;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Resolves when a step event at or after `step` was printed. */
  reached(step: number): Promise<void>;
  stderr(): string;
}

function runCli(args: string[]): Child {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', BIN, ...args], {
    cwd: path.dirname(BIN),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let lastStep = 0;
  const waiters: Array<{ step: number; resolve: () => void }> = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    const lines = stdout.split('\n');
    stdout = lines.pop()!;
    for (const line of lines) {
      try {
        const event = JSON.parse(line) as { type: string; step?: number };
        if (event.type === 'step') lastStep = event.step!;
      } catch {
        // not an event line
      }
    }
    for (const waiter of waiters.filter((entry) => lastStep >= entry.step)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    process: child,
    exited,
    reached: (step) =>
      new Promise<void>((resolve, reject) => {
        if (lastStep >= step) return resolve();
        waiters.push({ step, resolve });
        void exited.then(() => reject(new Error(`the run exited before step ${step}:\n${stderr}`)));
      }),
    stderr: () => stderr,
  };
}

async function finalState(checkpoint: string) {
  const { model, state } = await loadCheckpoint(fileSystem(checkpoint), {
    loss: 'sparseCategoricalCrossentropy',
  });
  const read = async (prefix: string) =>
    Object.fromEntries(
      await Promise.all(
        Object.entries(state.tensors)
          .filter(([key]) => key.startsWith(prefix))
          .map(async ([key, tensor]) => [key, Array.from(await tensor.data())] as const),
      ),
    );
  const masks = await read('mask/');
  const scores = await read('scores/');
  const weights = Object.fromEntries(
    await Promise.all(
      model.variables().map(async ({ name, variable }) => [name, Array.from(await variable.data())] as const),
    ),
  );
  const step = state.step;
  tf.dispose(Object.values(state.tensors));
  model.dispose();
  return { step, masks, scores, weights };
}

/** A random step in [low, high): the test is meant to stop runs anywhere. */
const randomStep = (low: number, high: number) => low + Math.floor(Math.random() * (high - low));

describe('interrupt and resume (the real CLI as a child process)', () => {
  let reference: Awaited<ReturnType<typeof finalState>>;

  beforeAll(async () => {
    await setBackend('cpu');
    const directory = temporaryDirectory();
    const recipe = writeRecipe(directory);
    const child = runCli(['run', recipe, '--json', '--out', path.join(directory, 'out')]);
    expect(await child.exited, child.stderr()).toBe(ExitCodes.OK);
    reference = await finalState(path.join(directory, 'out', 'checkpoint'));
    expect(reference.step).toBe(STEPS);
    expect(Object.keys(reference.masks).length).toBeGreaterThan(0);
  });

  it('Ctrl-C (SIGINT) at a random step writes a checkpoint, exits 130, and --resume reaches the same masks', async () => {
    const directory = temporaryDirectory();
    const recipe = writeRecipe(directory);
    const out = path.join(directory, 'out');
    const stopAt = randomStep(5, STEPS - 40);
    const first = runCli(['run', recipe, '--json', '--out', out]);
    await first.reached(stopAt);
    first.process.kill('SIGINT');
    expect(await first.exited, first.stderr()).toBe(ExitCodes.INTERRUPTED);
    const interrupted = await finalState(path.join(out, 'checkpoint'));
    expect(interrupted.step).toBeGreaterThanOrEqual(stopAt);
    expect(interrupted.step).toBeLessThan(STEPS);
    const second = runCli(['run', recipe, '--json', '--out', out, '--resume']);
    expect(await second.exited, second.stderr()).toBe(ExitCodes.OK);
    const resumed = await finalState(path.join(out, 'checkpoint'));
    expect(resumed.step).toBe(STEPS);
    expect(resumed.masks).toEqual(reference.masks);
    expect(resumed.scores).toEqual(reference.scores);
    expect(resumed.weights).toEqual(reference.weights);
  });

  it('SIGKILL between checkpoints leaves the last checkpoint whole, and --resume reaches the same masks', async () => {
    const directory = temporaryDirectory();
    const recipe = writeRecipe(directory);
    const out = path.join(directory, 'out');
    const killAt = randomStep(EVERY + 3, STEPS - 25);
    const first = runCli(['run', recipe, '--json', '--out', out]);
    await first.reached(killAt);
    first.process.kill('SIGKILL');
    await first.exited;
    const checkpoint = path.join(out, 'checkpoint');
    const survived = await finalState(checkpoint); // loads: never half-written
    expect(survived.step % EVERY).toBe(0);
    expect(survived.step).toBeGreaterThan(0);
    expect(survived.step).toBeLessThanOrEqual(killAt + EVERY);
    const leftovers = readdirSync(checkpoint).filter((name) => name.endsWith('.tmp'));
    const second = runCli(['run', recipe, '--json', '--out', out, '--resume']);
    expect(await second.exited, second.stderr()).toBe(ExitCodes.OK);
    const resumed = await finalState(checkpoint);
    expect(resumed.masks).toEqual(reference.masks);
    expect(resumed.scores).toEqual(reference.scores);
    expect(resumed.weights).toEqual(reference.weights);
    expect(leftovers.length).toBeLessThanOrEqual(1);
  });

  it('refuses to resume a checkpoint written by a different recipe', async () => {
    const directory = temporaryDirectory();
    const recipe = writeRecipe(directory);
    const out = path.join(directory, 'out');
    const first = runCli(['run', recipe, '--json', '--out', out, '--max-steps', '30']);
    expect(await first.exited, first.stderr()).toBe(ExitCodes.OK);
    const second = runCli(['run', recipe, '--json', '--out', out, '--resume']);
    expect(await second.exited).toBe(ExitCodes.IO);
    expect(second.stderr()).toMatch(/CHECKPOINT_MISMATCH/);
  });
});
