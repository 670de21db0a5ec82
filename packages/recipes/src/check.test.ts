import { ErrorCodes, FinepruneError, type JsonObject, type SparsitySchedule } from '@fineprune/core';
import { describe, expect, it } from 'vitest';
import { checkRecipe, scheduleLengthIssues } from './check';
import { nearestName } from './nearest-name';
import { optionIssues } from './options';
import { createPluginRegistry, definePlugin, type PluginEnvironment } from './registry';
import { checkRecipePlugins, loadPluginPackage, shortenRecipe } from './resolve';
import { sampleRecipe } from './test-support';
import { validateRecipe } from './validate';

/** A cubic-shaped schedule (Eq. 5 of Movement Pruning) declared with an options schema. */
const cubic = definePlugin({
  kind: 'schedule',
  id: 'cubic',
  options: {
    initialSparsity: { type: 'number' },
    finalSparsity: { type: 'number', required: true },
    totalSteps: { type: 'integer', required: true, unit: 'steps' },
    warmupSteps: { type: 'integer', unit: 'steps' },
    cooldownSteps: { type: 'integer', unit: 'steps' },
    interval: { type: 'integer', unit: 'interval' },
  },
  create: (options: JsonObject): SparsitySchedule => {
    const { finalSparsity, totalSteps } = options as { finalSparsity: number; totalSteps: number };
    const warmup = (options.warmupSteps as number | undefined) ?? 0;
    const cooldown = (options.cooldownSteps as number | undefined) ?? 0;
    const interval = (options.interval as number | undefined) ?? 1;
    if (!(finalSparsity >= 0 && finalSparsity < 1))
      throw new FinepruneError({
        code: ErrorCodes.INVALID_SPARSITY,
        message: `cubic: finalSparsity must be in [0, 1), got ${finalSparsity}.`,
        fix: 'Use 0.9.',
      });
    if (!(interval >= 1))
      throw new FinepruneError({
        code: ErrorCodes.INVALID_SCHEDULE,
        message: `cubic: interval must be an integer ≥ 1, got ${interval}.`,
        fix: 'Use 1.',
      });
    const span = totalSteps - warmup - cooldown;
    return {
      id: 'cubic',
      kind: 'sparsity',
      valueAt(step) {
        if (step < warmup) return 0;
        if (step >= totalSteps - cooldown) return finalSparsity;
        const pruningStep = warmup + Math.floor((step - warmup) / interval) * interval;
        return finalSparsity - finalSparsity * (1 - (pruningStep - warmup) / span) ** 3;
      },
      toConfig: () => ({ ...options }),
    };
  },
});
const environments: PluginEnvironment[] = [];
const magnitude = definePlugin({
  kind: 'scores',
  id: 'magnitude',
  options: {},
  create: (_options, environment) => {
    environments.push(environment);
    return { id: 'magnitude', learnable: false, compute: () => undefined as never, toConfig: () => ({}) };
  },
});
const topV = definePlugin({
  kind: 'mask',
  id: 'topV',
  options: {
    scope: { type: 'string', values: ['local', 'global'] },
    parameters: { type: 'selector' },
    init: { type: 'object', properties: { scale: { type: 'number' } } },
  },
  create: (options: JsonObject) => ({
    id: 'topV',
    targetKind: 'sparsity' as const,
    compute: () => [],
    toConfig: () => ({ ...options }),
  }),
});

function registry() {
  return createPluginRegistry([magnitude, topV, cubic]);
}

async function failure(run: () => unknown): Promise<FinepruneError> {
  try {
    await run();
  } catch (error) {
    expect(FinepruneError.is(error), String(error)).toBe(true);
    return error as FinepruneError;
  }
  throw new Error('expected a FinepruneError');
}

function issuePaths(error: FinepruneError): string[] {
  return (error.details!.issues as Array<{ path: string }>).map((issue) => issue.path);
}

