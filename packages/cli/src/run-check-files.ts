import { statSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import type { Recipe } from '@fineprune/recipes';

/** What a recipe path must name. */
type Expected = 'file' | 'directory';

function missing(where: string, target: string, expected: Expected, found: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.IO_FAILED,
    message: `${where}: ${target} ${found}; a ${expected === 'file' ? 'file' : 'folder'} is expected.`,
    fix: `Point ${where} at the ${expected === 'file' ? 'file' : 'folder'}, relative to the recipe (${path.basename(target)} is looked for from the recipe's directory).`,
    details: { path: where, file: target },
  });
}

/** Throws IO_FAILED unless `relative` (from the recipe's directory) is a file or folder as expected. */
function expectPath(baseDirectory: string, where: string, relative: string, expected: Expected): void {
  const target = path.resolve(baseDirectory, relative);
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(target);
  } catch {
    throw missing(where, target, expected, 'does not exist');
  }
  if (expected === 'file' ? !stats.isFile() : !stats.isDirectory())
    throw missing(where, target, expected, `is not a ${expected === 'file' ? 'regular file' : 'folder'}`);
}

/**
 * Checks that the files a recipe names for its data and model are there, before anything is loaded
 * (`fineprune validate` and the start of `run`): the text files, the image folders, the vocabulary,
 * and the Hugging Face folder's config.json and model.safetensors. Their contents are checked when
 * the run reads them.
 *
 * @throws FinepruneError `IO_FAILED` naming the recipe path and the file
 *
 * @example
 * ```ts
 * checkRecipeFiles(recipe, path.dirname(recipeFile));
 * ```
 */
export function checkRecipeFiles(recipe: Recipe, baseDirectory: string): void {
  const { text, images, tokenizer } = recipe.data;
  if (text) {
    expectPath(baseDirectory, 'data.text.train', text.train, 'file');
    if (text.validation !== undefined)
      expectPath(baseDirectory, 'data.text.validation', text.validation, 'file');
  }
  if (images) {
    expectPath(baseDirectory, 'data.images.train', images.train, 'directory');
    if (images.validation !== undefined)
      expectPath(baseDirectory, 'data.images.validation', images.validation, 'directory');
  }
  if (tokenizer?.vocabulary !== undefined)
    expectPath(baseDirectory, 'data.tokenizer.vocabulary', tokenizer.vocabulary, 'file');
  if ('huggingFace' in recipe.model) {
    const folder = recipe.model.huggingFace;
    expectPath(baseDirectory, 'model.huggingFace', folder, 'directory');
    expectPath(baseDirectory, 'model.huggingFace', path.join(folder, 'config.json'), 'file');
    expectPath(baseDirectory, 'model.huggingFace', path.join(folder, 'model.safetensors'), 'file');
  }
}
