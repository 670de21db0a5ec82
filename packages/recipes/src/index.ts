/**
 * `@fineprune/recipes`: the recipe format (JSON and YAML, version 1), its JSON Schema
 * (`@fineprune/recipes/schema.json`), validation with paths and fixes, `toConfig`/`fromConfig`, and
 * the plugin registry that turns plugin ids into plugin objects.
 *
 * @packageDocumentation
 */
export {
  type PluginReference,
  type Recipe,
  type RecipeInput,
  type RecipeData,
  type RecipeImageData,
  type RecipeLearningRateSchedule,
  type RecipeModel,
  type RecipeOptimizer,
  type RecipeTextData,
  type RecipeTokenizer,
  type RecipePruningGroup,
  type RecipeSelector,
  MAX_STRING_LENGTH,
  RECIPE_VERSION,
  RUN_NAME,
  recipeSchema,
} from './schema';
export { BUILTIN_DATASETS } from './schema-data';
export {
  formatPath,
  MAX_DEPTH,
  MAX_ARRAY_LENGTH,
  MAX_NODES,
  MAX_TEXT_LENGTH,
  parseRecipe,
  type RecipeFormat,
  type RecipeIssue,
  recipeError,
  validateRecipe,
} from './validate';
export { fromConfig, stringifyRecipe, toConfig } from './config';
export { RECIPE_SCHEMA_ID, recipeJsonSchema } from './json-schema';
export {
  createPluginRegistry,
  definePlugin,
  PLUGIN_KIND_NAMES,
  type PluginDefinition,
  type PluginEnvironment,
  type PluginKind,
  type PluginKindMap,
  type PluginPackage,
  type PluginRegistry,
  pluginOptionIssues,
  stepUnits,
  unknownPluginError,
} from './registry';
export { nearestName } from './nearest-name';
export { type OptionSpec, type OptionsSchema, optionIssues } from './options';
export {
  checkRecipe,
  SCHEDULE_END_TOLERANCE,
  scheduleLengthIssues,
  trainingIssues,
  warmupStepsOf,
} from './check';
export {
  checkGroupComposition,
  checkRecipePlugins,
  DEFAULT_PLUGIN_IMPORT_TIMEOUT_MS,
  defaultImporter,
  loadPluginPackage,
  type PackageImporter,
  pluginReferences,
  type ResolvedPlugins,
  resolvePlugins,
  type ShortenOptions,
  shortenRecipe,
  toParameterSelector,
} from './resolve';