describe('plugin options schemas', () => {
  it('suggests the nearest declared name for a misspelled option', () => {
    expect(nearestName('intervl', ['totalSteps', 'interval', 'warmupSteps'])).toBe('interval');
    expect(nearestName('finalSparsty', ['initialSparsity', 'finalSparsity'])).toBe('finalSparsity');
    expect(nearestName('FinalSparsity', ['finalSparsity'])).toBe('finalSparsity');
    expect(nearestName('learningRate', ['finalSparsity', 'interval'])).toBeUndefined();
  });

  it('rejects unknown, missing, mistyped and out-of-range options, nested ones too, with their paths', () => {
    const issues = optionIssues(
      {
        ...cubic.options!,
        scope: { type: 'string', values: ['local', 'global'] },
        ratio: { type: 'number', minimum: 0, exclusiveMaximum: 1 },
        init: { type: 'object', properties: { scale: { type: 'number', exclusiveMinimum: 0 } } },
      },
      {
        finalSparsty: 0.5,
        totalSteps: 10.5,
        intervl: 3,
        scope: 'globl',
        ratio: 1,
        init: { scale: 0, sacle: 1 },
        type: 'cubic',
      },
      'pruning[0].schedule.options',
      'schedule "cubic"',
    );
    expect(issues.map((issue) => [issue.path, issue.message])).toEqual([
      ['pruning[0].schedule.options.finalSparsty', 'schedule "cubic" has no option "finalSparsty"'],
      ['pruning[0].schedule.options.totalSteps', 'must be a whole number, got number 10.5'],
      ['pruning[0].schedule.options.intervl', 'schedule "cubic" has no option "intervl"'],
      ['pruning[0].schedule.options.scope', 'must be one of "local", "global", got "globl"'],
      ['pruning[0].schedule.options.ratio', 'must be < 1, got number 1'],
      ['pruning[0].schedule.options.init.scale', 'must be > 0, got number 0'],
      ['pruning[0].schedule.options.init.sacle', 'schedule "cubic" has no option "sacle"'],
      ['pruning[0].schedule.options.finalSparsity', 'schedule "cubic" needs option "finalSparsity"'],
    ]);
    expect(issues[0]!.fix).toMatch(/^Did you mean "finalSparsity"\? Its options are: initialSparsity, /);
    expect(issues[2]!.fix).toMatch(/^Did you mean "interval"\?/);
    expect(issues[6]!.fix).toMatch(/^Did you mean "scale"\?/);
  });

  it('makes the registry refuse bad options before the factory runs, for library users too', async () => {
    environments.length = 0;
    const error = await failure(() =>
      registry().create(
        'scores',
        'magnitude',
        { scpoe: 'global' },
        { seed: 0, totalSteps: 1 },
        'pruning[0].scores',
      ),
    );
    expect(error.code).toBe('INVALID_RECIPE');
    expect(issuePaths(error)).toEqual(['pruning[0].scores.options.scpoe']);
    expect(environments).toEqual([]);
    // a definition without a schema takes any option, as before
    const open = createPluginRegistry([{ ...magnitude, options: undefined }]);
    await open.create('scores', 'magnitude', { anything: 1 }, { seed: 0, totalSteps: 1 });
    expect(environments).toHaveLength(1);
  });

  it('reports every option problem of a recipe at once in checkRecipePlugins, the way validate sees them', async () => {
    const recipe = validateRecipe(sampleRecipe());
    recipe.pruning[0]!.schedule.options = { finalSparsty: 0.5, totalSteps: 100, intervl: 10 };
    recipe.pruning[0]!.mask.options = { scope: 'global', parameters: [{ pattern: 'dense' }, 'dense_2'] };
    const error = await failure(() => checkRecipePlugins(recipe, registry(), 'r.yaml'));
    expect(error.code).toBe('INVALID_RECIPE');
    expect(error.message).toMatch(/^\[INVALID_RECIPE\] r\.yaml: the recipe is invalid \(3 problems\)/);
    expect(issuePaths(error)).toEqual([
      'pruning[0].schedule.options.finalSparsty',
      'pruning[0].schedule.options.intervl',
      'pruning[0].schedule.options.finalSparsity',
    ]);
    expect(error.fix).toMatch(/Did you mean "finalSparsity"/);
  });

  it('scales the options a schema declares in steps when a recipe is shortened', () => {
    const recipe = validateRecipe(sampleRecipe());
    const short = shortenRecipe(recipe, registry(), { maxSteps: 10 });
    expect(short.pruning[0]!.schedule.options).toEqual({
      finalSparsity: 0.8,
      totalSteps: 10,
      warmupSteps: 2,
      cooldownSteps: 2,
      interval: 1,
    });
  });

  it('keeps a positive warm-up or cool-down at least one step when shortening, so the schedule still ends in the run', async () => {
    const recipe = validateRecipe(sampleRecipe());
    // 20 of 100 steps scaled to 4 steps is 0.8: rounded down to 0, the cubic schedule would end at step 4, after the last one
    const short = shortenRecipe(recipe, registry(), { maxSteps: 4 });
    expect(short.pruning[0]!.schedule.options).toMatchObject({
      totalSteps: 4,
      warmupSteps: 1,
      cooldownSteps: 1,
    });
    await checkRecipe(short, registry());
  });
});

