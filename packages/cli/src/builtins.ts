import {
  type Batch,
  ErrorCodes,
  FinepruneError,
  type JsonObject,
  type LossTerm,
  type MaskFunction,
  type ScoreStrategy,
  type SparsitySchedule,
} from '@fineprune/core';
import * as criteria from '@fineprune/criteria';
import * as masks from '@fineprune/masks';
import {
  createPluginRegistry,
  definePlugin,
  type PluginDefinition,
  type PluginKind,
  type PluginKindMap,
  type PluginRegistry,
} from '@fineprune/recipes';
import * as schedulers from '@fineprune/schedulers';
import * as scores from '@fineprune/scores';

/** Options without the `type` key that `toConfig()` adds, so a plugin's config can be pasted into a recipe. */
function withoutType(options: JsonObject): JsonObject {
  const { type: _type, ...rest } = options;
  return rest;
}

type Factory<T> = (options: never) => T;

/** A factory exported by a plugin package under `name`, if that package version exports it. */
function exported<T>(namespace: object, name: string): Factory<T> | undefined {
  const value = (namespace as Record<string, unknown>)[name];
  return typeof value === 'function' ? (value as Factory<T>) : undefined;
}

const SCHEDULE_STEPS = {
  totalSteps: 'steps',
  warmupSteps: 'steps',
  cooldownSteps: 'steps',
  interval: 'interval',
  updateInterval: 'interval',
} as const;

interface Candidate {
  kind: PluginKind;
  id: string;
  namespace: object;
  exportName: string;
  description: string;
  stepOptions?: PluginDefinition['stepOptions'];
}

/**
 * Plugins of the built-in packages, by the id recipes use. An entry is registered only when the
 * installed package exports its factory, so the CLI works with any compatible plugin release.
 */
const CANDIDATES: Candidate[] = [
  {
    kind: 'scores',
    id: 'magnitude',
    namespace: scores,
    exportName: 'magnitude',
    description: 'S = |W| (magnitude pruning)',
  },
  {
    kind: 'scores',
    id: 'movement',
    namespace: scores,
    exportName: 'movement',
    description: 'learned movement scores S, ∂L/∂S = ∂L/∂a · W · x (Movement Pruning, Eq. 2)',
  },
  {
    kind: 'scores',
    id: 'l0',
    namespace: scores,
    exportName: 'l0',
    description: 'learned log α of the hard-concrete gates (L0 regularisation)',
  },
  {
    kind: 'mask',
    id: 'topV',
    namespace: masks,
    exportName: 'topV',
    description: 'keep the top (1 − v) scores, local or global (Eq. 1)',
  },
  {
    kind: 'mask',
    id: 'threshold',
    namespace: masks,
    exportName: 'threshold',
    description: 'keep S > τ (soft movement pruning)',
  },
  {
    kind: 'mask',
    id: 'hardConcrete',
    namespace: masks,
    exportName: 'hardConcrete',
    description: 'stochastic hard-concrete gates in training, deterministic at test',
  },
  {
    kind: 'schedule',
    id: 'cubic',
    namespace: schedulers,
    exportName: 'cubic',
    description: 'cubic sparsity schedule with warm-up and cool-down (Eq. 5)',
    stepOptions: SCHEDULE_STEPS,
  },
  {
    kind: 'schedule',
    id: 'constant',
    namespace: schedulers,
    exportName: 'constant',
    description: 'the same sparsity at every step',
    stepOptions: SCHEDULE_STEPS,
  },
  {
    kind: 'schedule',
    id: 'cubicThreshold',
    namespace: schedulers,
    exportName: 'cubicThreshold',
    description: 'cubic threshold schedule τ(t) for soft movement pruning',
    stepOptions: SCHEDULE_STEPS,
  },
  {
    kind: 'schedule',
    id: 'noTarget',
    namespace: schedulers,
    exportName: 'noTarget',
    description: 'no target (masks driven by learned gates, e.g. L0)',
    stepOptions: SCHEDULE_STEPS,
  },
  {
    kind: 'lossTerm',
    id: 'sigmoidPenalty',
    namespace: masks,
    exportName: 'sigmoidPenalty',
    description: 'λ_mvp Σ σ(S) (soft movement pruning)',
  },
  {
    kind: 'lossTerm',
    id: 'l0Penalty',
    namespace: masks,
    exportName: 'l0Penalty',
    description: 'λ_l0 E[L0] of the hard-concrete gates',
  },
];

/** The stage schedule of `@fineprune/criteria`, if the installed version exports it. */
type StageScheduleFactory = (options: {
  stages: number;
  finalSparsity: number;
  kind?: 'linear' | 'exponential';
  initialSparsity?: number;
}) => { sparsityAt(stage: number): number; toConfig(): JsonObject };

/**
 * The π-stage schedule of Algorithm 1 of *Revisiting Loss Modelling* as a step → sparsity
 * schedule for the `Pruner`: after `warmupSteps` dense steps, stage i (1 ≤ i ≤ π) starts at step
 * `warmupSteps + (i − 1)·stepsPerStage` with the target κ_i of `stageSchedule` (linear or
 * exponential); masks stay fixed between stages and during the fine-tuning after the last one.
 */
