import type {
  JsonObject,
  LossTerm,
  MaskFunction,
  ParameterSelector,
  Plugin,
  PruningGroupOptions,
  ScoreStrategy,
  SparsitySchedule,
} from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { importNodeBuiltin, isNode, type NodeBuiltins } from '@fineprune/tensor/runtime';
import {
  type PluginDefinition,
  type PluginEnvironment,
  type PluginKind,
  type PluginPackage,
  type PluginRegistry,
  pluginOptionIssues,
  stepUnits,
  unknownPluginError,
} from './registry';
import type { Recipe, RecipeSelector } from './schema';
import { formatPath, type RecipeIssue, recipeError } from './validate';

/**
 * Turns recipe selectors (names and `{ pattern }` objects) into a core `ParameterSelector`.
 *
 * @example
 * ```ts
 * toParameterSelector(['dense_1', { pattern: 'dense_\\d/kernel' }]); // ['dense_1', /dense_\d\/kernel/]
 * ```
 */
export function toParameterSelector(selectors: readonly RecipeSelector[]): ParameterSelector {
  return selectors.map((selector) =>
    typeof selector === 'string' ? selector : new RegExp(selector.pattern, selector.flags ?? ''),
  );
}

function isPluginPackage(value: unknown): value is PluginPackage {
  return (
    value !== null && typeof value === 'object' && Array.isArray((value as { plugins?: unknown }).plugins)
  );
}

/**
 * How to import a package by name; replaceable for tests and bundlers.
 *
 * @example
 * ```ts
 * const importer: PackageImporter = (name) => import(name);
 * ```
 */
export type PackageImporter = (name: string, from: string) => Promise<unknown>;

/** The export conditions Node uses for `import` in this process (plus any `--conditions`). */
function importConditions(): Set<string> {
  const conditions = new Set(['import', 'node', 'module-sync', 'default']);
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  flags.forEach((flag, index) => {
    const inline = /^(?:--conditions|-C)=(.+)$/.exec(flag);
    if (inline) conditions.add(inline[1]!);
    else if ((flag === '--conditions' || flag === '-C') && flags[index + 1])
      conditions.add(flags[index + 1]!);
  });
  return conditions;
}

/** The ESM entry file of an installed package, following its `exports` with the import conditions. */
function esmEntry(path: NodeBuiltins['path'], directory: string, manifest: Record<string, unknown>): string {
  const conditions = importConditions();
  const exportsField = manifest.exports as unknown;
  let target: unknown =
    exportsField !== null &&
    typeof exportsField === 'object' &&
    !Array.isArray(exportsField) &&
    '.' in exportsField
      ? (exportsField as Record<string, unknown>)['.']
      : exportsField;
  while (target !== null && typeof target === 'object' && !Array.isArray(target)) {
    const key = Object.keys(target).find((condition) => conditions.has(condition));
    target = key === undefined ? undefined : (target as Record<string, unknown>)[key];
  }
  const file =
    typeof target === 'string' ? target : ((manifest.module ?? manifest.main ?? 'index.js') as string);
  return path.resolve(directory, file);
}

