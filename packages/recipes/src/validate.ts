import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { MAX_STRING_LENGTH, type Recipe, recipeSchema } from './schema';

/**
 * Deepest nesting accepted in a recipe (objects and arrays).
 *
 * @example
 * ```ts
 * validateRecipe(deeplyNested); // INVALID_RECIPE: nests deeper than MAX_DEPTH levels
 * ```
 */
export const MAX_DEPTH = 32;
/**
 * Most values (objects, arrays, scalars) accepted in one recipe.
 *
 * @example
 * ```ts
 * console.log(`a recipe holds at most ${MAX_NODES} values`);
 * ```
 */
export const MAX_NODES = 10_000;
/**
 * Longest array accepted anywhere in a recipe.
 *
 * @example
 * ```ts
 * console.log(`lists hold at most ${MAX_ARRAY_LENGTH} entries`);
 * ```
 */
export const MAX_ARRAY_LENGTH = 1000;
/**
 * Longest recipe text accepted, in characters.
 *
 * @example
 * ```ts
 * if (text.length > MAX_TEXT_LENGTH) console.warn('parseRecipe will refuse this text');
 * ```
 */
export const MAX_TEXT_LENGTH = 65_536;

/**
 * One problem found in a recipe: where (a path such as `pruning[0].schedule.options.totalSteps`),
 * what is wrong, and how to fix it.
 *
 * @example
 * ```ts
 * const issue: RecipeIssue = { path: 'training.steps', message: 'expected an integer ≥ 1, got -5', fix: 'Use a whole number of steps such as 1000.' };
 * ```
 */
export interface RecipeIssue {
  path: string;
  message: string;
  fix: string;
}

/**
 * Formats a path of keys and indices the way recipes are read: `pruning[0].schedule.options`.
 *
 * @example
 * ```ts
 * formatPath(['pruning', 0, 'mask', 'id']); // 'pruning[0].mask.id'
 * ```
 */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else {
      const name = String(key);
      out += /^[A-Za-z_$][\w$]*$/.test(name) ? (out ? `.${name}` : name) : `[${JSON.stringify(name)}]`;
    }
  }
  return out || '(recipe)';
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
  }
  return `${typeof value} ${String(value)}`;
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let value: unknown = root;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key as string];
  }
  return value;
}

/**
 * Builds a {@link FinepruneError} `INVALID_RECIPE` from issues: the message lists each issue with its
 * path, the fix is the first issue's fix; `details.issues` holds them all.
 *
 * @example
 * ```ts
 * throw recipeError([{ path: 'seed', message: 'expected an integer', fix: 'Use 0.' }], 'my.yaml');
 * ```
 */
export function recipeError(
  issues: RecipeIssue[],
  source?: string,
  code: FinepruneError['code'] = ErrorCodes.INVALID_RECIPE,
): FinepruneError {
  const where = source ? `${source}: ` : '';
  const clip = (text: string, length: number) => (text.length > length ? `${text.slice(0, length)}…` : text);
  issues = issues.map((issue) => ({
    path: clip(issue.path, 200),
    message: clip(issue.message, 300),
    fix: clip(issue.fix, 300),
  }));
  const shown = issues.slice(0, 8).map((issue) => `${issue.path}: ${issue.message}`);
  if (issues.length > 8) shown.push(`… and ${issues.length - 8} more`);
  return new FinepruneError({
    code,
    message: `${where}the recipe is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}): ${shown.join('; ')}.`,
    fix: issues[0]?.fix ?? 'Check the recipe against @fineprune/recipes/schema.json.',
    details: { issues: issues.map((issue) => ({ ...issue })), ...(source ? { source } : {}) },
  });
}

