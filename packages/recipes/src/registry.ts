import type {
  Batch,
  BatchProvider,
  JsonObject,
  LossTerm,
  MaskFunction,
  Plugin,
  PrunableModel,
  ScoreStrategy,
  SparsitySchedule,
} from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { nearestName } from './nearest-name';
import { type OptionsSchema, optionIssues } from './options';
import { type RecipeIssue, recipeError } from './validate';

/**
 * The kinds of plugin a recipe names by id.
 *
 * @example
 * ```ts
 * const kind: PluginKind = 'scores';
 * ```
 */
export type PluginKind = 'scores' | 'mask' | 'schedule' | 'lossTerm' | 'hook';

/**
 * What a factory of each kind returns.
 *
 * @example
 * ```ts
 * const scores: PluginKindMap['scores'] = await registry.create('scores', 'magnitude', {}, environment);
 * ```
 */
export interface PluginKindMap {
  scores: ScoreStrategy;
  mask: MaskFunction;
  schedule: SparsitySchedule;
  lossTerm: LossTerm;
  hook: Plugin;
}

/**
 * Human names of the kinds, for messages.
 *
 * @example
 * ```ts
 * PLUGIN_KIND_NAMES.mask; // 'mask function'
 * ```
 */
export const PLUGIN_KIND_NAMES: Record<PluginKind, string> = {
  scores: 'score strategy',
  mask: 'mask function',
  schedule: 'schedule',
  lossTerm: 'loss term',
  hook: 'hook plugin',
};

/**
 * What a plugin factory receives besides its options: the run it is created for. Data-driven
 * plugins (saliency criteria, distillation) read batches from `data`; everything is optional so a
 * registry can also build plugins outside a run (for checks and tests).
 *
 * @example
 * ```ts
 * const create = (options: JsonObject, environment: PluginEnvironment) => snip({ ...options, data: environment.data });
 * ```
 */
export interface PluginEnvironment {
  /** The recipe's seed. */
  readonly seed: number;
  /** Total optimizer steps of the run. */
  readonly totalSteps: number;
  /** The model being pruned. */
  readonly model?: PrunableModel;
  /** Training batches: batch `s` is a pure function of `s` (so resumed runs stay exact). */
  readonly data?: BatchProvider;
  /** A fixed evaluation batch source (test data), when the run has one. */
  readonly evaluationData?: () => Iterable<Batch>;
  /** Directory of the recipe file, for relative paths in options. */
  readonly baseDirectory?: string;
  /**
   * True when the plugin is built only to check a recipe (`fineprune validate`, and a run before it
   * loads its data): the factory should check its options and files, and may skip loading large
   * ones (a teacher model); the plugin is never run.
   */
  readonly checkOnly?: boolean;
}

/**
 * A registered plugin: its kind, id, and a factory from JSON options (the plugin's `toConfig()`
 * shape) to the plugin object.
 *
 * @example
 * ```ts
 * const definition: PluginDefinition<'scores'> = {
 *   kind: 'scores', id: 'magnitude', description: '|W|',
 *   create: () => magnitude(),
 * };
 * ```
 */
export interface PluginDefinition<K extends PluginKind = PluginKind> {
  readonly kind: K;
  /** The id recipes use; unique per kind. Third-party ids should carry a prefix (`acme/fisher`). */
  readonly id: string;
  readonly description?: string;
  /**
   * The options the plugin accepts. With a schema, the registry refuses unknown option names (with
   * the nearest declared name), missing required options, wrong types and numbers out of bounds
   * before `create` runs, and `shortenRecipe` scales the options that declare a `unit`. Without
   * one, every option goes to `create` unchecked.
   */
  readonly options?: OptionsSchema;
  /** Builds the plugin; throws a FinepruneError for bad options. */
  create(options: JsonObject, environment: PluginEnvironment): PluginKindMap[K] | Promise<PluginKindMap[K]>;
  /**
   * Options measured in steps, scaled when a recipe is shortened (`--max-steps`): `steps` values are
   * scaled and rounded down, `interval` values are scaled and kept ≥ 1. For definitions without an
   * options schema; with one, give each such option a `unit` instead.
   */
  readonly stepOptions?: Readonly<Record<string, 'steps' | 'interval'>>;
  /** The package that registered it (set by {@link loadPluginPackage}). */
  readonly package?: string;
}

