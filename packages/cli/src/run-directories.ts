import path from 'node:path';
import type { Recipe } from '@fineprune/recipes';

/**
 * Resolved output and checkpoint directories of a recipe.
 *
 * @example
 * ```ts
 * const { outputDirectory, checkpointDirectory } = runDirectories(recipe, '.');
 * ```
 */
export function runDirectories(
  recipe: Recipe,
  baseDirectory: string,
  overrides: { outputDirectory?: string; checkpointDirectory?: string } = {},
): { outputDirectory: string; checkpointDirectory: string } {
  const outputDirectory = path.resolve(
    baseDirectory,
    overrides.outputDirectory ?? recipe.export.directory ?? path.join('out', recipe.name),
  );
  const checkpointDirectory = overrides.checkpointDirectory
    ? path.resolve(overrides.checkpointDirectory)
    : recipe.checkpoint.directory
      ? path.resolve(baseDirectory, recipe.checkpoint.directory)
      : path.join(outputDirectory, 'checkpoint');
  return { outputDirectory, checkpointDirectory };
}