function issueFromZod(issue: z.core.$ZodIssue, input: unknown): RecipeIssue {
  const path = formatPath(issue.path);
  const received = describeValue(valueAt(input, issue.path));
  switch (issue.code) {
    case 'invalid_type': {
      if (valueAt(input, issue.path) === undefined) {
        return {
          path,
          message: `is required (${issue.expected})`,
          fix: `Add \`${path}\` (see @fineprune/recipes/schema.json for its form).`,
        };
      }
      return {
        path,
        message: `expected ${issue.expected === 'int' ? 'an integer' : issue.expected}, got ${received}`,
        fix: `Write \`${path}\` as ${issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`}.`,
      };
    }
    case 'too_small':
    case 'too_big': {
      const limit = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const inclusive = issue.inclusive !== false;
      const relation = issue.code === 'too_small' ? (inclusive ? '≥' : '>') : inclusive ? '≤' : '<';
      const what =
        issue.origin === 'string'
          ? 'a length'
          : issue.origin === 'array' || issue.origin === 'set'
            ? 'a count of entries'
            : 'a value';
      return {
        path,
        message: `needs ${what} ${relation} ${String(limit)}, got ${received}`,
        fix: `Change \`${path}\` to ${what} ${relation} ${String(limit)}.`,
      };
    }
    case 'invalid_value':
      return {
        path,
        message: `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}, got ${received}`,
        fix: `Use one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')} for \`${path}\`.`,
      };
    case 'unrecognized_keys': {
      const keys = issue.keys.slice(0, 5).map((key) => JSON.stringify(key.slice(0, 60)));
      return {
        path,
        message: `has unknown key${issue.keys.length === 1 ? '' : 's'} ${keys.join(', ')}${issue.keys.length > 5 ? ', …' : ''}`,
        fix: `Remove or rename them; plugin-specific settings go under \`options\` of a plugin reference.`,
      };
    }
    case 'invalid_union':
      if (issue.path.length === 1 && issue.path[0] === 'model') {
        return {
          path,
          message: `must be { builtin }, { path }, { huggingFace } or { module }, got ${received}`,
          fix: 'Give exactly one of `builtin: mlp-784-300-100-10`, `path: ./saved-model`, `huggingFace: ./bert-folder` or `module: ./build-model.mjs` (loss and fromLogits go with builtin, path and module).',
        };
      }
      return {
        path,
        message: `does not match any allowed form, got ${received}`,
        fix: `See the allowed forms of \`${path}\` in @fineprune/recipes/schema.json (a selector is a name or { pattern }).`,
      };
    case 'invalid_format':
      return {
        path,
        message: `has the wrong format, got ${received}`,
        fix:
          issue.format === 'regex' && path === 'model.builtin'
            ? 'Use a built-in model id such as `mlp-784-300-100-10`.'
            : issue.format === 'regex' && path === 'name'
              ? 'Use one folder name of letters, digits, `_`, `.` and `-` (not `.` or `..`), such as `mnist-90`.'
              : `Write \`${path}\` in the documented format (${issue.format}).`,
      };
    case 'custom': {
      const fix = (issue.params as { fix?: unknown } | undefined)?.fix;
      return { path, message: issue.message, fix: typeof fix === 'string' ? fix : `Correct \`${path}\`.` };
    }
    default:
      return { path, message: issue.message, fix: `Correct \`${path}\`.` };
  }
}

