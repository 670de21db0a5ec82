import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
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

/** True when `child` is `parent` or lies inside it. */
function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return (
    relative === '' ||
    (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative))
  );
}

function refuse(message: string, fix: string, where: string): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.INVALID_RECIPE, message, fix, details: { path: where } });
}

/**
 * Refuses directories that would make a run overwrite what it writes or reads: a checkpoint
 * directory that is, or lies inside, the stripped model folder `<out>/model`, or that is the path of
 * `run.json` or `report.html`; and a checkpoint or `<out>/model` that is the folder of the model the
 * run starts from (`model.path`).
 *
 * @throws FinepruneError `INVALID_RECIPE` naming both directories and the setting to change
 *
 * @example
 * ```ts
 * checkRunDirectories(recipe, '.', runDirectories(recipe, '.'));
 * ```
 */
export function checkRunDirectories(
  recipe: Recipe,
  baseDirectory: string,
  directories: { outputDirectory: string; checkpointDirectory: string },
): void {
  const { outputDirectory, checkpointDirectory } = directories;
  const modelDirectory = path.join(outputDirectory, 'model');
  const written = [
    ...(recipe.export.strip ? [{ file: modelDirectory, what: 'the stripped model folder' }] : []),
    ...(recipe.export.report
      ? [
          { file: path.join(outputDirectory, 'run.json'), what: 'run.json' },
          { file: path.join(outputDirectory, 'report.html'), what: 'report.html' },
        ]
      : []),
  ];
  for (const { file, what } of written) {
    if (isInside(checkpointDirectory, file)) {
      throw refuse(
        `checkpoint.directory: the checkpoint directory ${checkpointDirectory} is or lies inside ${what} ${file}, which the run writes at the end: the export would overwrite the checkpoint (and --resume would fail).`,
        `Keep checkpoints apart from the export, for example in ${path.join(outputDirectory, 'checkpoint')} (the default), via checkpoint.directory or --checkpoint.`,
        'checkpoint.directory',
      );
    }
  }
  if ('path' in recipe.model) {
    const input = path.resolve(baseDirectory, recipe.model.path.replace(/model\.json$/, ''));
    const clash =
      path.resolve(checkpointDirectory) === input
        ? 'the checkpoint directory'
        : recipe.export.strip && path.resolve(modelDirectory) === input
          ? 'the stripped model folder <out>/model'
          : undefined;
    if (clash) {
      throw refuse(
        `model.path: ${clash} is ${input}, the folder of the model this run starts from; the run would overwrite it.`,
        'Write the run elsewhere: change export.directory (--out) or checkpoint.directory (--checkpoint), or copy the starting model to another folder.',
        'model.path',
      );
    }
  }
}
