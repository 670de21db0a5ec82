import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import { fileSystem } from '@fineprune/layers';
import type { RecipeModel } from '@fineprune/recipes';
import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { rememberModelSource, sourceOfArtifacts } from './model-source';

/**
 * The most weights and biases a built-in model may hold: 50,000,000 (200 MB of float32, about
 * 800 MB once Adam's two slots and a gradient are added).
 *
 * @example
 * ```ts
 * builtinModelSizes('mlp-784-999999-999999-10'); // throws INVALID_RECIPE: more than MAX_BUILTIN_PARAMETERS
 * ```
 */
export const MAX_BUILTIN_PARAMETERS = 50_000_000;

/**
 * The layer widths of a built-in model id (`mlp-784-300-100-10` → `[784, 300, 100, 10]`), checked
 * before anything is allocated: 2 to 8 widths, each a whole number ≥ 1, and at most
 * {@link MAX_BUILTIN_PARAMETERS} weights and biases in all.
 *
 * @throws FinepruneError `INVALID_RECIPE` (path `model.builtin`) for an unknown id or a model too large
 *
 * @example
 * ```ts
 * builtinModelSizes('mlp-784-300-100-10'); // [784, 300, 100, 10]
 * ```
 */
export function builtinModelSizes(id: string): number[] {
  const match = typeof id === 'string' ? /^mlp((?:-[1-9]\d{0,8}){2,8})$/.exec(id) : null;
  if (!match) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `model.builtin: no built-in model ${JSON.stringify(String(id).slice(0, 80))}.`,
      fix: 'Use an MLP id such as `mlp-784-300-100-10` (input, hidden widths…, classes).',
      details: { path: 'model.builtin' },
    });
  }
  const sizes = match[1]!.slice(1).split('-').map(Number);
  let parameters = 0;
  for (let layer = 1; layer < sizes.length; layer++) {
    parameters += sizes[layer - 1]! * sizes[layer]! + sizes[layer]!;
  }
  if (parameters > MAX_BUILTIN_PARAMETERS) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `model.builtin: ${id} would hold ${parameters.toExponential(2)} weights and biases (${(
        (parameters * 4) / 1e9
      ).toPrecision(
        3,
      )} GB of float32); built-in models hold at most ${MAX_BUILTIN_PARAMETERS.toLocaleString('en-US')}.`,
      fix: 'Use smaller layer widths, or give a model of your own with model.path or model.module.',
      details: { path: 'model.builtin', parameters },
    });
  }
  return sizes;
}

/**
 * A built-in ReLU MLP from an id such as `mlp-784-300-100-10` (input width, hidden widths, classes)
 * with seeded Glorot initialisation; it outputs logits. Layers are named `dense_1`, `dense_2`, ….
 * The id is checked by {@link builtinModelSizes} before anything is allocated.
 *
 * @throws FinepruneError `INVALID_RECIPE` for an unknown id or a model over {@link MAX_BUILTIN_PARAMETERS}
 *
 * @example
 * ```ts
 * const model = builtinModel('mlp-784-300-100-10', 42);
 * ```
 */
export function builtinModel(id: string, seed: number): tfl.LayersModel {
  const [inputs, ...units] = builtinModelSizes(id) as [number, ...number[]];
  const model = tfl.sequential({ name: id.replace(/-/g, '_') });
  units.forEach((width, index) => {
    model.add(
      tfl.layers.dense({
        name: `dense_${index + 1}`,
        units: width,
        activation: index < units.length - 1 ? 'relu' : 'linear',
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + index }),
        ...(index === 0 ? { inputShape: [inputs] } : {}),
      }),
    );
  });
  return model;
}

/**
 * The directory of a saved model a recipe names (a directory or its `model.json`, relative to
 * `baseDirectory`), checked to hold a `model.json`.
 *
 * @throws FinepruneError `IO_FAILED` when there is no `model.json`, with the recipe path (`where`, default `model.path`)
 *
 * @example
 * ```ts
 * savedModelDirectory('./teacher', { baseDirectory: '.', where: 'options.teacher' }); // '/abs/teacher'
 * ```
 */
export function savedModelDirectory(
  modelPath: string,
  options: { baseDirectory: string; where?: string },
): string {
  const where = options.where ?? 'model.path';
  const directory = path.resolve(options.baseDirectory, modelPath.replace(/model\.json$/, ''));
  if (!existsSync(path.join(directory, 'model.json'))) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${where}: there is no model.json in ${directory}.`,
      fix: `Point ${where} at a directory holding model.json and its weights (saved with model.save() or written by \`fineprune run\` under out/<name>/model), relative to the recipe.`,
      details: { path: where, directory },
    });
  }
  return directory;
}

/**
 * Loads a saved TF.js layers model (a directory with `model.json` and its weights, as
 * `model.save()` or `fineprune export` write it) for a recipe: the `model: { path }` section and
 * the teacher of a `distillation` loss term both come through here.
 *
 * @param modelPath - the directory (or its `model.json`), relative to `baseDirectory`
 * @param options - `baseDirectory`: where relative paths start (the recipe's directory);
 *   `where`: the recipe path named in errors (default `model.path`)
 * @throws FinepruneError `IO_FAILED` when there is no `model.json` or it cannot be loaded, with the recipe path in the message and `details.path`
 *
 * @example
 * ```ts
 * const teacher = await loadSavedModel('./teacher', { baseDirectory: path.dirname(recipeFile), where: 'lossTerms[0].options.teacher' });
 * ```
 */