/**
 * Identity helper that types a plugin definition.
 *
 * @example
 * ```ts
 * export const snipScores = definePlugin({ kind: 'scores', id: 'snip', create: (options, env) => snip(options, env) });
 * ```
 */
export function definePlugin<K extends PluginKind>(definition: PluginDefinition<K>): PluginDefinition<K> {
  return definition;
}

/**
 * What a plugin package exports (as `fineprunePlugins`, or as its default export) so that recipes
 * can load it by package name.
 *
 * @example
 * ```ts
 * export const fineprunePlugins: PluginPackage = { name: 'fineprune-criterion-snip', plugins: [snipScores] };
 * ```
 */
export interface PluginPackage {
  readonly name?: string;
  readonly plugins: readonly PluginDefinition[];
}

/**
 * Maps (kind, id) to plugin factories. Recipes name plugins by id; the registry builds them.
 *
 * @example
 * ```ts
 * const registry = createPluginRegistry([magnitudeDefinition, topVDefinition]);
 * const scores = await registry.create('scores', 'magnitude', {}, { seed: 0, totalSteps: 100 });
 * ```
 */
export interface PluginRegistry {
  /** Adds a definition; a second definition for the same kind and id is an error unless `replace`. */
  register(definition: PluginDefinition, options?: { replace?: boolean }): void;
  has(kind: PluginKind, id: string): boolean;
  get<K extends PluginKind>(kind: K, id: string): PluginDefinition<K> | undefined;
  /** Every definition, or those of one kind, sorted by id. */
  list(kind?: PluginKind): PluginDefinition[];
  /**
   * Builds a plugin. Unknown ids throw `UNKNOWN_PLUGIN`; options that break the definition's
   * schema throw `INVALID_RECIPE` (every problem, with its path under `where`); a factory's own
   * errors are rethrown with `where` (a recipe path) prefixed to the message.
   */
  create<K extends PluginKind>(
    kind: K,
    id: string,
    options: JsonObject,
    environment: PluginEnvironment,
    where?: string,
  ): Promise<PluginKindMap[K]>;
  /** Names of the plugin packages loaded into this registry. */
  readonly packages: ReadonlySet<string>;
}

/**
 * The problems of a plugin reference's options against its definition's options schema (none when
 * the definition declares no schema), each with its recipe path under `where`.
 *
 * @example
 * ```ts
 * pluginOptionIssues(registry.get('schedule', 'cubic')!, { intervl: 10 }, 'pruning[0].schedule.options');
 * ```
 */
export function pluginOptionIssues(
  definition: PluginDefinition,
  options: unknown,
  where: string,
): RecipeIssue[] {
  if (!definition.options) return [];
  const owner = `${PLUGIN_KIND_NAMES[definition.kind]} "${definition.id}"`;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    return [
      {
        path: where,
        message: `${owner} takes an object of options`,
        fix: `Write \`${where}\` as an object.`,
      },
    ];
  }
  return optionIssues(definition.options, options as Record<string, unknown>, where, owner);
}

/**
 * The options of a definition counted in steps, with their unit: the schema's `unit`s, else
 * `stepOptions`.
 *
 * @example
 * ```ts
 * stepUnits(registry.get('schedule', 'cubic')!); // { totalSteps: 'steps', …, interval: 'interval' }
 * ```
 */
export function stepUnits(definition: PluginDefinition): Record<string, 'steps' | 'interval'> {
  const units: Record<string, 'steps' | 'interval'> = { ...(definition.stepOptions ?? {}) };
  for (const [name, spec] of Object.entries(definition.options ?? {})) if (spec.unit) units[name] = spec.unit;
  return units;
}

/**
 * The `UNKNOWN_PLUGIN` error for an id, with the known ids and a "did you mean".
 *
 * @example
 * ```ts
 * throw unknownPluginError(registry, 'scores', 'movment', 'pruning[0].scores.id');
 * ```
 */
export function unknownPluginError(
  registry: PluginRegistry,
  kind: PluginKind,
  id: string,
  where?: string,
): FinepruneError {
  const known = registry.list(kind).map((definition) => definition.id);
  const shown = id.length > 80 ? `${id.slice(0, 80)}…` : id;
  const close = nearestName(id, known);
  const elsewhere = registry
    .list()
    .filter((definition) => definition.id === id && definition.kind !== kind)
    .map((definition) => PLUGIN_KIND_NAMES[definition.kind]);
  return new FinepruneError({
    code: ErrorCodes.UNKNOWN_PLUGIN,
    message: `${where ? `${where}: ` : ''}no ${PLUGIN_KIND_NAMES[kind]} is registered as ${JSON.stringify(shown)}${
      elsewhere.length ? ` (it is a ${elsewhere.join(', ')})` : ''
    }. Known: ${known.length ? known.join(', ') : 'none'}.`,
    fix: close
      ? `Did you mean ${JSON.stringify(close)}?`
      : 'Check the id, or add the npm package that provides it to the recipe’s `plugins` list.',
    details: { kind, id: shown, known, ...(where ? { path: where } : {}) },
  });
}

