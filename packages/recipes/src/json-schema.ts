import { z } from 'zod';
import { recipeSchema } from './schema';

/**
 * Where the published schema lives, for a recipe's `$schema` field.
 *
 * @example
 * ```ts
 * const recipe = { $schema: RECIPE_SCHEMA_ID, version: 1, ... };
 * ```
 */
export const RECIPE_SCHEMA_ID = 'https://unpkg.com/@fineprune/recipes/schema.json';

/**
 * The JSON Schema (draft 2020-12) of recipes, for editor completion and validation elsewhere. The
 * same document ships as `@fineprune/recipes/schema.json`.
 *
 * @example
 * ```ts
 * await writeFile('recipe.schema.json', JSON.stringify(recipeJsonSchema(), null, 2));
 * ```
 */
export function recipeJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(recipeSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return { ...schema, $id: RECIPE_SCHEMA_ID, title: 'fineprune recipe' };
}
