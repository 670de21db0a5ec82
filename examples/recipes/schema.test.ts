import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRecipe, RECIPE_SCHEMA_ID } from '@fineprune/recipes';
import { describe, expect, it } from 'vitest';

const DIRECTORY = path.dirname(fileURLToPath(import.meta.url));
const recipes = readdirSync(DIRECTORY).filter((file) => /\.ya?ml$/.test(file));
const RECIPES_PACKAGE = path.dirname(
  createRequire(import.meta.url).resolve('@fineprune/recipes/package.json'),
);

describe('the example recipes name their schema so that a copy keeps it', () => {
  it.each(recipes)('%s: $schema is the published schema address, and the recipe parses', (file) => {
    const text = readFileSync(path.join(DIRECTORY, file), 'utf8');
    const recipe = parseRecipe(text, { source: file });
    expect(recipe.$schema).toBe(RECIPE_SCHEMA_ID);
    expect(new URL(RECIPE_SCHEMA_ID).protocol).toBe('https:'); // absolute: resolves wherever the file is copied
  });

  it('@fineprune/recipes ships that schema: in its tarball, as an export, with that $id', () => {
    const manifest = JSON.parse(readFileSync(path.join(RECIPES_PACKAGE, 'package.json'), 'utf8'));
    expect(manifest.exports['./schema.json']).toBe('./schema.json');
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: RECIPES_PACKAGE,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as Array<{ files: Array<{ path: string }> }>;
    expect(packed[0]!.files.map((file) => file.path)).toContain('schema.json');
    const schema = JSON.parse(readFileSync(path.join(RECIPES_PACKAGE, 'schema.json'), 'utf8'));
    expect(schema.$id).toBe(RECIPE_SCHEMA_ID);
  });
});
