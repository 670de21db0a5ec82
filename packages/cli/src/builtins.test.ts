import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Configurable, JsonObject } from '@fineprune/core';
import { stepUnits } from '@fineprune/recipes';
import { describe, expect, it } from 'vitest';
import { builtinRegistry } from './builtins';

describe('built-in plugin registry', () => {
  const registry = builtinRegistry();
  const environment = { seed: 0, totalSteps: 100 };

  it('registers the plugins of the installed packages by id', () => {
    for (const [kind, id] of [
      ['scores', 'magnitude'],
      ['mask', 'topV'],
      ['schedule', 'cubic'],
      ['schedule', 'constant'],
    ] as const) {
      expect(registry.has(kind, id), `${kind}:${id}`).toBe(true);
    }
    expect(stepUnits(registry.get('schedule', 'cubic')!)).toMatchObject({
      totalSteps: 'steps',
      interval: 'interval',
    });
  });

  it('builds plugins from their toConfig() output (the `type` key is ignored)', async () => {
    const cubic = await registry.create(
      'schedule',
      'cubic',
      { finalSparsity: 0.5, totalSteps: 10 },
      environment,
    );
    const again = await registry.create('schedule', 'cubic', cubic.toConfig(), environment);
    expect(again.valueAt(5)).toBe(cubic.valueAt(5));
  });

  it('turns the π stages of the criteria package into a step schedule with fixed masks between stages', async () => {
    // @fineprune/criteria is a dependency of the CLI: its `stages` schedule must be registered.
    expect(registry.has('schedule', 'stages')).toBe(true);
    const stages = await registry.create(
      'schedule',
      'stages',
      { stages: 2, finalSparsity: 0.75, kind: 'exponential', warmupSteps: 10, stepsPerStage: 5 },
      environment,
    );
    expect([0, 9, 10, 14, 15, 99].map((step) => stages.valueAt(step))).toEqual([0, 0, 0.5, 0.5, 0.75, 0.75]);
    expect(stages.updateInterval).toBe(Number.MAX_SAFE_INTEGER);
    await expect(
      registry.create('schedule', 'stages', { stages: 2, finalSparsity: 0.5, stepsPerStage: 0 }, environment),
    ).rejects.toThrow(/stepsPerStage must be an integer ≥ 1/);
    expect(registry.has('scores', 'qm')).toBe(true);
    await expect(
      registry.create('scores', 'lm', { scoringBatches: 0 }, environment, 'pruning[0].scores'),
    ).rejects.toThrow(/pruning\[0\]\.scores: lm: scoringBatches/);
  });

  it("accepts the options that reproduce the reference code's masks and hands them back in toConfig()", async () => {
    const cases = [
      ['mask', 'topV', { scope: 'local', keptCount: 'floor' }],
      [
        'mask',
        'threshold',
        {
          on: 'sigmoid',
          minKeptFraction: 0.005,
          floorScope: 'local',
          floorCount: 'floor-plus-one',
          sigmoidComparison: 'float32',
        },
      ],
      ['scores', 'mp', { lambda: 0, saliency: 'half-square' }],
      [
        'schedule',
        'stages',
        { stages: 2, finalSparsity: 0.5, kind: 'linear', initialSparsity: 0, keptCount: 'half-even' },
      ],
    ] as const;
    for (const [kind, id, options] of cases) {
      const plugin = await registry.create(kind, id, { ...options }, environment);
      expect(plugin.toConfig(), `${kind}:${id}`).toMatchObject(options);
    }
    await expect(
      registry.create('mask', 'topV', { keptCount: 'ceil' }, environment, 'pruning[0].mask'),
    ).rejects.toThrow(/keptCount must be one of/);
  });
});

