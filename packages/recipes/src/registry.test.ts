import type { JsonObject, ScoreStrategy, SparsitySchedule } from '@fineprune/core';
import { FinepruneError } from '@fineprune/core';
import { describe, expect, it } from 'vitest';
import { createPluginRegistry, definePlugin, type PluginPackage } from './registry';
import { checkRecipePlugins, loadPluginPackage, resolvePlugins, shortenRecipe } from './resolve';
import { sampleRecipe } from './test-support';
import { validateRecipe } from './validate';

const scores = definePlugin({
  kind: 'scores',
  id: 'magnitude',
  create: (): ScoreStrategy => ({
    id: 'magnitude',
    learnable: false,
    compute: () => undefined as never,
    toConfig: () => ({}),
  }),
});
const mask = definePlugin({
  kind: 'mask',
  id: 'topV',
  create: (options: JsonObject) => ({
    id: 'topV',
    targetKind: 'sparsity' as const,
    compute: () => [],
    toConfig: () => ({ ...options }),
  }),
});
const schedule = definePlugin({
  kind: 'schedule',
  id: 'cubic',
  stepOptions: { totalSteps: 'steps', warmupSteps: 'steps', cooldownSteps: 'steps', interval: 'interval' },
  create: (options: JsonObject): SparsitySchedule => {
    if (typeof options.finalSparsity !== 'number' || options.finalSparsity >= 1) {
      throw new FinepruneError({
        code: 'INVALID_SPARSITY',
        message: 'cubic: finalSparsity must be in [0, 1).',
        fix: 'Use 0.9.',
      });
    }
    return { id: 'cubic', kind: 'sparsity', valueAt: () => 0, toConfig: () => ({ ...options }) };
  },
});
const threshold = definePlugin({
  kind: 'schedule',
  id: 'threshold',
  create: (): SparsitySchedule => ({
    id: 'threshold',
    kind: 'threshold',
    valueAt: () => 0,
    toConfig: () => ({}),
  }),
});

function caught(run: () => unknown): FinepruneError {
  try {
    run();
  } catch (error) {
    return error as FinepruneError;
  }
  throw new Error('expected an error');
}

async function caughtAsync(run: () => Promise<unknown>): Promise<FinepruneError> {
  try {
    await run();
  } catch (error) {
    return error as FinepruneError;
  }
  throw new Error('expected an error');
}

describe('plugin registry', () => {
  it('builds plugins by id and rejects duplicates', async () => {
    const registry = createPluginRegistry([scores, mask, schedule]);
    expect(registry.list().map((definition) => definition.id)).toEqual(['cubic', 'magnitude', 'topV']);
    const built = await registry.create('mask', 'topV', { scope: 'global' }, { seed: 0, totalSteps: 1 });
    expect(built.toConfig()).toEqual({ scope: 'global' });
    expect(caught(() => registry.register(scores)).message).toMatch(/already registered/);
    registry.register(scores, { replace: true });
  });

  it('reports unknown ids with their recipe path and a suggestion', () => {
    const registry = createPluginRegistry([scores, mask, schedule]);
    const recipe = validateRecipe(sampleRecipe());
    recipe.pruning[0]!.scores.id = 'magnitud';
    recipe.pruning[0]!.mask.id = 'cubic';
    const error = caught(() => checkRecipePlugins(recipe, registry, 'r.yaml'));
    expect(error.code).toBe('UNKNOWN_PLUGIN');
    const issues = error.details!.issues as Array<{ path: string; message: string; fix: string }>;
    expect(issues[0]).toMatchObject({ path: 'pruning[0].scores.id', fix: 'Did you mean "magnitude"?' });
    expect(issues[1]!.message).toMatch(/it is a schedule/);
  });

  it('prefixes factory errors with the recipe path and checks target kinds', async () => {
    const registry = createPluginRegistry([scores, mask, schedule, threshold]);
    const recipe = validateRecipe(sampleRecipe());
    recipe.pruning[0]!.schedule.options.finalSparsity = 1.5;
    const error = await caughtAsync(() => resolvePlugins(recipe, registry, { seed: 0, totalSteps: 100 }));
    expect(error.code).toBe('INVALID_SPARSITY');
    expect(error.message).toMatch(/pruning\[0\]\.schedule: cubic: finalSparsity/);
    const mismatch = validateRecipe(sampleRecipe());
    mismatch.pruning[0]!.schedule = { id: 'threshold', options: {} };
    const incompatible = await caughtAsync(() =>
      resolvePlugins(mismatch, registry, { seed: 0, totalSteps: 100 }),
    );
    expect(incompatible.code).toBe('INCOMPATIBLE_PLUGINS');
    const resolved = await resolvePlugins(validateRecipe(sampleRecipe()), registry, {
      seed: 0,
      totalSteps: 100,
    });
    expect(resolved.groups[0]).toMatchObject({ name: 'main' });
  });

  it('loads plugin packages by name through an importer, once', async () => {
    const registry = createPluginRegistry([scores, mask, schedule]);
    const fisher = definePlugin({
      kind: 'scores',
      id: 'acme/fisher',
      create: () => scores.create({}, { seed: 0, totalSteps: 1 }),
    });
    const modules: Record<string, unknown> = {
      'acme-fisher': { fineprunePlugins: { name: 'acme-fisher', plugins: [fisher] } satisfies PluginPackage },
      'acme-empty': { something: 1 },
    };
    let imports = 0;
    const importer = async (name: string) => {
      imports += 1;
      if (!(name in modules)) throw new Error(`Cannot find package '${name}'`);
      return modules[name];
    };
    expect(await loadPluginPackage(registry, 'acme-fisher', { importer })).toEqual(['scores:acme/fisher']);
    expect(await loadPluginPackage(registry, 'acme-fisher', { importer })).toEqual([]);
    expect(imports).toBe(1);
    expect(registry.get('scores', 'acme/fisher')?.package).toBe('acme-fisher');
    expect(
      (await caughtAsync(() => loadPluginPackage(registry, 'acme-empty', { importer }))).message,
    ).toMatch(/exports no plugin list/);
    const missing = await caughtAsync(() => loadPluginPackage(registry, 'acme-missing', { importer }));
    expect(missing.code).toBe('PLUGIN_PACKAGE_FAILED');
    expect(missing.fix).toMatch(/npm install acme-missing/);
    expect((await caughtAsync(() => loadPluginPackage(registry, '../etc/passwd', { importer }))).code).toBe(
      'PLUGIN_PACKAGE_FAILED',
    );
  });
});

describe('shortenRecipe', () => {
  it('scales the declared step options, evaluations and data limits', () => {
    const registry = createPluginRegistry([scores, mask, schedule]);
    const recipe = validateRecipe(sampleRecipe());
    const short = shortenRecipe(recipe, registry, { maxSteps: 10, trainLimit: 64, testLimit: 50 });
    expect(short.training.steps).toBe(10);
    expect(short.training.evaluateEvery).toBe(2);
    expect(short.pruning[0]!.schedule.options).toEqual({
      finalSparsity: 0.8,
      totalSteps: 10,
      warmupSteps: 2,
      cooldownSteps: 2,
      interval: 1,
    });
    expect(short.data).toMatchObject({ trainLimit: 64, testLimit: 50 });
    expect(recipe.training.steps).toBe(100);
    expect(() => validateRecipe(short)).not.toThrow();
  });
});