/** The directory of package `name` installed in `from` or a parent's node_modules. */
function findPackage(
  { fs, path }: Pick<NodeBuiltins, 'fs' | 'path'>,
  name: string,
  from: string,
): string | undefined {
  let directory = path.resolve(from);
  for (;;) {
    const candidate = path.join(directory, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    const parent = path.dirname(directory);
    if (parent === directory) return undefined;
    directory = parent;
  }
}

/**
 * The default importer: the package installed beside the recipe (`from` or a parent's
 * node_modules), loaded through its ESM entry so it shares this process's TF.js engine; else (and
 * outside Node) a plain `import(name)` from here.
 *
 * @example
 * ```ts
 * const module = await defaultImporter('fineprune-criterion-snip', recipeDirectory);
 * ```
 */
export const defaultImporter: PackageImporter = async (name, from) => {
  // Outside Node there are no node_modules to search: the page's import map (if any) decides.
  if (!isNode()) return import(/* @vite-ignore */ name);
  const feature = `Loading the plugin package ${name} from disk`;
  const [fs, path, url] = await Promise.all([
    importNodeBuiltin('fs', feature),
    importNodeBuiltin('path', feature),
    importNodeBuiltin('url', feature),
  ]);
  const directory = findPackage({ fs, path }, name, from);
  if (directory) {
    const manifest = JSON.parse(fs.readFileSync(path.join(directory, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    return import(/* @vite-ignore */ url.pathToFileURL(esmEntry(path, directory, manifest)).href);
  }
  return import(/* @vite-ignore */ name);
};

const PACKAGE_NAME = /^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i;

/**
 * How long {@link loadPluginPackage} waits for a plugin package's import by default: 60 seconds.
 *
 * @example
 * ```ts
 * await loadPluginPackage(registry, name, { timeoutMs: 2 * DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS });
 * ```
 */
export const DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS = 60_000;

/** `promise`, or a rejection with `onTimeout()` once `milliseconds` have passed (the timer is cleared either way). */
async function withTimeout<T>(promise: Promise<T>, milliseconds: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), milliseconds);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Imports a plugin package by its npm name and registers the plugins it exports (as
 * `fineprunePlugins` or as its default export, a {@link PluginPackage}). Loading a package twice
 * does nothing the second time. An import that has not settled after `timeoutMs` (a top-level
 * `await` that never resolves, say) fails, so a command never waits on it forever.
 *
 * @param registry - where to register
 * @param name - the package name, as in a recipe's `plugins` list
 * @param options - `from`: directory to resolve from (the recipe's); `importer` for tests;
 *   `timeoutMs`: how long to wait for the import (default {@link DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS})
 * @returns the ids registered, as `kind:id`
 * @throws FinepruneError `PLUGIN_PACKAGE_FAILED`, also when the import times out (`details.timeoutMs`)
 *
 * @example
 * ```ts
 * await loadPluginPackage(registry, 'fineprune-criterion-snip', { from: process.cwd() });
 * ```
 */
export async function loadPluginPackage(
  registry: PluginRegistry,
  name: string,
  options: { from?: string; importer?: PackageImporter; timeoutMs?: number } = {},
): Promise<string[]> {
  if (registry.packages.has(name)) return [];
  const failed = (message: string, fix: string, cause?: unknown, details: Record<string, unknown> = {}) =>
    new FinepruneError({
      code: ErrorCodes.PLUGIN_PACKAGE_FAILED,
      message,
      fix,
      ...(cause !== undefined ? { cause } : {}),
      details: { package: name, ...details },
    });
  const timeoutMs = options.timeoutMs ?? DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `timeoutMs must be a positive number of milliseconds, got ${timeoutMs}.`,
      fix: 'Pass a timeout such as 60000 (one minute).',
    });
  }
  if (typeof name !== 'string' || !PACKAGE_NAME.test(name) || name.length > 214) {
    throw failed(
      `${JSON.stringify(String(name).slice(0, 80))} is not an npm package name.`,
      'List package names such as "fineprune-criterion-snip" under `plugins`.',
    );
  }
  let module: Record<string, unknown>;
  try {
    const importing = (options.importer ?? defaultImporter)(name, options.from ?? process.cwd());
    module = (await withTimeout(importing, timeoutMs, () =>
      failed(
        `The plugin package "${name}" did not finish importing within ${timeoutMs / 1000} s.`,
        'Check the package for work at import time that never ends (a top-level await on something that never resolves), or allow longer (fineprune --plugin-timeout <seconds>).',
        undefined,
        { timeoutMs },
      ),
    )) as Record<string, unknown>;
  } catch (error) {
    if (FinepruneError.is(error) && error.code === ErrorCodes.PLUGIN_PACKAGE_FAILED) throw error;
    throw failed(
      `The plugin package "${name}" cannot be imported: ${(error as Error)?.message ?? String(error)}`,
      `Install it next to the recipe (npm install ${name}) or fix the name in \`plugins\`.`,
      error,
    );
  }
  const exported = [module?.fineprunePlugins, module?.default].find(isPluginPackage);
  if (!exported) {
    throw failed(
      `The package "${name}" exports no plugin list (\`fineprunePlugins\` or a default export with \`plugins\`).`,
      'Export `fineprunePlugins: PluginPackage = { plugins: [definePlugin({ kind, id, create })] }` from the package.',
    );
  }
  const registered: string[] = [];
  for (const definition of exported.plugins) {
    try {
      registry.register({ ...definition, package: name } as PluginDefinition);
    } catch (error) {
      throw failed(
        `The package "${name}" registers an invalid plugin: ${(error as Error).message}`,
        'Fix the package’s plugin definitions.',
        error,
      );
    }
    registered.push(`${definition.kind}:${definition.id}`);
  }
  (registry.packages as Set<string>).add(name);
  return registered;
}

/**
 * Every plugin reference of a recipe with its kind and path.
 *
 * @example
 * ```ts
 * pluginReferences(recipe).map((reference) => `${reference.path}: ${reference.kind} ${reference.id}`);
 * ```
 */
export function pluginReferences(
  recipe: Recipe,
): Array<{ kind: PluginKind; id: string; options: JsonObject; path: string }> {
  const out: Array<{ kind: PluginKind; id: string; options: JsonObject; path: string }> = [];
  recipe.pruning.forEach((group, index) => {
    for (const kind of ['scores', 'mask', 'schedule'] as const) {
      out.push({
        kind,
        id: group[kind].id,
        options: group[kind].options as JsonObject,
        path: formatPath(['pruning', index, kind]),
      });
    }
  });
  for (const [index, term] of recipe.lossTerms.entries()) {
    out.push({
      kind: 'lossTerm',
      id: term.id,
      options: term.options as JsonObject,
      path: formatPath(['lossTerms', index]),
    });
  }
  for (const [index, hook] of recipe.hooks.entries()) {
    out.push({
      kind: 'hook',
      id: hook.id,
      options: hook.options as JsonObject,
      path: formatPath(['hooks', index]),
    });
  }
  return out;
}

/**
 * Checks every plugin reference of a recipe before anything is built: each id must be registered
 * (every unknown id is reported with its path in one `UNKNOWN_PLUGIN` error), and each reference's
 * options must fit the options schema its definition declares (every problem in one
 * `INVALID_RECIPE` error: unknown names with the nearest valid one, missing or mistyped options,
 * numbers out of bounds).
 *
 * @example
 * ```ts
 * checkRecipePlugins(recipe, registry); // throws when an id is unknown or an option is misspelled
 * ```
 */
export function checkRecipePlugins(recipe: Recipe, registry: PluginRegistry, source?: string): void {
  const unknown: RecipeIssue[] = [];
  const options: RecipeIssue[] = [];
  for (const reference of pluginReferences(recipe)) {
    const definition = registry.get(reference.kind, reference.id);
    if (!definition) {
      const error = unknownPluginError(registry, reference.kind, reference.id);
      unknown.push({
        path: `${reference.path}.id`,
        message: error.message.replace(/^\[[A-Z_]+\] /, '').replace(/ Fix: [\s\S]*$/, ''),
        fix: error.fix,
      });
    } else {
      options.push(...pluginOptionIssues(definition, reference.options, `${reference.path}.options`));
    }
  }
  if (unknown.length > 0) throw recipeError(unknown, source, ErrorCodes.UNKNOWN_PLUGIN);
  if (options.length > 0) throw recipeError(options, source);
}

/**
 * Checks that the plugins of pruning group `index` work together, as far as they are given: the
 * mask and the schedule agree on the kind of target; a mask that needs learned scores gets them;
 * learned scores have `training.scoreOptimizer`.
 *
 * @throws FinepruneError `INCOMPATIBLE_PLUGINS` or `INVALID_RECIPE`, with the recipe path
 *
 * @example
 * ```ts
 * checkGroupComposition(recipe, registry, 0, { scores, mask, schedule });
 * ```
 */
export function checkGroupComposition(
  recipe: Recipe,
  registry: PluginRegistry,
  index: number,
  plugins: { scores?: ScoreStrategy; mask?: MaskFunction; schedule?: SparsitySchedule },
): void {
  const { scores, mask, schedule } = plugins;
  const at = (kind: string) => formatPath(['pruning', index, kind]);
  if (mask && schedule && mask.targetKind !== schedule.kind) {
    throw new FinepruneError({
      code: ErrorCodes.INCOMPATIBLE_PLUGINS,
      message: `${at('mask')}: mask "${mask.id}" needs a ${mask.targetKind} target but ${at('schedule')} "${schedule.id}" produces a ${schedule.kind}.`,
      fix: `Use a schedule that produces a ${mask.targetKind} (${registry
        .list('schedule')
        .map((definition) => definition.id)
        .join(', ')}).`,
      details: { path: at('schedule') },
    });
  }
  if (mask?.requiresLearnableScores && scores && !scores.learnable) {
    throw new FinepruneError({
      code: ErrorCodes.INCOMPATIBLE_PLUGINS,
      message: `${at('mask')}: mask "${mask.id}" needs learned scores but ${at('scores')} "${scores.id}" computes them.`,
      fix: 'Use a learnable score strategy (movement, l0) with this mask.',
      details: { path: at('scores') },
    });
  }
  if (scores?.learnable && !recipe.training.scoreOptimizer) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_RECIPE,
      message: `${at('scores')}: "${scores.id}" learns its scores but training.scoreOptimizer is missing.`,
      fix: 'Add `training.scoreOptimizer: { type: adam, learningRate: 0.01 }`.',
      details: { path: 'training.scoreOptimizer' },
    });
  }
}