/** Rejects values nested too deeply, too many values, and too long strings, without recursion. */
function checkShape(input: unknown): RecipeIssue[] {
  const issues: RecipeIssue[] = [];
  const stack: Array<{ value: unknown; path: PropertyKey[] }> = [{ value: input, path: [] }];
  let nodes = 0;
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    nodes += 1;
    if (nodes > MAX_NODES) {
      issues.push({
        path: '(recipe)',
        message: `holds more than ${MAX_NODES} values`,
        fix: 'A recipe describes one run; move data out of it.',
      });
      break;
    }
    if (typeof value === 'string' && value.length > MAX_STRING_LENGTH) {
      issues.push({
        path: formatPath(path),
        message: `is a string of ${value.length} characters, longer than ${MAX_STRING_LENGTH}`,
        fix: 'Shorten it.',
      });
    } else if (typeof value === 'number' && !Number.isFinite(value)) {
      issues.push({
        path: formatPath(path),
        message: `is ${value}, not a finite number`,
        fix: 'Use a finite number.',
      });
    } else if (value !== null && typeof value === 'object') {
      if (path.length >= MAX_DEPTH) {
        issues.push({
          path: formatPath(path.slice(0, 6)) + (path.length > 6 ? '…' : ''),
          message: `nests deeper than ${MAX_DEPTH} levels`,
          fix: 'Flatten the value: recipe options are shallow JSON.',
        });
        continue;
      }
      if (Array.isArray(value)) {
        if (value.length > MAX_ARRAY_LENGTH) {
          issues.push({
            path: formatPath(path),
            message: `is an array of ${value.length} entries, more than ${MAX_ARRAY_LENGTH}`,
            fix: 'A recipe describes one run; keep data out of it.',
          });
          continue;
        }
        value.forEach((item, index) => {
          stack.push({ value: item, path: [...path, index] });
        });
      } else {
        const prototype = Object.getPrototypeOf(value);
        if (prototype !== Object.prototype && prototype !== null) {
          issues.push({
            path: formatPath(path),
            message: 'is not plain JSON data',
            fix: 'Use only objects, arrays, strings, numbers, booleans and null.',
          });
          continue;
        }
        const entries = Object.entries(value);
        if (entries.length > MAX_ARRAY_LENGTH) {
          issues.push({
            path: formatPath(path),
            message: `has ${entries.length} keys, more than ${MAX_ARRAY_LENGTH}`,
            fix: 'A recipe describes one run; keep data out of it.',
          });
          continue;
        }
        for (const [key, item] of entries) stack.push({ value: item, path: [...path, key] });
      }
    } else if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') {
      issues.push({
        path: formatPath(path),
        message: `is a ${typeof value}, not JSON data`,
        fix: 'Use only objects, arrays, strings, numbers, booleans and null.',
      });
    }
    if (issues.length >= 20) break;
  }
  return issues;
}

/**
 * Validates a recipe object (already parsed from JSON or YAML) and fills in defaults. Every problem
 * is reported with its path in the recipe, the cause and the fix, in one `INVALID_RECIPE` error.
 *
 * @param input - the parsed recipe
 * @param source - a name for messages, such as the file name
 * @returns the recipe with defaults
 * @throws FinepruneError `INVALID_RECIPE`
 *
 * @example
 * ```ts
 * const recipe = validateRecipe({ version: 1, model: { builtin: 'mlp-784-300-100-10' }, data: { dataset: 'mnist' },
 *   training: { steps: 1000, optimizer: { learningRate: 1e-3 } },
 *   pruning: [{ scores: { id: 'magnitude' }, mask: { id: 'topV' }, schedule: { id: 'constant', options: { sparsity: 0.5 } } }] });
 * ```
 */
