import { nearestName } from './nearest-name';
import { formatPath, type RecipeIssue } from './validate';

/**
 * One option of a plugin, as its definition declares it: the JSON type, whether it is required,
 * bounds or allowed values, and (for numbers counted in optimizer steps) its unit, which
 * `shortenRecipe` uses to scale it.
 *
 * @example
 * ```ts
 * const interval: OptionSpec = { type: 'integer', minimum: 1, unit: 'interval', description: 'Δt, steps between mask updates' };
 * ```
 */
export interface OptionSpec {
  /**
   * `number`, `integer`, `string`, `boolean`; `object` (with `properties` checked the same way);
   * `selector` (a parameter name, `{ pattern, flags }`, or a list of them); `json` (anything).
   */
  readonly type: 'number' | 'integer' | 'string' | 'boolean' | 'object' | 'selector' | 'json';
  /** A recipe must give it (default `false`). */
  readonly required?: boolean;
  /** Numbers: the smallest allowed value. */
  readonly minimum?: number;
  /** Numbers: the largest allowed value. */
  readonly maximum?: number;
  /** Numbers: a bound the value must stay above. */
  readonly exclusiveMinimum?: number;
  /** Numbers: a bound the value must stay below. */
  readonly exclusiveMaximum?: number;
  /** The allowed values (strings or numbers). */
  readonly values?: readonly (string | number)[];
  /** Numbers counted in optimizer steps: `steps` (scaled) or `interval` (scaled, kept ≥ 1). */
  readonly unit?: 'steps' | 'interval';
  /** Objects: their own options. */
  readonly properties?: OptionsSchema;
  /** One line for `fineprune plugins` and messages. */
  readonly description?: string;
}

/**
 * The options a plugin accepts, by name. The registry refuses any other name (suggesting the
 * nearest declared one), a missing required option, a value of the wrong type, and numbers out of
 * bounds, before the plugin's factory runs. A `type` key is always allowed unless declared: it is
 * what `toConfig()` adds, so a plugin's config pastes into a recipe.
 *
 * @example
 * ```ts
 * const schema: OptionsSchema = {
 *   finalSparsity: { type: 'number', required: true, minimum: 0, exclusiveMaximum: 1 },
 *   totalSteps: { type: 'integer', required: true, minimum: 1, unit: 'steps' },
 * };
 * ```
 */
export type OptionsSchema = Readonly<Record<string, OptionSpec>>;

/** `where` followed by key `name`, written as {@link formatPath} writes paths. */
function childPath(where: string, name: string): string {
  const key = formatPath([name]);
  if (!where) return key;
  return key.startsWith('[') ? `${where}${key}` : `${where}.${key}`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length > 40 ? 'a long string' : JSON.stringify(value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function isSelector(value: unknown): boolean {
  const one = (entry: unknown) =>
    typeof entry === 'string' ||
    (entry !== null &&
      typeof entry === 'object' &&
      !Array.isArray(entry) &&
      typeof (entry as { pattern?: unknown }).pattern === 'string');
  return Array.isArray(value) ? value.every(one) : one(value);
}

/** The problems of one value against its spec (bounds and allowed values after the type). */
function valueProblem(spec: OptionSpec, value: unknown): string | undefined {
  switch (spec.type) {
    case 'json':
      return undefined;
    case 'selector':
      return isSelector(value) ? undefined : `must be a parameter name, { pattern } or a list of them`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value)
        ? undefined
        : 'must be an object';
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      break;
    default:
      if (typeof value !== 'number' || !Number.isFinite(value)) return 'must be a finite number';
      if (spec.type === 'integer' && !Number.isInteger(value)) return 'must be a whole number';
      if (spec.minimum !== undefined && value < spec.minimum) return `must be ≥ ${spec.minimum}`;
      if (spec.maximum !== undefined && value > spec.maximum) return `must be ≤ ${spec.maximum}`;
      if (spec.exclusiveMinimum !== undefined && value <= spec.exclusiveMinimum)
        return `must be > ${spec.exclusiveMinimum}`;
      if (spec.exclusiveMaximum !== undefined && value >= spec.exclusiveMaximum)
        return `must be < ${spec.exclusiveMaximum}`;
  }
  if (spec.values && !spec.values.includes(value as string | number))
    return `must be one of ${spec.values.map((allowed) => JSON.stringify(allowed)).join(', ')}`;
  return undefined;
}

/**
 * Checks plugin options against the schema its definition declares and lists every problem with
 * its recipe path: unknown names (with the nearest declared name), missing required options,
 * wrong types, numbers out of bounds, values not allowed; nested `object` options likewise.
 *
 * @param schema - the declared options
 * @param options - the options a recipe gives
 * @param where - the recipe path of the options, such as `pruning[0].schedule.options`
 * @param owner - the plugin, for messages (`schedule "cubic"`)
 *
 * @example
 * ```ts
 * optionIssues({ interval: { type: 'integer', minimum: 1 } }, { intervl: 10 }, 'pruning[0].schedule.options', 'schedule "cubic"');
 * // [{ path: 'pruning[0].schedule.options.intervl', message: 'schedule "cubic" has no option "intervl"', fix: 'Did you mean "interval"? …' }]
 * ```
 */
export function optionIssues(
  schema: OptionsSchema,
  options: Readonly<Record<string, unknown>>,
  where: string,
  owner: string,
): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  const names = Object.keys(schema);
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue; // as if absent (JSON and YAML cannot say undefined)
    const path = childPath(where, name);
    const spec = Object.hasOwn(schema, name) ? schema[name] : undefined;
    if (!spec) {
      if (name === 'type') continue;
      const close = nearestName(name, names);
      const shown = name.length > 60 ? `${name.slice(0, 60)}…` : name;
      issues.push({
        path,
        message: `${owner} has no option ${JSON.stringify(shown)}`,
        fix: `${close ? `Did you mean ${JSON.stringify(close)}? ` : ''}Its options are: ${names.length ? names.join(', ') : 'none'}.`,
      });
      continue;
    }
    const problem = valueProblem(spec, value);
    if (problem) {
      issues.push({
        path,
        message: `${problem}, got ${describe(value)}`,
        fix: `Change \`${path}\`${spec.description ? ` (${spec.description})` : ''}.`,
      });
    } else if (spec.type === 'object' && spec.properties) {
      issues.push(...optionIssues(spec.properties, value as Record<string, unknown>, path, owner));
    }
  }
  for (const [name, spec] of Object.entries(schema)) {
    if (spec.required && (!Object.hasOwn(options, name) || options[name] === undefined)) {
      const path = childPath(where, name);
      issues.push({
        path,
        message: `${owner} needs option ${JSON.stringify(name)}`,
        fix: `Add \`${path}\`${spec.description ? ` (${spec.description})` : ''}.`,
      });
    }
  }
  return issues;
}