export async function loadSavedModel(
  modelPath: string,
  options: { baseDirectory: string; where?: string },
): Promise<tfl.LayersModel> {
  const where = options.where ?? 'model.path';
  const directory = savedModelDirectory(modelPath, options);
  const handler = fileSystem(directory);
  try {
    let artifacts: tf.io.ModelArtifacts | undefined;
    const model = await tfl.loadLayersModel({
      load: async () => {
        artifacts = await handler.load!();
        return artifacts;
      },
    });
    rememberModelSource(model, sourceOfArtifacts(artifacts!));
    return model;
  } catch (error) {
    const reason = FinepruneError.is(error)
      ? error.message.replace(/^\[[A-Z_]+\] /, '').replace(/ Fix: [\s\S]*$/, '')
      : (error as Error).message;
    throw new FinepruneError({
      code: FinepruneError.is(error) ? error.code : ErrorCodes.IO_FAILED,
      // TF.js's own messages can quote the whole topology (about 100 KB): keep the start.
      message: `${where}: the model in ${directory} cannot be loaded: ${reason.length > 600 ? `${reason.slice(0, 600)}…` : reason}`,
      fix: `Point ${where} at a directory holding model.json and its weights (saved with model.save()).`,
      cause: error,
      details: { path: where, directory },
    });
  }
}

/**
 * The model sections of a recipe that give a TF.js layers model (all but `huggingFace`).
 *
 * @example
 * ```ts
 * const section: LayersModelSection = { builtin: 'mlp-784-300-100-10', loss: 'sparseCategoricalCrossentropy' };
 * ```
 */
export type LayersModelSection = Exclude<RecipeModel, { huggingFace: string }>;

/**
 * A function exported by a user's module: a path relative to the recipe (`./build-model.mjs`) or an
 * installed package name, imported and checked to export a function under `exportName`.
 *
 * @param specifier - the recipe's module string
 * @param exportName - the export to take
 * @param options - where relative paths start, and the recipe paths named in errors
 * @throws FinepruneError `IO_FAILED` when the module cannot be imported, `INVALID_RECIPE` when it has no such function
 *
 * @example
 * ```ts
 * const build = await importUserFunction('./data.mjs', 'default', { baseDirectory: '.', where: 'data.module', exportWhere: 'data.export' });
 * ```
 */
export async function importUserFunction(
  specifier: string,
  exportName: string,
  options: { baseDirectory: string; where: string; exportWhere: string; expected: string },
): Promise<(...parameters: never[]) => unknown> {
  const resolved =
    specifier.startsWith('.') || path.isAbsolute(specifier)
      ? pathToFileURL(path.resolve(options.baseDirectory, specifier)).href
      : specifier;
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(/* @vite-ignore */ resolved)) as Record<string, unknown>;
  } catch (error) {
    throw new FinepruneError({
      code: ErrorCodes.IO_FAILED,
      message: `${options.where}: ${specifier} cannot be imported: ${(error as Error).message}`,
      fix: 'Give a path relative to the recipe (./module.mjs) or an installed package name.',
      cause: error,
      details: { path: options.where },
    });
  }
  const exported = loaded[exportName];
  if (typeof exported !== 'function') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `${options.exportWhere}: ${specifier} has no function export "${exportName}".`,
      fix: `Export a function ${options.expected} and name it in ${options.exportWhere}.`,
      details: { path: options.exportWhere },
    });
  }
  return exported as (...parameters: never[]) => unknown;
}

/**
 * Builds or loads the model a recipe names: a built-in model, a saved TF.js layers model (a
 * directory with `model.json`), or a module whose export `(seed) => tf.LayersModel` builds one.
 *
 * @param model - the recipe's `model` section (not `huggingFace`, which `openBertModel` opens)
 * @param options - the recipe's seed and directory (relative paths start there)
 *
 * @example
 * ```ts
 * const model = await loadRecipeModel(recipe.model, { seed: recipe.seed, baseDirectory: path.dirname(file) });
 * ```
 */
export async function loadRecipeModel(
  model: LayersModelSection,
  options: { seed: number; baseDirectory: string },
): Promise<tfl.LayersModel> {
  if ('builtin' in model) return builtinModel(model.builtin, options.seed);
  if ('path' in model) return loadSavedModel(model.path, { baseDirectory: options.baseDirectory });
  const build = await importUserFunction(model.module, model.export, {
    baseDirectory: options.baseDirectory,
    where: 'model.module',
    exportWhere: 'model.export',
    expected: '`(seed) => tf.LayersModel`',
  });
  const built = await (build as (seed: number) => unknown)(options.seed);
  if (!(built instanceof tfl.LayersModel)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `model.export: "${model.export}" of ${model.module} did not return a tf.LayersModel.`,
      fix: 'Return tf.sequential(...) or tf.model(...) built with the same @tensorflow/tfjs-layers.',
      details: { path: 'model.export' },
    });
  }
  return built;
}