export function validateRecipe(input: unknown, source?: string): Recipe {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw recipeError(
      [
        {
          path: '(recipe)',
          message: `must be an object, got ${describeValue(input)}`,
          fix: 'Start from an example under examples/recipes/ (version: 1, model, data, training, pruning).',
        },
      ],
      source,
    );
  }
  const shapeIssues = checkShape(input);
  if (shapeIssues.length > 0) throw recipeError(shapeIssues, source);
  const version = (input as Record<string, unknown>).version;
  if (version !== undefined && version !== 1) {
    throw recipeError(
      [
        {
          path: 'version',
          message: `is ${describeValue(version)}; this version of @fineprune/recipes reads version 1`,
          fix: 'Set `version: 1`, or use the @fineprune/recipes release that wrote the recipe.',
        },
      ],
      source,
    );
  }
  let result: ReturnType<typeof recipeSchema.safeParse>;
  try {
    result = recipeSchema.safeParse(input);
  } catch (error) {
    throw recipeError(
      [
        {
          path: '(recipe)',
          message: `cannot be validated: ${(error as Error).message}`,
          fix: 'Simplify the recipe.',
        },
      ],
      source,
    );
  }
  if (!result.success) {
    throw recipeError(
      result.error.issues.slice(0, 50).map((issue) => issueFromZod(issue, input)),
      source,
    );
  }
  const recipe = result.data;
  const issues: RecipeIssue[] = [];
  const checkPatterns = (list: unknown, path: PropertyKey[]) => {
    if (!Array.isArray(list)) return;
    list.forEach((selector, index) => {
      if (typeof selector === 'object' && selector !== null && 'pattern' in selector) {
        try {
          new RegExp(selector.pattern as string, (selector as { flags?: string }).flags ?? '');
        } catch (error) {
          issues.push({
            path: formatPath([...path, index, 'pattern']),
            message: `is not a valid regular expression (${(error as Error).message})`,
            fix: 'Escape special characters, e.g. `dense_\\d+/kernel`.',
          });
        }
      }
    });
  };
  for (const key of ['include', 'exclude', 'frozen'] as const)
    checkPatterns(recipe.parameters[key], ['parameters', key]);
  const names = new Set<string>();
  recipe.pruning.forEach((group, index) => {
    checkPatterns(group.include, ['pruning', index, 'include']);
    checkPatterns(group.exclude, ['pruning', index, 'exclude']);
    const name = group.name ?? (recipe.pruning.length === 1 ? 'default' : `group${index}`);
    if (names.has(name)) {
      issues.push({
        path: formatPath(['pruning', index, 'name']),
        message: `repeats the group name ${JSON.stringify(name)}`,
        fix: 'Give each pruning group a unique name.',
      });
    }
    names.add(name);
  });
  if (recipe.training.evaluateEvery > recipe.training.steps) {
    issues.push({
      path: 'training.evaluateEvery',
      message: `is ${recipe.training.evaluateEvery}, more than training.steps (${recipe.training.steps})`,
      fix: 'Evaluate at most every training.steps steps, or use 0 to evaluate only at the end.',
    });
  }
  issues.push(...shrinkIssues(recipe));
  if (issues.length > 0) throw recipeError(issues, source);
  return recipe;
}

/**
 * Rejects text that nests brackets or indentation far deeper than any recipe, before a parser
 * recurses into it. Returns the reason, or undefined when the text is fine.
 */
function textNesting(text: string): string | undefined {
  let depth = 0;
  let quote: string | undefined;
  let indentation = 0;
  let lineStart = true;
  for (let index = 0; index < text.length; index++) {
    const character = text[index]!;
    if (character === '\n') {
      lineStart = true;
      indentation = 0;
      continue;
    }
    if (lineStart) {
      if (character === ' ' || character === '-') {
        indentation += 1;
        if (indentation > 4 * MAX_DEPTH) return `is indented more than ${4 * MAX_DEPTH} columns`;
        continue;
      }
      lineStart = false;
    }
    if (quote) {
      if (character === '\\' && quote === '"') index += 1;
      else if (character === quote) quote = undefined;
    } else if (character === '"' || character === "'") {
      quote = character;
    } else if (character === '[' || character === '{') {
      depth += 1;
      if (depth > 2 * MAX_DEPTH) return `nests brackets deeper than ${2 * MAX_DEPTH} levels`;
    } else if (character === ']' || character === '}') {
      depth = Math.max(0, depth - 1);
    }
  }
  return undefined;
}

/** Longest line accepted in YAML text (JSON text, which YAML includes, may be one long line). */
const MAX_YAML_LINE = 2 * MAX_STRING_LENGTH;

