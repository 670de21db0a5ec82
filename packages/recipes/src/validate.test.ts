import { describe, expect, it } from 'vitest';
import { FinepruneError } from '@fineprune/core';
import { stringify } from 'yaml';
import { fromConfig, stringifyRecipe, toConfig } from './config';
import { sampleRecipe } from './test-support';
import { parseRecipe, type RecipeIssue, validateRecipe } from './validate';

function issuesOf(run: () => unknown): RecipeIssue[] {
  try {
    run();
  } catch (error) {
    expect(FinepruneError.is(error)).toBe(true);
    expect((error as FinepruneError).code).toBe('INVALID_RECIPE');
    return (error as FinepruneError).details!.issues as RecipeIssue[];
  }
  throw new Error('expected an INVALID_RECIPE error');
}

describe('validateRecipe', () => {
  it('fills in defaults', () => {
    const recipe = validateRecipe(sampleRecipe());
    expect(recipe.plugins).toEqual([]);
    expect(recipe.lossTerms).toEqual([]);
    expect(recipe.pruning[0]!.scores.options).toEqual({});
    expect(recipe.export).toEqual({ strip: true, format: 'auto', dtype: 'F32', shrink: false, report: true });
    expect(recipe.checkpoint).toEqual({ every: 0 });
    expect('loss' in recipe.model && recipe.model.loss).toBe('sparseCategoricalCrossentropy');
    expect(recipe.training.gradientAccumulation).toBe(1);
    expect(recipe.training.metrics).toEqual(['accuracy']);
  });

  it('accepts export.shrink and refuses it without an export or for a sparse BERT export', () => {
    expect(validateRecipe({ ...sampleRecipe(), export: { shrink: true } }).export.shrink).toBe(true);
    const noExport = issuesOf(() =>
      validateRecipe({ ...sampleRecipe(), export: { shrink: true, strip: false } }),
    );
    expect(noExport.map((issue) => issue.path)).toEqual(['export.shrink']);
    expect(noExport[0]!.fix).toMatch(/strip: true/);
    const bert = issuesOf(() =>
      validateRecipe({
        ...sampleRecipe(),
        model: { huggingFace: './bert' },
        export: { shrink: true, format: 'sparse' },
      }),
    );
    expect(bert.map((issue) => issue.path)).toEqual(['export.shrink']);
    expect(bert[0]!.message).toMatch(/Hugging Face layout/);
  });

  it('reports the path, the cause and the fix of each problem', () => {
    const input = sampleRecipe() as Record<string, any>;
    input.training.steps = -5;
    input.pruning[0].mask = { id: 'topV', option: {} };
    input.data.dataset = 'cifar';
    input.seed = 'seven';
    const issues = issuesOf(() => validateRecipe(input, 'bad.yaml'));
    const byPath = Object.fromEntries(issues.map((issue) => [issue.path, issue]));
    expect(byPath['training.steps']!.message).toMatch(/≥ 1, got number -5/);
    expect(byPath['training.steps']!.fix).toMatch(/training\.steps/);
    expect(byPath['pruning[0].mask']!.message).toMatch(/unknown key "option"/);
    expect(byPath['data.dataset']!.message).toMatch(
      /"mnist", "fashion-mnist", "brown-genre", "spam-assassin", got "cifar"/,
    );
    expect(byPath.seed!.message).toMatch(/expected number, got "seven"/);
  });

  it('names missing fields and explains the model forms', () => {
    const input = sampleRecipe() as Record<string, any>;
    delete input.training;
    input.model = { builtin: 'resnet' };
    const issues = issuesOf(() => validateRecipe(input));
    expect(issues.find((issue) => issue.path === 'training')!.message).toMatch(/is required/);
    expect(issues.find((issue) => issue.path === 'model.builtin')!.fix).toMatch(/mlp-784-300-100-10/);
    const other = sampleRecipe() as Record<string, any>;
    other.model = { weights: './x' };
    expect(issuesOf(() => validateRecipe(other))[0]!.fix).toMatch(/builtin.*path.*module/);
  });

  it('rejects bad patterns, duplicate group names, unsupported versions and deep nesting', () => {
    const input = sampleRecipe() as Record<string, any>;
    input.parameters = { include: [{ pattern: '(' }] };
    input.pruning.push(structuredClone(input.pruning[0]));
    const issues = issuesOf(() => validateRecipe(input));
    expect(issues.map((issue) => issue.path)).toEqual(['parameters.include[0].pattern', 'pruning[1].name']);
    expect(issuesOf(() => validateRecipe({ ...sampleRecipe(), version: 2 }))[0]!.message).toMatch(
      /reads version 1/,
    );
    let deep: unknown = 1;
    for (let level = 0; level < 10_000; level++) deep = { a: deep };
    const nested = sampleRecipe() as Record<string, any>;
    nested.pruning[0].scores.options = { deep };
    expect(issuesOf(() => validateRecipe(nested))[0]!.message).toMatch(/nests deeper than 32/);
  });

  it('parses YAML and JSON, with syntax errors as INVALID_RECIPE', () => {
    const recipe = parseRecipe(stringify(sampleRecipe()), { source: 'a.yaml' });
    expect(parseRecipe(JSON.stringify(sampleRecipe()), { source: 'a.json' })).toEqual(recipe);
    expect(issuesOf(() => parseRecipe('version: 1\n  model: [', { source: 'x.yaml' }))[0]!.message).toMatch(
      /not valid YAML/,
    );
    expect(issuesOf(() => parseRecipe('{"version": 1,', { source: 'x.json' }))[0]!.message).toMatch(
      /not valid JSON/,
    );
    expect(issuesOf(() => parseRecipe('[1, 2]'))[0]!.message).toMatch(/must be an object/);
    expect(issuesOf(() => parseRecipe('a: &a [1, *a]'))[0]!.message).toMatch(/refers to its own anchor/);
    expect(issuesOf(() => parseRecipe(`a: ${'['.repeat(100)}`))[0]!.message).toMatch(/nests brackets deeper/);
    expect(issuesOf(() => parseRecipe(`a: b\nc: ${'x'.repeat(9000)} [`))[0]!.message).toMatch(
      /line 2 has 9005 characters/,
    );
    const anchors = stringify(sampleRecipe()).replace('optimizer:', 'optimizer: &opt').concat('\n');
    expect(parseRecipe(anchors).training.optimizer.learningRate).toBe(0.001);
  });
});

describe('toConfig / fromConfig', () => {
  it('round-trips through JSON and YAML text', () => {
    const recipe = validateRecipe(sampleRecipe());
    expect(fromConfig(toConfig(recipe))).toEqual(recipe);
    expect(parseRecipe(stringifyRecipe(recipe, 'yaml'))).toEqual(recipe);
    expect(parseRecipe(stringifyRecipe(recipe, 'json'), { format: 'json' })).toEqual(recipe);
    expect(toConfig(fromConfig(toConfig(recipe)))).toEqual(toConfig(recipe));
  });
});