/**
 * The plugins of a recipe, built: what a `Pruner` takes besides the model and optimizers.
 *
 * @example
 * ```ts
 * const { groups, lossTerms, hooks }: ResolvedPlugins = await resolvePlugins(recipe, registry, environment);
 * ```
 */
export interface ResolvedPlugins {
  groups: PruningGroupOptions[];
  lossTerms: LossTerm[];
  hooks: Plugin[];
}

/**
 * Builds every plugin of a recipe through the registry, checks that each group's mask and
 * schedule agree on the kind of target, and returns the pruner's groups, loss terms and hooks.
 *
 * @throws FinepruneError `UNKNOWN_PLUGIN`, `INCOMPATIBLE_PLUGINS`, or a factory's error with the recipe path
 *
 * @example
 * ```ts
 * const { groups, lossTerms, hooks } = await resolvePlugins(recipe, registry, { seed: recipe.seed, totalSteps: recipe.training.steps, model });
 * const pruner = new Pruner({ model, groups, lossTerms, plugins: hooks, optimizers });
 * ```
 */
export async function resolvePlugins(
  recipe: Recipe,
  registry: PluginRegistry,
  environment: PluginEnvironment,
): Promise<ResolvedPlugins> {
  checkRecipePlugins(recipe, registry);
  // One plugin from its reference in the recipe, errors naming the reference's path.
  const make = <K extends Parameters<PluginRegistry['create']>[0]>(
    kind: K,
    reference: { id: string; options?: unknown },
    path: string,
  ) => registry.create(kind, reference.id, reference.options as JsonObject, environment, path);
  const groups: PruningGroupOptions[] = [];
  for (const [index, group] of recipe.pruning.entries()) {
    const at = (kind: string) => formatPath(['pruning', index, kind]);
    const scores = await make('scores', group.scores, at('scores'));
    const mask = await make('mask', group.mask, at('mask'));
    const schedule = await make('schedule', group.schedule, at('schedule'));
    checkGroupComposition(recipe, registry, index, { scores, mask, schedule });
    groups.push({
      name: group.name ?? (recipe.pruning.length === 1 ? 'default' : `group${index}`),
      scores,
      mask,
      schedule,
      ...(group.include ? { parameters: toParameterSelector(group.include) } : {}),
      ...(group.exclude ? { exclude: toParameterSelector(group.exclude) } : {}),
      ...(group.maskUpdateInterval !== undefined ? { maskUpdateInterval: group.maskUpdateInterval } : {}),
    });
  }
  const lossTerms: LossTerm[] = [];
  for (const [index, term] of recipe.lossTerms.entries()) {
    lossTerms.push(await make('lossTerm', term, formatPath(['lossTerms', index])));
  }
  const hooks: Plugin[] = [];
  for (const [index, hook] of recipe.hooks.entries()) {
    hooks.push(await make('hook', hook, formatPath(['hooks', index])));
  }
  return { groups, lossTerms, hooks };
}

