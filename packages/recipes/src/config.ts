import type { JsonObject } from '@fineprune/core';
import { stringify as stringifyYaml } from 'yaml';
import type { Recipe } from './schema';
import { type RecipeFormat, validateRecipe } from './validate';

function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = plain(item);
    return out;
  }
  return value;
}

/**
 * A recipe as plain JSON data with every default written out, so that
 * `fromConfig(toConfig(recipe))` equals `recipe`.
 *
 * @example
 * ```ts
 * const json = JSON.stringify(toConfig(recipe), null, 2);
 * ```
 */
export function toConfig(recipe: Recipe): JsonObject {
  return plain(recipe) as JsonObject;
}

/**
 * Rebuilds (and validates) a recipe from {@link toConfig}'s output or any recipe object.
 *
 * @throws FinepruneError `INVALID_RECIPE`
 *
 * @example
 * ```ts
 * const copy = fromConfig(toConfig(recipe));
 * ```
 */
export function fromConfig(config: JsonObject | unknown): Recipe {
  return validateRecipe(config);
}

/**
 * Writes a recipe as JSON or YAML text that {@link parseRecipe} reads back.
 *
 * @example
 * ```ts
 * await writeFile('run.yaml', stringifyRecipe(recipe, 'yaml'));
 * ```
 */
export function stringifyRecipe(recipe: Recipe, format: RecipeFormat = 'yaml'): string {
  const config = toConfig(recipe);
  return format === 'json' ? `${JSON.stringify(config, null, 2)}\n` : stringifyYaml(config, { lineWidth: 0 });
}
