import { checkRecipe, loadPluginPackage, type PluginRegistry } from '@fineprune/recipes';
import { builtinRegistry } from './builtins';
import { probeWritableDirectory } from './files';
import { builtinModelSizes } from './models';
import { checkRecipeFiles } from './run-check-files';
import { checkRunDirectories, runDirectories } from './run-directories';
import type { RunRecipeOptions } from './run-types';

/**
 * What {@link prepareRun} settled: the registry with the recipe's plugin packages loaded, and the
 * run's directories, checked and writable.
 *
 * @example
 * ```ts
 * const { registry, outputDirectory } = await prepareRun({ recipe, baseDirectory: '.' });
 * ```
 */
export interface PreparedRun {
  registry: PluginRegistry;
  outputDirectory: string;
  checkpointDirectory: string;
}

/**
 * Every check of a run that needs neither its model nor its data, done before anything is loaded
 * or trained, and the same for `fineprune validate` and `fineprune run`: the recipe's plugin
 * packages are imported (each within `pluginTimeoutMs`); `checkRecipe` of `@fineprune/recipes`
 * (plugin ids and options, each plugin built to run its own checks, mask and schedule agreeing,
 * schedules ending within `training.steps`); a built-in model's size; the data and model files
 * the recipe names (present, of the right kind); the output and checkpoint
 * directories (no checkpoint inside what the run exports, nothing written over the model the run
 * starts from); and that both directories can be written.
 *
 * @throws FinepruneError `PLUGIN_PACKAGE_FAILED`, `UNKNOWN_PLUGIN`, `INVALID_RECIPE`, `INCOMPATIBLE_PLUGINS`, a plugin factory's error, or `IO_FAILED` for a directory that cannot be written
 *
 * @example
 * ```ts
 * const { registry, outputDirectory, checkpointDirectory } = await prepareRun({ recipe, baseDirectory, source: 'mnist.yaml' });
 * ```
 */
export async function prepareRun(
  options: Pick<
    RunRecipeOptions,
    | 'recipe'
    | 'baseDirectory'
    | 'source'
    | 'registry'
    | 'importer'
    | 'pluginTimeoutMs'
    | 'outputDirectory'
    | 'checkpointDirectory'
  >,
): Promise<PreparedRun> {
  const { recipe, baseDirectory } = options;
  const registry = options.registry ?? builtinRegistry();
  for (const name of recipe.plugins) {
    await loadPluginPackage(registry, name, {
      from: baseDirectory,
      ...(options.importer ? { importer: options.importer } : {}),
      ...(options.pluginTimeoutMs !== undefined ? { timeoutMs: options.pluginTimeoutMs } : {}),
    });
  }
  await checkRecipe(recipe, registry, {
    baseDirectory,
    ...(options.source !== undefined ? { source: options.source } : {}),
  });
  if ('builtin' in recipe.model) builtinModelSizes(recipe.model.builtin);
  checkRecipeFiles(recipe, baseDirectory);
  const directories = runDirectories(recipe, baseDirectory, options);
  checkRunDirectories(recipe, baseDirectory, directories);
  await probeWritableDirectory(
    directories.outputDirectory,
    'The output directory (export.directory or --out)',
  );
  await probeWritableDirectory(
    directories.checkpointDirectory,
    'The checkpoint directory (checkpoint.directory or --checkpoint)',
  );
  return { registry, ...directories };
}
