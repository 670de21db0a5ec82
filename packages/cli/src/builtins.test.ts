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
    if (!registry.has('schedule', 'stages')) return;
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
});