/**
 * Creates a plugin registry, optionally with definitions.
 *
 * @example
 * ```ts
 * const registry = createPluginRegistry();
 * registry.register(definePlugin({ kind: 'schedule', id: 'constant', create: (options) => constant(options as never) }));
 * ```
 */
export function createPluginRegistry(definitions: readonly PluginDefinition[] = []): PluginRegistry {
  const entries = new Map<string, PluginDefinition>();
  const packages = new Set<string>();
  const key = (kind: PluginKind, id: string) => `${kind}\u0000${id}`;
  const registry: PluginRegistry & { packages: Set<string> } = {
    packages,
    register(definition, options = {}) {
      const valid =
        definition !== null &&
        typeof definition === 'object' &&
        typeof definition.id === 'string' &&
        definition.id.length > 0 &&
        definition.id.length <= 200 &&
        typeof definition.create === 'function' &&
        Object.hasOwn(PLUGIN_KIND_NAMES, definition.kind);
      if (!valid) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: `A plugin definition needs a kind (${Object.keys(PLUGIN_KIND_NAMES).join(', ')}), an id and a create() function; got ${JSON.stringify(
            { kind: (definition as { kind?: unknown })?.kind, id: (definition as { id?: unknown })?.id },
          )}.`,
          fix: 'Build definitions with definePlugin({ kind, id, create }).',
        });
      }
      const entryKey = key(definition.kind, definition.id);
      if (entries.has(entryKey) && !options.replace) {
        const existing = entries.get(entryKey)!;
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: `The ${PLUGIN_KIND_NAMES[definition.kind]} id ${JSON.stringify(definition.id)} is already registered${
            existing.package ? ` by ${existing.package}` : ''
          }.`,
          fix: 'Give third-party plugins a prefixed id such as "acme/fisher", or pass { replace: true }.',
        });
      }
      entries.set(entryKey, definition);
    },
    has: (kind, id) => entries.has(key(kind, id)),
    get: (kind, id) => entries.get(key(kind, id)) as never,
    list: (kind) =>
      [...entries.values()]
        .filter((definition) => kind === undefined || definition.kind === kind)
        .sort((left, right) => left.id.localeCompare(right.id)),
    async create(kind, id, options, environment, where) {
      const definition = entries.get(key(kind, id));
      if (!definition) throw unknownPluginError(registry, kind, id, where);
      const issues = pluginOptionIssues(definition, options, where ? `${where}.options` : 'options');
      if (issues.length > 0) throw recipeError(issues);
      try {
        const plugin = await definition.create(options, environment);
        if (
          plugin === null ||
          typeof plugin !== 'object' ||
          typeof (plugin as { id?: unknown }).id !== 'string'
        ) {
          throw new FinepruneError({
            code: ErrorCodes.INVALID_ARGUMENT,
            message: `The factory of ${PLUGIN_KIND_NAMES[kind]} "${id}" returned no plugin object with an id.`,
            fix: 'Return the plugin object from create().',
          });
        }
        return plugin as PluginKindMap[typeof kind];
      } catch (error) {
        const prefix = where ? `${where}: ` : '';
        if (FinepruneError.is(error)) {
          const message = error.message.replace(/^\[[A-Z_]+\] /, '').replace(/ Fix: [\s\S]*$/, '');
          throw new FinepruneError({
            code: error.code,
            message: `${prefix}${message}`,
            fix: error.fix,
            cause: error,
            details: { ...(error.details ?? {}), ...(where ? { path: where } : {}) },
          });
        }
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: `${prefix}the ${PLUGIN_KIND_NAMES[kind]} "${id}" could not be created: ${(error as Error)?.message ?? String(error)}`,
          fix: "Check the plugin's options against its documentation.",
          cause: error,
          ...(where ? { details: { path: where } } : {}),
        });
      }
    },
  };
  for (const definition of definitions) registry.register(definition);
  return registry;
}