describe('checkRecipe', () => {
  it('passes a sound recipe, building each plugin with checkOnly', async () => {
    environments.length = 0;
    await checkRecipe(validateRecipe(sampleRecipe()), registry(), { baseDirectory: '/recipes' });
    expect(environments).toEqual([{ seed: 7, totalSteps: 100, checkOnly: true, baseDirectory: '/recipes' }]);
  });

  it('runs the factories’ own checks: finalSparsity 1.5 and interval 0 fail before any data is loaded', async () => {
    const sparse = validateRecipe(sampleRecipe());
    sparse.pruning[0]!.schedule.options.finalSparsity = 1.5;
    const tooSparse = await failure(() => checkRecipe(sparse, registry()));
    expect(tooSparse.code).toBe('INVALID_SPARSITY');
    expect(tooSparse.message).toMatch(
      /pruning\[0\]\.schedule: cubic: finalSparsity must be in \[0, 1\), got 1\.5/,
    );
    const zero = validateRecipe(sampleRecipe());
    zero.pruning[0]!.schedule.options.interval = 0;
    expect((await failure(() => checkRecipe(zero, registry()))).code).toBe('INVALID_SCHEDULE');
  });

  it('checks that the group’s plugins agree, and leaves definitions without a schema to the run', async () => {
    const thresholdSchedule = definePlugin({
      kind: 'schedule',
      id: 'tau',
      options: {},
      create: (): SparsitySchedule => ({
        id: 'tau',
        kind: 'threshold',
        valueAt: () => 0,
        toConfig: () => ({}),
      }),
    });
    const mismatch = validateRecipe(sampleRecipe());
    mismatch.pruning[0]!.schedule = { id: 'tau', options: {} };
    const incompatible = await failure(() =>
      checkRecipe(mismatch, createPluginRegistry([magnitude, topV, cubic, thresholdSchedule])),
    );
    expect(incompatible.code).toBe('INCOMPATIBLE_PLUGINS');
    // a plugin that predates schemas may need a model; checkRecipe does not build it
    const needsModel = definePlugin({
      kind: 'scores',
      id: 'magnitude',
      create: (_options, environment) => {
        if (!environment.model) throw new Error('needs a model');
        return magnitude.create({}, environment);
      },
    });
    await checkRecipe(validateRecipe(sampleRecipe()), createPluginRegistry([needsModel, topV, cubic]));
  });

  it('refuses a schedule longer than the training (totalSteps 600, training.steps 6)', async () => {
    const recipe = validateRecipe(sampleRecipe());
    recipe.training.steps = 6;
    recipe.pruning[0]!.schedule.options = { finalSparsity: 0.5, totalSteps: 600 };
    const error = await failure(() => checkRecipe(recipe, registry(), { source: 'r.yaml' }));
    expect(error.code).toBe('INVALID_RECIPE');
    // v(5) = 0.5 − 0.5 · (1 − 5/600)³ = 0.012397…, hand-derived from Eq. 5
    expect(error.message).toContain(
      'pruning[0].schedule: schedule "cubic" reaches sparsity 0.01240 at the last step (5 of training.steps 6) instead of its final 0.5: totalSteps 600 runs past training.steps',
    );
    expect(error.fix).toMatch(/totalSteps ≤ 6/);
    // the same schedule fits a run of 600 steps, and one of 700 (the target is held after step 600)
    for (const steps of [600, 700]) {
      recipe.training.steps = steps;
      await checkRecipe(recipe, registry());
    }
  });

  it('measures the end of a schedule against its range: within 1% passes, further does not', () => {
    const recipe = validateRecipe(sampleRecipe());
    recipe.training.steps = 10;
    // 0 at step 0, `atLast` at steps 1…9, the final 0.5 from step 10 on (after the run)
    const ramp = (atLast: number): SparsitySchedule => ({
      id: 'ramp',
      kind: 'sparsity',
      valueAt: (step) => (step === 0 ? 0 : step >= 10 ? 0.5 : atLast),
      toConfig: () => ({}),
    });
    // tolerance 1% of |0.5 − 0| = 0.005
    expect(scheduleLengthIssues(recipe, registry(), [ramp(0.496)])).toEqual([]);
    expect(scheduleLengthIssues(recipe, registry(), [ramp(0.494)])).toHaveLength(1);
    // a constant schedule never falls short; a schedule without a target is not measured
    const constant: SparsitySchedule = {
      id: 'c',
      kind: 'sparsity',
      valueAt: () => 0.5,
      toConfig: () => ({}),
    };
    expect(scheduleLengthIssues(recipe, registry(), [constant])).toEqual([]);
    expect(scheduleLengthIssues(recipe, registry(), [{ ...ramp(0), kind: 'none' }])).toEqual([]);
  });
});

