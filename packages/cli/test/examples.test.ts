import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseRecipe } from '@fineprune/recipes';
import { readFile } from 'node:fs/promises';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { fileSystem } from '@fineprune/layers';
import { builtinRegistry } from '../src/builtins';
import { runRecipe } from '../src/run-recipe';
import { loadPluginPackage, shortenRecipe } from '@fineprune/recipes';
import { dataset, RECIPES_DIRECTORY, temporaryDirectory } from './support';

const recipes = readdirSync(RECIPES_DIRECTORY).filter(
  (file) => /\.(ya?ml|json)$/.test(file) && file !== 'package.json',
);

// Every recipe under examples/recipes runs on a shortened schedule (12 steps, 300 training and 200
// test examples), as CI does; the full schedules are what the recipes describe.
describe('example recipes', () => {
  it('has one recipe per method', () => {
    expect(recipes.length).toBeGreaterThanOrEqual(2);
  });

  it.each(recipes)(
    '%s runs shortened and writes a loadable model, run.json and report.html',
    async (file) => {
      const text = await readFile(path.join(RECIPES_DIRECTORY, file), 'utf8');
      const parsed = parseRecipe(text, { source: file });
      const registry = builtinRegistry();
      const importer = (name: string) => import(/* @vite-ignore */ name);
      for (const name of parsed.plugins)
        await loadPluginPackage(registry, name, { from: RECIPES_DIRECTORY, importer });
      const recipe = shortenRecipe(parsed, registry, { maxSteps: 12, trainLimit: 300, testLimit: 200 });
      const outputDirectory = temporaryDirectory();
      const outcome = await runRecipe({
        recipe,
        baseDirectory: RECIPES_DIRECTORY,
        source: file,
        registry,
        outputDirectory,
        dataset: await dataset(recipe.data.dataset),
      });
      expect(outcome.status).toBe('completed');
      expect(outcome.record!.steps).toBe(12);
      expect(outcome.record!.layers.length).toBeGreaterThan(0);
      expect(Number.isFinite(outcome.record!.final.accuracy)).toBe(true);
      for (const name of ['run.json', 'report.html', 'model/model.json', 'checkpoint/model.json']) {
        expect(existsSync(path.join(outputDirectory, name)), name).toBe(true);
      }
      const stripped = await tfl.loadLayersModel(fileSystem(path.join(outputDirectory, 'model')));
      expect(stripped.inputs[0]!.shape).toEqual([null, 784]);
      stripped.dispose();
    },
  );
});