/** JSON text through the fast JSON parser; other YAML text through {@link parseYamlSafely}. */
function parseYamlOrJson(text: string): unknown {
  if (/^\s*[{[]/.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // Not JSON: parse it as YAML below.
    }
  }
  let lineStart = 0;
  for (let line = 1; lineStart <= text.length; line++) {
    const end = text.indexOf('\n', lineStart);
    const length = (end === -1 ? text.length : end) - lineStart;
    if (length > MAX_YAML_LINE)
      throw new Error(`line ${line} has ${length} characters, more than ${MAX_YAML_LINE}`);
    if (end === -1) break;
    lineStart = end + 1;
  }
  return parseYamlSafely(text);
}

/** YAML to plain data, refusing aliases that refer to an enclosing anchor (cyclic data). */
function parseYamlSafely(text: string): unknown {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: false });
  if (document.errors.length > 0) throw document.errors[0];
  visit(document, {
    Alias(_key, node, path) {
      const target = node.resolve(document);
      if (target && path.includes(target as never))
        throw new Error(`the alias *${node.source} refers to its own anchor`);
    },
  });
  return document.toJS({ maxAliasCount: 100 });
}

/**
 * The text formats of a recipe.
 *
 * @example
 * ```ts
 * const format: RecipeFormat = file.endsWith('.json') ? 'json' : 'yaml';
 * ```
 */
export type RecipeFormat = 'json' | 'yaml';

/**
 * Parses recipe text (JSON or YAML; YAML is a superset, so `format` only changes error messages)
 * and validates it with {@link validateRecipe}.
 *
 * @param text - the recipe file's contents
 * @param options - `source` names the file in messages; `format` defaults from its extension, else YAML
 * @throws FinepruneError `INVALID_RECIPE` for syntax errors (with line and column) and invalid content
 *
 * @example
 * ```ts
 * const recipe = parseRecipe(await readFile('mnist.yaml', 'utf8'), { source: 'mnist.yaml' });
 * ```
 */
export function parseRecipe(text: string, options: { source?: string; format?: RecipeFormat } = {}): Recipe {
  const source = options.source;
  if (typeof text !== 'string') {
    throw recipeError(
      [
        {
          path: '(recipe)',
          message: `must be text, got ${describeValue(text)}`,
          fix: 'Pass the file contents.',
        },
      ],
      source,
    );
  }
  if (text.length > MAX_TEXT_LENGTH) {
    throw recipeError(
      [
        {
          path: '(recipe)',
          message: `is ${text.length} characters long, more than ${MAX_TEXT_LENGTH}`,
          fix: 'A recipe describes one run; keep data out of it.',
        },
      ],
      source,
    );
  }
  const format = options.format ?? (source && /\.json$/i.test(source) ? 'json' : 'yaml');
  const nesting = textNesting(text);
  if (nesting !== undefined) {
    throw recipeError(
      [{ path: '(recipe)', message: nesting, fix: 'Flatten the value: recipe options are shallow JSON.' }],
      source,
    );
  }
  let data: unknown;
  try {
    data = format === 'json' ? JSON.parse(text) : parseYamlOrJson(text);
  } catch (error) {
    const reason = error instanceof RangeError ? 'it nests too deeply' : (error as Error).message;
    throw recipeError(
      [
        {
          path: '(recipe)',
          message: `is not valid ${format.toUpperCase()}: ${String(reason).split('\n')[0]!.slice(0, 300)}`,
          fix: `Fix the ${format.toUpperCase()} syntax at the position shown.`,
        },
      ],
      source,
    );
  }
  return validateRecipe(data, source);
}

/** `export.shrink` needs an export, and for BERT the Hugging Face layout. */
function shrinkIssues(recipe: Recipe): RecipeIssue[] {
  if (!recipe.export.shrink) return [];
  if (!recipe.export.strip)
    return [
      {
        path: 'export.shrink',
        message: 'is true, but export.strip is false, so no model is exported to shrink',
        fix: 'Set export.strip: true, or drop export.shrink.',
      },
    ];
  if ('huggingFace' in recipe.model && recipe.export.format === 'sparse')
    return [
      {
        path: 'export.shrink',
        message:
          'writes a shrunk BERT model in the Hugging Face layout (per-layer sizes), which the sparse file cannot hold',
        fix: 'Use export.format: huggingface (or auto) with export.shrink, or drop export.shrink for the sparse file.',
      },
    ];
  return [];
}