describe('run names', () => {
  it('refuses a name that leaves out/ (".." and ".") and accepts ordinary ones', () => {
    for (const name of ['..', '.']) {
      const error = (() => {
        try {
          validateRecipe({ ...sampleRecipe(), name });
        } catch (caught) {
          return caught as FinepruneError;
        }
        throw new Error('expected INVALID_RECIPE');
      })();
      expect(error.code).toBe('INVALID_RECIPE');
      expect(error.details!.issues).toEqual([
        expect.objectContaining({ path: 'name', fix: expect.stringMatching(/not `\.` or `\.\.`/) }),
      ]);
    }
    for (const name of ['mnist-90', '...', '..a', 'a.b']) {
      expect(validateRecipe({ ...sampleRecipe(), name }).name).toBe(name);
    }
  });
});

describe('plugin package imports', () => {
  it('give up on an import that never settles after the timeout, with a typed error', async () => {
    const never = () => new Promise<never>(() => undefined);
    const error = await failure(() =>
      loadPluginPackage(registry(), 'acme-hangs', { importer: never, timeoutMs: 50 }),
    );
    expect(error.code).toBe('PLUGIN_PACKAGE_FAILED');
    expect(error.message).toMatch(/"acme-hangs" did not finish importing within 0\.05 s/);
    expect(error.details).toMatchObject({ package: 'acme-hangs', timeoutMs: 50 });
    expect(
      (await failure(() => loadPluginPackage(registry(), 'acme-hangs', { importer: never, timeoutMs: 0 })))
        .code,
    ).toBe('INVALID_ARGUMENT');
    // a quick import is not affected
    const quick = async () => ({ fineprunePlugins: { plugins: [] } });
    expect(await loadPluginPackage(registry(), 'acme-quick', { importer: quick, timeoutMs: 50 })).toEqual([]);
  });
});