/**
 * Options of {@link shortenRecipe}.
 *
 * @example
 * ```ts
 * const options: ShortenOptions = { maxSteps: 20, trainLimit: 500 };
 * ```
 */
export interface ShortenOptions {
  /** The new total number of steps. */
  maxSteps?: number;
  /** Use at most this many training examples. */
  trainLimit?: number;
  /** Evaluate on at most this many test examples. */
  testLimit?: number;
}

/**
 * A shorter copy of a recipe for smoke tests and CI: `training.steps` becomes `maxSteps` (when
 * smaller), and every step-valued plugin option that the registry declares (`stepOptions`) is
 * scaled by the same factor (rounded down, a positive length to at least one step), as are `training.evaluateEvery`, `checkpoint.every` and the
 * learning-rate warm-ups given in steps (`warmupFraction` scales by itself). Data limits
 * are applied as given.
 *
 * @example
 * ```ts
 * const quick = shortenRecipe(recipe, registry, { maxSteps: 20, trainLimit: 500, testLimit: 200 });
 * ```
 */
export function shortenRecipe(recipe: Recipe, registry: PluginRegistry, options: ShortenOptions): Recipe {
  const copy = structuredClone(recipe) as Recipe;
  if (options.trainLimit !== undefined)
    copy.data.trainLimit = Math.min(copy.data.trainLimit ?? Number.POSITIVE_INFINITY, options.trainLimit);
  if (options.testLimit !== undefined)
    copy.data.testLimit = Math.min(copy.data.testLimit ?? Number.POSITIVE_INFINITY, options.testLimit);
  if (options.trainLimit !== undefined && copy.data.batchSize > copy.data.trainLimit!)
    copy.data.batchSize = copy.data.trainLimit!;
  const maxSteps = options.maxSteps;
  if (maxSteps === undefined || maxSteps >= recipe.training.steps) return copy;
  if (!(Number.isInteger(maxSteps) && maxSteps >= 1)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `maxSteps must be an integer ≥ 1, got ${maxSteps}.`,
      fix: 'Pass a whole number of steps such as 20.',
    });
  }
  const factor = maxSteps / recipe.training.steps;
  // A positive length stays at least one step: a cool-down scaled to 0 would end a cubic schedule one
  // step after the last step trained (`--max-steps 4` of a 600-step recipe with a 120-step cool-down).
  const scaleSteps = (value: number) => (value > 0 ? Math.max(1, Math.floor(value * factor)) : 0);
  const scaleInterval = (value: number) => Math.max(1, Math.floor(value * factor));
  copy.training.steps = maxSteps;
  if (copy.training.evaluateEvery > 0)
    copy.training.evaluateEvery = scaleInterval(copy.training.evaluateEvery);
  if (copy.checkpoint.every > 0) copy.checkpoint.every = scaleInterval(copy.checkpoint.every);
  for (const optimizer of [copy.training.optimizer, copy.training.scoreOptimizer]) {
    const schedule = optimizer?.schedule;
    if (schedule?.warmupSteps !== undefined) schedule.warmupSteps = scaleSteps(schedule.warmupSteps);
  }
  const scale = (kind: PluginKind, reference: { id: string; options: Record<string, unknown> }) => {
    const definition = registry.get(kind, reference.id);
    for (const [key, unit] of Object.entries(definition ? stepUnits(definition) : {})) {
      const value = reference.options[key];
      if (typeof value === 'number' && Number.isFinite(value)) {
        reference.options[key] =
          key === 'totalSteps' ? maxSteps : unit === 'interval' ? scaleInterval(value) : scaleSteps(value);
      }
    }
  };
  for (const group of copy.pruning) {
    if (group.maskUpdateInterval !== undefined)
      group.maskUpdateInterval = scaleInterval(group.maskUpdateInterval);
    scale('scores', group.scores);
    scale('mask', group.mask);
    scale('schedule', group.schedule);
  }
  for (const term of copy.lossTerms) scale('lossTerm', term);
  for (const hook of copy.hooks) scale('hook', hook);
  return copy;
}
