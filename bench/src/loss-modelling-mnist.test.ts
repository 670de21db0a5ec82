import { describe, expect, it } from 'vitest';
import {
  type Configuration,
  configurationSeed,
  configurationsFor,
  type PlanOptions,
} from './loss-modelling-mnist';

const plan: PlanOptions = {
  criteria: ['obd', 'lm', 'qm', 'random', 'grasp', 'synflow'],
  stageCounts: [1, 14, 100, 140, 1000],
  appendixStages: [1, 100, 1000],
  lambdas: [0, 0.01, 1],
  allLambdaStages: new Set([140]),
  lambdaCriteria: new Set(['obd', 'lm', 'qm']),
  linearStages: new Set(),
  fullSeeds: new Set(),
  scheduleKinds: new Set(['exponential', 'linear']),
  gaussNewtons: ['sampled', 'exact'],
  exactStages: new Set([14, 140]),
  exactLambdas: new Set([0]),
  stageSeeds: new Map([[1000, new Set([0])]]),
  mp: true,
};

const name = (entry: Configuration) =>
  `${entry.criterion}${entry.gaussNewton === 'exact' ? '-exact' : ''} π=${entry.stages} λ=${entry.lambda}`;

describe('loss-modelling configurations', () => {
  it('lists the published plan: loss models at π ∈ {1, 14, 100, 140, 1000}, GraSP and SynFlow at {1, 100, 1000} (1000 on seed 0), λ grid at 140, exact G at 14 and 140', () => {
    expect(configurationsFor(0, plan).map(name)).toEqual([
      'mp π=1 λ=0',
      'random π=1 λ=0',
      'obd π=1 λ=0',
      'lm π=1 λ=0',
      'qm π=1 λ=0',
      'grasp π=1 λ=0',
      'synflow π=1 λ=0',
      'obd π=14 λ=0',
      'obd-exact π=14 λ=0',
      'lm π=14 λ=0',
      'qm π=14 λ=0',
      'qm-exact π=14 λ=0',
      'obd π=100 λ=0',
      'lm π=100 λ=0',
      'qm π=100 λ=0',
      'grasp π=100 λ=0',
      'synflow π=100 λ=0',
      'obd π=140 λ=0',
      'obd-exact π=140 λ=0',
      'obd π=140 λ=0.01',
      'obd π=140 λ=1',
      'lm π=140 λ=0',
      'lm π=140 λ=0.01',
      'lm π=140 λ=1',
      'qm π=140 λ=0',
      'qm-exact π=140 λ=0',
      'qm π=140 λ=0.01',
      'qm π=140 λ=1',
      'obd π=1000 λ=0',
      'lm π=1000 λ=0',
      'qm π=1000 λ=0',
      'grasp π=1000 λ=0',
      'synflow π=1000 λ=0',
    ]);
    expect(configurationsFor(1, plan).map(name)).not.toContain('grasp π=1000 λ=0');
  });

  it('seeds each configuration from itself, not from where it stands in a list', () => {
    const all = configurationsFor(0, plan);
    const alone = configurationsFor(0, { ...plan, criteria: ['qm'], stageCounts: [140, 14], mp: false });
    for (const configuration of alone) {
      const same = all.find((entry) => name(entry) === name(configuration))!;
      expect(configurationSeed(0, configuration, 'scoring')).toBe(configurationSeed(0, same, 'scoring'));
    }
    // Every configuration, seed and purpose draws its own stream.
    const seeds = [0, 1].flatMap((seed) =>
      configurationsFor(seed, plan).flatMap((entry) =>
        ['scoring', 'gauss-newton'].map((purpose) => configurationSeed(seed, entry, purpose)),
      ),
    );
    expect(new Set(seeds).size).toBe(seeds.length);
    expect(seeds.every((seed) => Number.isInteger(seed) && seed >= 0 && seed < 2 ** 31)).toBe(true);
  });
});
