import type { Recipe } from '@fineprune/recipes';
import { loadImageFolder } from './data/image-folder';
import { recipeTokenizer } from './data/recipe-tokenizer';
import { loadTextData } from './data/text-data';
import { checkBatchSize } from './run-data';

/**
 * What `fineprune validate` found in a recipe's own data files: the examples on each side of the
 * split and the label names.
 *
 * @example
 * ```ts
 * const summary: DataSummary = { source: 'data.text', train: 18, validation: 2, labels: ['ham', 'spam'] };
 * ```
 */
export interface DataSummary {
  source: 'data.text' | 'data.images';
  train: number;
  validation: number;
  labels: string[];
}

/**
 * Reads a recipe's own data files through as `run` reads them before training, so that
 * `fineprune validate` fails on their contents before a long run does: every row of a text file
 * (streamed, one row in memory at a time: malformed rows, missing or unknown labels, empty files,
 * rows over `maxRowBytes`) and the vocabulary it is tokenized with; every image of a folder (read and
 * decoded one at a time: non-image files, wrong sizes, damaged images, stray files, unknown class
 * folders). The split is made as the run makes it. Built-in datasets (packaged) and data modules
 * (user code, run by `run`) are not read.
 *
 * Then `data.batchSize` is checked against the training examples found (after `data.trainLimit`),
 * as `run` checks it when it loads them.
 *
 * @returns the summary, or undefined when the recipe names no data files
 * @throws FinepruneError `INVALID_DATA` naming the file (and line) of the first bad row or image;
 *   `IO_FAILED` for a file that cannot be read; `INVALID_RECIPE` for a batch larger than the
 *   training examples
 *
 * @example
 * ```ts
 * const summary = await checkRecipeData(recipe, path.dirname(recipeFile)); // { train: 18, validation: 2, … }
 * ```
 */
export async function checkRecipeData(
  recipe: Recipe,
  baseDirectory: string,
): Promise<DataSummary | undefined> {
  const summary = await readRecipeData(recipe, baseDirectory);
  if (summary) checkBatchSize(recipe, Math.min(summary.train, recipe.data.trainLimit ?? summary.train));
  return summary;
}

async function readRecipeData(recipe: Recipe, baseDirectory: string): Promise<DataSummary | undefined> {
  const { text, images } = recipe.data;
  if (text) {
    await recipeTokenizer(recipe, baseDirectory);
    const data = await loadTextData(text, { baseDirectory, seed: recipe.seed });
    return { source: 'data.text', train: data.train.count, validation: data.test.count, labels: data.labels };
  }
  if (images) {
    const folder = await loadImageFolder(images, { baseDirectory, seed: recipe.seed });
    return {
      source: 'data.images',
      train: folder.train.files.length,
      validation: folder.test.files.length,
      labels: folder.labels,
    };
  }
  return undefined;
}
