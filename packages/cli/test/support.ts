import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Dataset, loadFashionMnist, loadMnist } from '@fineprune/datasets';
import type { RecipeInput } from '@fineprune/recipes';
import { stringify } from 'yaml';

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

/** A CliIo that keeps what the command writes, for `main()` in tests. */
export function captureIo() {
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

/** Writes a recipe (an object as YAML, or text) to a fresh temporary directory and returns the file. */
export function recipeFile(content: unknown, name = 'recipe.yaml', directory = temporaryDirectory()): string {
  const file = path.join(directory, name);
  writeFileSync(file, typeof content === 'string' ? content : stringify(content));
  return file;
}

/** Samples resident memory every 5 ms while `run` goes on; returns the growth over the start. */
export async function residentGrowth(
  run: () => Promise<unknown>,
): Promise<{ growth: number; error: unknown }> {
  globalThis.gc?.();
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  let error: unknown;
  try {
    await run();
  } catch (caught) {
    error = caught;
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return { growth: peak - start, error };
}

/** Writes `lines` lines of `line(i)` through a stream (the test never holds the file). */
export async function writeLines(
  file: string,
  count: number,
  line: (index: number) => string,
): Promise<void> {
  const stream = createWriteStream(file);
  for (let index = 0; index < count; index++) {
    if (!stream.write(line(index)))
      await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) =>
    stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
}
