import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parseRecipe } from '@fineprune/recipes';
import { readFile } from 'node:fs/promises';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { fileSystem } from '@fineprune/layers';
import { builtinRegistry } from '../src/builtins';
import { runRecipe } from '../src/run-recipe';
import { loadPluginPackage, type Recipe, shortenRecipe } from '@fineprune/recipes';
import { dataset, RECIPES_DIRECTORY, temporaryDirectory } from './support';

const recipes = readdirSync(RECIPES_DIRECTORY).filter(
  (file) => /\.(ya?ml|json)$/.test(file) && file !== 'package.json',
);

/**
 * The methods the example recipes show (the table of examples/recipes/README.md), each as
 * `scores + mask(scope) + schedule; loss terms`. A new recipe is a new row here and in the README.
 */
const METHODS: Record<string, string> = {
  'gradual-magnitude.yaml': 'magnitude + topV(global) + cubic',
  'movement-local.yaml': 'movement + topV(local) + cubic',
  'movement-global.yaml': 'movement + topV(global) + cubic',
  'soft-movement.yaml': 'movement + threshold + cubicThreshold; sigmoidPenalty',
  'l0.yaml': 'l0 + hardConcrete + noTarget; l0Penalty',
  'staged-criteria.yaml': 'lm + topV(global) + stages',
  'snip-plugin.yaml': 'community/snip + topV(global) + cubic',
  'dense-teacher.yaml': 'magnitude + topV + constant',
  'movement-distillation.yaml': 'movement + topV(local) + cubic; distillation',
  'block-movement.yaml': 'blockMovement + block(local) + cubic',
  'neuron-movement.yaml': 'unitMovement + unitTopV(local) + cubic',
};

/** A recipe's plugins in the form of {@link METHODS}. */
function composition(recipe: Recipe): string {
  const groups = recipe.pruning.map(({ scores, mask, schedule }) => {
    const scope = typeof mask.options.scope === 'string' ? `(${mask.options.scope})` : '';
    return `${scores.id} + ${mask.id}${scope} + ${schedule.id}`;
  });
  const terms = recipe.lossTerms.map((term) => term.id);
  return [groups.join(' / '), ...(terms.length > 0 ? [terms.join(', ')] : [])].join('; ');
}

const SHORT = { maxSteps: 12, trainLimit: 300, testLimit: 200 };
const savedModels = new Map<string, Promise<string>>();

/**
 * A recipe may read the model another recipe writes, as `./out/<name>/model` (the distillation
 * teacher of movement-distillation.yaml comes from dense-teacher.yaml). When that model is not on
 * disk, `<name>.yaml` runs first, shortened like every recipe here, into a temporary directory, and
 * the option points there.
 */
async function withSavedModels(recipe: Recipe): Promise<Recipe> {
  for (const term of recipe.lossTerms) {
    const teacher = term.options.teacher;
    const match = typeof teacher === 'string' ? /^\.\/out\/([\w-]+)\/model\/?$/.exec(teacher) : null;
    if (!match || existsSync(path.join(RECIPES_DIRECTORY, teacher as string, 'model.json'))) continue;
    const name = match[1]!;
    if (!savedModels.has(name)) {
      savedModels.set(
        name,
        (async () => {
          const text = await readFile(path.join(RECIPES_DIRECTORY, `${name}.yaml`), 'utf8');
          const registry = builtinRegistry();
          const source = shortenRecipe(parseRecipe(text, { source: `${name}.yaml` }), registry, SHORT);
          const outputDirectory = temporaryDirectory();
          await runRecipe({
            recipe: source,
            baseDirectory: RECIPES_DIRECTORY,
            registry,
            outputDirectory,
            dataset: await dataset(source.data.dataset as 'mnist' | 'fashion-mnist'),
          });
          return path.join(outputDirectory, 'model');
        })(),
      );
    }
    term.options.teacher = await savedModels.get(name)!;
  }
  return recipe;
}

// Every recipe under examples/recipes runs on a shortened schedule (12 steps, 300 training and 200
// test examples), as CI does; the full schedules are what the recipes describe.
describe('example recipes', () => {
  it('has one recipe per method: exactly the methods of the README table, each composed as it says', async () => {
    const found: Record<string, string> = {};
    for (const file of recipes) {
      const recipe = parseRecipe(await readFile(path.join(RECIPES_DIRECTORY, file), 'utf8'), {
        source: file,
      });
      found[file] = composition(recipe);
    }
    expect(found).toEqual(METHODS);
    expect(new Set(Object.values(found)).size, 'two recipes share a composition').toBe(recipes.length);
    const readme = await readFile(path.join(RECIPES_DIRECTORY, 'README.md'), 'utf8');
    const listed = [...readme.matchAll(/^\| \[`([\w-]+\.ya?ml)`\]/gm)].map((match) => match[1]);
    expect(listed.sort()).toEqual(Object.keys(METHODS).sort());
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
      const recipe = await withSavedModels(shortenRecipe(parsed, registry, SHORT));
      const outputDirectory = temporaryDirectory();
      const outcome = await runRecipe({
        recipe,
        baseDirectory: RECIPES_DIRECTORY,
        source: file,
        registry,
        outputDirectory,
        dataset: await dataset(recipe.data.dataset as 'mnist' | 'fashion-mnist'),
      });
      expect(outcome.status).toBe('completed');
      expect(outcome.record!.steps).toBe(12);
      // Every recipe prunes the three kernels of the 784-300-100-10 MLP.
      expect(outcome.record!.layers.map((row) => row.total)).toEqual([784 * 300, 300 * 100, 100 * 10]);
      expect(Number.isFinite(outcome.record!.final.accuracy)).toBe(true);
      for (const name of ['run.json', 'report.html', 'model/model.json', 'checkpoint/model.json']) {
        expect(existsSync(path.join(outputDirectory, name)), name).toBe(true);
      }
      const stripped = await tfl.loadLayersModel(fileSystem(path.join(outputDirectory, 'model')));
      expect(stripped.inputs[0]!.shape).toEqual([null, 784]);
      const units = stripped.layers.map((layer) => layer.getConfig().units as number);
      if (recipe.export.shrink) {
        // The shrunk export holds exactly the hidden neurons the run kept, fewer than 300 and 100.
        const kept = outcome.record!.shrink!.structures.map((row) => row.kept);
        expect(units).toEqual([...kept, 10]);
        expect(kept[0]!).toBeLessThan(300);
        expect(kept[1]!).toBeLessThan(100);
      } else expect(units).toEqual([300, 100, 10]);
      stripped.dispose();
    },
  );
});
