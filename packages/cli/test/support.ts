import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Dataset, loadFashionMnist, loadMnist } from '@fineprune/datasets';
import type { RecipeInput } from '@fineprune/recipes';

const datasets = new Map<string, Promise<Dataset>>();

/** Each dataset loaded once per test file. */
export function dataset(id: 'mnist' | 'fashion-mnist'): Promise<Dataset> {
  if (!datasets.has(id)) datasets.set(id, id === 'mnist' ? loadMnist() : loadFashionMnist());
  return datasets.get(id)!;
}

/** A fresh temporary directory. */
export function temporaryDirectory(prefix = 'fineprune-cli-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** A tiny recipe: a 784-16-10 MLP on 200 MNIST digits, a few steps on the cpu backend. */
export function tinyRecipe(overrides: Partial<RecipeInput> = {}): RecipeInput {
  return {
    version: 1,
    name: 'tiny',
    seed: 3,
    backend: 'cpu',
    model: { builtin: 'mlp-784-16-10' },
    data: { dataset: 'mnist', batchSize: 20, trainLimit: 200, testLimit: 100 },
    training: { steps: 12, optimizer: { type: 'adam', learningRate: 0.01 }, evaluateEvery: 4 },
    pruning: [
      {
        name: 'mlp',
        scores: { id: 'magnitude' },
        mask: { id: 'topV', options: { scope: 'global' } },
        schedule: {
          id: 'cubic',
          options: { finalSparsity: 0.8, totalSteps: 12, warmupSteps: 2, cooldownSteps: 2, interval: 2 },
        },
      },
    ],
    ...overrides,
  };
}

/** Where the examples' recipes live. */
export const RECIPES_DIRECTORY = fileURLToPath(new URL('../../../examples/recipes', import.meta.url));
/** The CLI entry, run from its TypeScript source. */
export const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));

/** A `CliIo` that keeps what the command writes, for assertions. */
export function capturingIo() {
  let stdout = '';
  let stderr = '';
  return {
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
    out: () => stdout,
    err: () => stderr,
  };
}
