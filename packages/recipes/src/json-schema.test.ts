import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { recipeJsonSchema } from './json-schema';

describe('recipe JSON Schema', () => {
  it('is published as schema.json, up to date (regenerate with `pnpm --filter @fineprune/recipes schema`)', () => {
    const published = JSON.parse(readFileSync(new URL('../schema.json', import.meta.url), 'utf8'));
    expect(published).toEqual(recipeJsonSchema());
  });

  it('describes the sections with their descriptions for editor completion', () => {
    const schema = recipeJsonSchema() as {
      properties: Record<string, { description?: string }>;
      required: string[];
    };
    expect(schema.required).toEqual(
      expect.arrayContaining(['version', 'model', 'data', 'training', 'pruning']),
    );
    for (const key of [
      'model',
      'data',
      'training',
      'pruning',
      'lossTerms',
      'export',
      'checkpoint',
      'plugins',
    ]) {
      expect(schema.properties[key]?.description, key).toBeTruthy();
    }
  });
});