describe('options schemas of the built-in plugins', () => {
  // Options that build each built-in plugin (and so its toConfig()); a new built-in needs an entry here.
  const EXAMPLES: Record<string, JsonObject> = {
    'scores:magnitude': {},
    'scores:movement': { init: { type: 'uniform', scale: 0.01 } },
    'scores:l0': { init: { type: 'constant', value: 2 } },
    'scores:mp': { lambda: 0.1 },
    'scores:obd': { lambda: 0.1, gaussNewton: 'sampled', seed: 3 },
    'scores:lm': { lambda: 0.1 },
    'scores:qm': { lambda: 0.1, gaussNewton: 'exact', seed: 1 },
    'scores:random': { seed: 5 },
    'scores:grasp': {},
    'scores:synflow': {},
    'mask:topV': { scope: 'global' },
    'mask:threshold': { on: 'sigmoid', minKeptFraction: 0.01, floorScope: 'global' },
    'mask:hardConcrete': { beta: 0.5, limitLeft: -0.2, limitRight: 1.2 },
    'schedule:cubic': {
      finalSparsity: 0.9,
      totalSteps: 100,
      warmupSteps: 10,
      cooldownSteps: 10,
      interval: 5,
    },
    'schedule:constant': { sparsity: 0.5, updateInterval: 3 },
    'schedule:cubicThreshold': { initialThreshold: 0, finalThreshold: 0.1, totalSteps: 100, on: 'scores' },
    'schedule:noTarget': {},
    'schedule:stages': {
      stages: 3,
      finalSparsity: 0.9,
      kind: 'linear',
      initialSparsity: 0.1,
      warmupSteps: 5,
      stepsPerStage: 10,
    },
    'lossTerm:sigmoidPenalty': { lambda: 1, reduction: 'mean', rampWithThreshold: { finalThreshold: 0.1 } },
    'lossTerm:l0Penalty': { lambda: 1e-4, reduction: 'sum', beta: 0.5 },
    'lossTerm:distillation': { teacher: './teacher', temperature: 2, alphaDistil: 0.5, alphaCe: 0.5 },
    'mask:nOfM': { n: 2, m: 4, scope: 'global', withinPrevious: true },
    'mask:block': { rows: 32, cols: 'all', selection: 'top', scope: 'global', pool: 'mean' },
    'mask:unitTopV': { scope: 'global', keptCount: 'floor' },
    'mask:unitThreshold': { on: 'sigmoid', minKeptUnits: 2 },
    'scores:unitMagnitude': { norm: 'l1' },
    'scores:unitMovement': { init: { type: 'uniform', scale: 0.01 } },
    'scores:blockMovement': { rows: 4, cols: 4, init: { type: 'magnitude', scale: 2 } },
    'lossTerm:unitSigmoidPenalty': { lambda: 1e-3 },
  };

  it('declare every option each plugin reports in toConfig(), so a pasted config passes the check', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'fineprune-builtins-'));
    mkdirSync(path.join(base, 'teacher'));
    writeFileSync(path.join(base, 'teacher', 'model.json'), '{}');
    const registry = builtinRegistry();
    const environment = { seed: 0, totalSteps: 100, checkOnly: true, baseDirectory: base };
    expect(
      registry
        .list()
        .map((definition) => `${definition.kind}:${definition.id}`)
        .sort(),
    ).toEqual(Object.keys(EXAMPLES).sort());
    for (const definition of registry.list()) {
      const key = `${definition.kind}:${definition.id}`;
      expect(definition.options, key).toBeDefined();
      const built = await registry.create(definition.kind, definition.id, EXAMPLES[key]!, environment, key);
      const config = (built as unknown as Configurable).toConfig();
      const reported = Object.keys(config).filter((name) => name !== 'type');
      expect(
        reported.filter((name) => !Object.hasOwn(definition.options!, name)),
        key,
      ).toEqual([]);
      // and the config pastes back into a recipe (the teacher, a path, is not part of a term's config)
      await registry.create(
        definition.kind,
        definition.id,
        { ...EXAMPLES[key]!, ...config },
        environment,
        key,
      );
    }
  });
});