function stagesSchedule(factory: StageScheduleFactory, options: JsonObject): SparsitySchedule {
  const {
    warmupSteps = 0,
    stepsPerStage = 1,
    type: _type,
    ...stageOptions
  } = options as JsonObject & {
    warmupSteps?: number;
    stepsPerStage?: number;
  };
  for (const [name, value, minimum] of [
    ['warmupSteps', warmupSteps, 0],
    ['stepsPerStage', stepsPerStage, 1],
  ] as const) {
    if (!(Number.isInteger(value) && value >= minimum)) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_SCHEDULE,
        message: `stages: ${name} must be an integer ≥ ${minimum}, got ${String(value)}.`,
        fix: `Use a whole number of steps for ${name}.`,
      });
    }
  }
  const schedule = factory(stageOptions as never);
  const stages = stageOptions.stages as number;
  const initial = (stageOptions.initialSparsity as number | undefined) ?? 0;
  return {
    id: 'stages',
    kind: 'sparsity',
    // Masks change only when a stage starts (the target changes), never in between.
    updateInterval: Number.MAX_SAFE_INTEGER,
    valueAt(step) {
      if (step < warmupSteps) return initial;
      return schedule.sparsityAt(Math.min(stages, Math.floor((step - warmupSteps) / stepsPerStage) + 1));
    },
    toConfig: () => ({ type: 'stages', ...schedule.toConfig(), warmupSteps, stepsPerStage }),
  };
}

/** Saliency criteria of `@fineprune/criteria` (MP, OBD, LM, QM, random, GraSP, SynFlow), measured on training batches. */
function criteriaDefinitions(): PluginDefinition[] {
  const table = (criteria as Record<string, unknown>).CRITERIA as
    | Record<
        string,
        (
          options: { data?: (context: { step: number }) => Iterable<Batch> } & Record<string, unknown>,
        ) => ScoreStrategy
      >
    | undefined;
  const definitions: PluginDefinition[] = [];
  for (const [id, factory] of Object.entries(table ?? {})) {
    definitions.push(
      definePlugin({
        kind: 'scores',
        id,
        description: `saliency criterion ${id.toUpperCase()} of Revisiting Loss Modelling, measured on training batches`,
        create(options, environment) {
          const {
            scoringBatches = 1,
            type: _type,
            ...rest
          } = options as JsonObject & { scoringBatches?: number };
          if (!(Number.isInteger(scoringBatches) && scoringBatches >= 1 && scoringBatches <= 1000)) {
            throw new FinepruneError({
              code: ErrorCodes.INVALID_ARGUMENT,
              message: `${id}: scoringBatches must be an integer in 1…1000, got ${String(scoringBatches)}.`,
              fix: 'Measure on a few training batches, for example scoringBatches: 10 (1,000 examples at batch size 100).',
            });
          }
          const data = environment.data;
          return factory({
            ...(rest as JsonObject),
            // Batches by step number, so a resumed run measures on the same examples.
            ...(data
              ? {
                  data: (context: { step: number }) =>
                    Array.from({ length: scoringBatches }, (_, index) => data.batch(context.step + index)),
                }
              : {}),
          });
        },
      }),
    );
  }
  const stageSchedule = (criteria as Record<string, unknown>).stageSchedule as
    | StageScheduleFactory
    | undefined;
  if (stageSchedule) {
    definitions.push(
      definePlugin({
        kind: 'schedule',
        id: 'stages',
        description: 'π pruning stages, linear or exponential (Algorithm 1 of Revisiting Loss Modelling)',
        stepOptions: { warmupSteps: 'steps', stepsPerStage: 'interval' },
        create: (options) => stagesSchedule(stageSchedule, options),
      }),
    );
  }
  return definitions;
}

/**
 * Definitions of every built-in plugin available in the installed packages.
 *
 * @example
 * ```ts
 * builtinPluginDefinitions().map((definition) => `${definition.kind}:${definition.id}`);
 * ```
 */
export function builtinPluginDefinitions(): PluginDefinition[] {
  const definitions: PluginDefinition[] = [];
  for (const candidate of CANDIDATES) {
    const factory = exported<PluginKindMap[typeof candidate.kind]>(candidate.namespace, candidate.exportName);
    if (!factory) continue;
    definitions.push(
      definePlugin({
        kind: candidate.kind,
        id: candidate.id,
        description: candidate.description,
        ...(candidate.stepOptions ? { stepOptions: candidate.stepOptions } : {}),
        create: (options: JsonObject) =>
          (factory as (options: JsonObject) => ScoreStrategy | MaskFunction | SparsitySchedule | LossTerm)(
            withoutType(options),
          ) as never,
      }),
    );
  }
  return [...definitions, ...criteriaDefinitions()];
}

/**
 * A registry with every built-in plugin (scores, masks, schedules, loss terms of the installed
 * `@fineprune/*` packages). Plugin packages named in a recipe are added to it on demand.
 *
 * @example
 * ```ts
 * const registry = builtinRegistry();
 * registry.list('mask').map((definition) => definition.id); // ['hardConcrete', 'threshold', 'topV']
 * ```
 */
export function builtinRegistry(): PluginRegistry {
  return createPluginRegistry(builtinPluginDefinitions());
}
