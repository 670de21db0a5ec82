import { existsSync } from 'node:fs';
import path from 'node:path';
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
import * as distillationPackage from '@fineprune/distillation';
import { fromLayersModel } from '@fineprune/layers';
import * as masks from '@fineprune/masks';
import {
  createPluginRegistry,
  definePlugin,
  type PluginDefinition,
  type PluginKind,
  type PluginKindMap,
  type OptionsSchema,
  type PluginRegistry,
} from '@fineprune/recipes';
import * as schedulers from '@fineprune/schedulers';
import * as scores from '@fineprune/scores';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { STRUCTURED_CANDIDATES } from './builtins-structured';
import { loadSavedModel, savedModelDirectory } from './models';
import { isHuggingFaceFolder, openBertTeacher } from './run-model-bert';

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

/** Options of learned score strategies: how the scores start (`@fineprune/scores` ScoreInit). */
const SCORE_INIT: OptionsSchema = {
  init: {
    type: 'object',
    description: 'how the scores start: { type: constant | uniform | kaiming | magnitude, value?, scale? }',
    properties: {
      type: { type: 'string', required: true, values: ['constant', 'uniform', 'kaiming', 'magnitude'] },
      value: { type: 'number' },
      scale: { type: 'number' },
    },
  },
};

/** The b, l, r of the hard-concrete distribution (mask and penalty share them). */
const HARD_CONCRETE: OptionsSchema = {
  beta: { type: 'number', description: 'temperature b > 0, default 2/3' },
  limitLeft: { type: 'number', description: 'l < 0, default −0.1' },
  limitRight: { type: 'number', description: 'r > 1, default 1.1' },
};

/** Options of the penalties on learned scores. */
const PENALTY: OptionsSchema = {
  lambda: { type: 'number', required: true, description: 'λ ≥ 0' },
  reduction: { type: 'string', values: ['sum', 'mean', 'meanPerParameter'] },
  parameters: { type: 'selector', description: 'only the scores of these parameters' },
};

/** Warm-up, cool-down and interval of the cubic schedules (Eq. 5 of Movement Pruning). */
const CUBIC_STEPS: OptionsSchema = {
  totalSteps: {
    type: 'integer',
    required: true,
    unit: 'steps',
    description: 'T, the steps the schedule spans',
  },
  warmupSteps: { type: 'integer', unit: 'steps', description: 't_i, steps at the initial value' },
  cooldownSteps: { type: 'integer', unit: 'steps', description: 't_f, steps at the final value' },
  interval: { type: 'integer', unit: 'interval', description: 'Δt, steps between target changes' },
};

/** A plugin factory of a built-in package with its id, description and options schema. */
export interface Candidate {
  kind: PluginKind;
  id: string;
  namespace: object;
  exportName: string;
  description: string;
  options: OptionsSchema;
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
    options: {},
  },
  {
    kind: 'scores',
    id: 'movement',
    namespace: scores,
    exportName: 'movement',
    description: 'learned movement scores S, ∂L/∂S = ∂L/∂a · W · x (Movement Pruning, Eq. 2)',
    options: SCORE_INIT,
  },
  {
    kind: 'scores',
    id: 'l0',
    namespace: scores,
    exportName: 'l0',
    description: 'learned log α of the hard-concrete gates (L0 regularisation)',
    options: SCORE_INIT,
  },
  {
    kind: 'mask',
    id: 'topV',
    namespace: masks,
    exportName: 'topV',
    description: 'keep the top (1 − v) scores, local or global (Eq. 1)',
    options: {
      scope: { type: 'string', values: ['local', 'global'] },
      keptCount: { type: 'string', description: 'how n − v·n is rounded to a kept count' },
    },
  },
  {
    kind: 'mask',
    id: 'threshold',
    namespace: masks,
    exportName: 'threshold',
    description: 'keep S > τ (soft movement pruning)',
    options: {
      on: { type: 'string', values: ['scores', 'sigmoid'] },
      minKeptFraction: { type: 'number', description: 'floor on the fraction kept, in [0, 1)' },
      floorScope: { type: 'string', values: ['local', 'global'] },
      floorCount: { type: 'string', description: 'how the floor count is rounded' },
      sigmoidComparison: { type: 'string', description: 'how σ(S) > τ is compared with on: sigmoid' },
    },
  },
  {
    kind: 'mask',
    id: 'hardConcrete',
    namespace: masks,
    exportName: 'hardConcrete',
    description: 'stochastic hard-concrete gates in training, deterministic at test',
    options: HARD_CONCRETE,
  },
  {
    kind: 'schedule',
    id: 'cubic',
    namespace: schedulers,
    exportName: 'cubic',
    description: 'cubic sparsity schedule with warm-up and cool-down (Eq. 5)',
    options: {
      initialSparsity: { type: 'number', description: 'v_i in [0, 1), default 0' },
      finalSparsity: { type: 'number', required: true, description: 'v_f in [0, 1)' },
      ...CUBIC_STEPS,
    },
  },
  {
    kind: 'schedule',
    id: 'constant',
    namespace: schedulers,
    exportName: 'constant',
    description: 'the same sparsity at every step',
    options: {
      sparsity: { type: 'number', required: true, description: 'in [0, 1)' },
      updateInterval: {
        type: 'integer',
        minimum: 1,
        unit: 'interval',
        description: 'steps between mask updates',
      },
    },
  },
  {
    kind: 'schedule',
    id: 'cubicThreshold',
    namespace: schedulers,
    exportName: 'cubicThreshold',
    description: 'cubic threshold schedule τ(t) for soft movement pruning',
    options: {
      initialThreshold: { type: 'number', required: true, description: 'τ_i' },
      finalThreshold: { type: 'number', required: true, description: 'τ_f' },
      on: { type: 'string', values: ['scores', 'sigmoid'] },
      ...CUBIC_STEPS,
    },
  },
  {
    kind: 'schedule',
    id: 'noTarget',
    namespace: schedulers,
    exportName: 'noTarget',
    description: 'no target (masks driven by learned gates, e.g. L0)',
    options: {},
  },
  {
    kind: 'lossTerm',
    id: 'sigmoidPenalty',
    namespace: masks,
    exportName: 'sigmoidPenalty',
    description: 'λ_mvp Σ σ(S) (soft movement pruning)',
    options: {
      ...PENALTY,
      rampWithThreshold: {
        type: 'object',
        description: 'λ_t = λ · τ_t / τ_f along the threshold schedule',
        properties: { finalThreshold: { type: 'number', required: true }, group: { type: 'string' } },
      },
    },
  },
  {
    kind: 'lossTerm',
    id: 'l0Penalty',
    namespace: masks,
    exportName: 'l0Penalty',
    description: 'λ_l0 E[L0] of the hard-concrete gates',
    options: { ...PENALTY, ...HARD_CONCRETE },
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

/** Options every criterion takes: the λ step-size penalty and the number of batches measured. */
const CRITERION_OPTIONS: OptionsSchema = {
  lambda: { type: 'number', description: 'λ ≥ 0, the step-size penalty' },
  scoringBatches: { type: 'integer', description: 'training batches measured at each mask update, 1…1000' },
};

/** Options of single criteria beyond {@link CRITERION_OPTIONS}. */
const CRITERION_EXTRA_OPTIONS: Record<string, OptionsSchema> = {
  mp: { saliency: { type: 'string', description: 'θ² or ½θ²' } },
  obd: { gaussNewton: { type: 'string', values: ['exact', 'sampled'] }, seed: { type: 'integer' } },
  qm: { gaussNewton: { type: 'string', values: ['exact', 'sampled'] }, seed: { type: 'integer' } },
  random: { seed: { type: 'integer' } },
};

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
        options: { ...CRITERION_OPTIONS, ...(CRITERION_EXTRA_OPTIONS[id] ?? {}) },
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
        options: {
          stages: { type: 'integer', required: true, description: 'π ≥ 1, the number of pruning stages' },
          finalSparsity: { type: 'number', required: true, description: 'κ in [0, 1)' },
          kind: { type: 'string', values: ['linear', 'exponential'] },
          initialSparsity: { type: 'number', description: 'κ₀, default 0' },
          warmupSteps: { type: 'integer', unit: 'steps', description: 'dense steps before the first stage' },
          stepsPerStage: { type: 'integer', unit: 'interval', description: 'steps of each stage' },
          keptCount: { type: 'string', description: 'how each stage’s pruned count is rounded' },
        },
        create: (options) => stagesSchedule(stageSchedule, options),
      }),
    );
  }
  return definitions;
}

/** True when output `index` of a layers model ends in a softmax (probabilities, not logits). */
function outputsProbabilities(model: tfl.LayersModel, index: number): boolean {
  const layer = model.outputs[index]?.sourceLayer as tfl.layers.Layer | undefined;
  if (!layer) return false;
  if (layer.getClassName() === 'Softmax') return true;
  return (layer.getConfig() as { activation?: unknown }).activation === 'softmax';
}

/** A layers shape as text, with `null` for the batch axis: `[null, 784]`. */
function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.map((size) => (size === null ? 'null' : String(size))).join(', ')}]`;
}

function invalidRecipe(message: string, fix: string): FinepruneError {
  return new FinepruneError({ code: ErrorCodes.INVALID_RECIPE, message, fix });
}

type DistillationFactory = (options: {
  teacher: ((x: never) => tf.Tensor | tf.Tensor[]) | object;
  temperature?: number;
  alphaDistil?: number;
  alphaCe?: number;
}) => LossTerm;

/**
 * A loss term that frees its teacher's models when the run reaches its last step (runRecipe never
 * continues a run that did).
 */
function disposedAtRunEnd(
  term: LossTerm,
  environment: { totalSteps: number },
  ...models: Array<{ dispose(): void }>
): LossTerm {
  let disposed = false;
  return {
    ...term,
    onRunEnd(context: { step: number }) {
      if (context.step >= environment.totalSteps && !disposed) {
        disposed = true;
        for (const model of models) model.dispose();
      }
    },
  } satisfies LossTerm;
}

/**
 * The `distillation` loss term of `@fineprune/distillation` for recipes: `options.teacher` is a
 * saved TF.js layers model (a directory with model.json, relative to the recipe), loaded as
 * `model: { path }` is and wrapped with `fromLayersModel`, or a Hugging Face BERT folder
 * (config.json + model.safetensors, a complete classifier with the student's labels) for a
 * `model.huggingFace` student; the other options go to the term.
 * Checked when the recipe is resolved: a missing or unloadable teacher (`IO_FAILED`), outputs
 * that differ from the student's (`SHAPE_MISMATCH`), a student that outputs probabilities
 * (`INVALID_RECIPE`). A teacher that ends in a softmax is distilled from log p (softmax(log p / T)
 * is its softened distribution). The loaded teacher is freed when the run reaches its last step.
 */
function distillationDefinition(): PluginDefinition | undefined {
  const factory = exported<LossTerm>(distillationPackage, 'distillation') as DistillationFactory | undefined;
  if (!factory) return undefined;
  return definePlugin({
    kind: 'lossTerm',
    id: 'distillation',
    description: 'α_ce · task loss + α_distil · T² · KL(teacher ‖ student) (Movement Pruning, Sec. 6.2)',
    options: {
      teacher: {
        type: 'string',
        required: true,
        description: 'a saved TF.js layers model or a Hugging Face BERT folder, relative to the recipe',
      },
      temperature: { type: 'number', description: 'T > 0' },
      alphaDistil: { type: 'number', description: 'α_distil ≥ 0' },
      alphaCe: { type: 'number', description: 'α_ce ≥ 0' },
    },
    async create(options, environment) {
      const { type: _type, teacher, ...rest } = options as JsonObject & { teacher?: unknown };
      if (typeof teacher !== 'string' || teacher.trim().length === 0)
        throw invalidRecipe(
          `options.teacher: a path to the teacher model is required, got ${JSON.stringify(teacher ?? null)}.`,
          'Set options.teacher to a directory holding the dense model’s model.json (for example ./out/dense-teacher/model), relative to the recipe.',
        );
      // Check the numbers before loading a possibly large teacher (the options schema checked their types).
      const checked = factory({ teacher: () => [], ...(rest as Record<string, number>) });
      const where = { baseDirectory: environment.baseDirectory ?? process.cwd(), where: 'options.teacher' };
      const teacherDirectory = path.resolve(where.baseDirectory, teacher);
      if (isHuggingFaceFolder(teacherDirectory)) {
        if (environment.checkOnly) return checked;
        const bert = await openBertTeacher(teacherDirectory, environment.model, where.where);
        try {
          return disposedAtRunEnd(
            factory({ teacher: bert, ...(rest as Record<string, number>) }),
            environment,
            bert,
          );
        } catch (error) {
          bert.dispose();
          throw error;
        }
      }
      if (!existsSync(path.join(teacherDirectory.replace(/model\.json$/, ''), 'model.json')))
        throw new FinepruneError({
          code: ErrorCodes.IO_FAILED,
          message: `options.teacher: ${teacherDirectory} holds neither a TF.js model (model.json) nor a Hugging Face BERT folder (config.json).`,
          fix: 'Point options.teacher at the dense model a recipe wrote (for example ./out/dense-teacher/model), relative to the recipe; run that recipe first.',
          details: { path: 'options.teacher', directory: teacherDirectory },
        });
      if (environment.checkOnly) {
        savedModelDirectory(teacher, where);
        return checked;
      }
      const studentModel = (environment.model as { model?: tfl.LayersModel } | undefined)?.model;
      if (studentModel?.outputs.some((_, index) => outputsProbabilities(studentModel, index)))
        throw invalidRecipe(
          'distillation: the model ends in a softmax, but distillation compares logits.',
          'Give the model a linear last layer (logits); the task loss then uses model.fromLogits: true.',
        );
      const model = await loadSavedModel(teacher, where);
      let prunableTeacher: ReturnType<typeof fromLayersModel> | undefined;
      try {
        if (studentModel) {
          const shapes = (outputs: tfl.SymbolicTensor[]) => outputs.map((output) => shapeText(output.shape));
          const [student, loaded] = [shapes(studentModel.outputs), shapes(model.outputs)];
          const inputs = [studentModel.inputs, model.inputs].map((list) =>
            list.map((input) => shapeText(input.shape)).join(', '),
          );
          if (student.join() !== loaded.join() || inputs[0] !== inputs[1])
            throw new FinepruneError({
              code: ErrorCodes.SHAPE_MISMATCH,
              message: `options.teacher: the teacher maps ${inputs[1]} to ${loaded.join(', ')} but the model maps ${inputs[0]} to ${student.join(', ')}.`,
              fix: 'Distil from a teacher with the same inputs and outputs as the model (the dense fine-tuned model of the same task).',
              details: { teacher: loaded, student },
            });
        }
        prunableTeacher = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy', name: 'teacher' });
        const wrapped = prunableTeacher;
        const probabilities = model.outputs.map((_, index) => outputsProbabilities(model, index));
        const teacherModel = probabilities.some(Boolean)
          ? (x: never) => {
              const outputs = wrapped.forward(x, { training: false });
              const list = Array.isArray(outputs) ? outputs : [outputs];
              // softmax(log p / T) = p^(1/T) / Σ p^(1/T): log-probabilities are valid logits
              const logits = list.map((output, index) =>
                probabilities[index] ? tf.log(tf.clipByValue(output, 1e-7, 1)) : output,
              );
              return Array.isArray(outputs) ? logits : logits[0]!;
            }
          : wrapped;
        const term = factory({ teacher: teacherModel, ...(rest as Record<string, number>) });
        return disposedAtRunEnd(term, environment, wrapped, model);
      } catch (error) {
        prunableTeacher?.dispose();
        model.dispose();
        throw error;
      }
    },
  });
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
  for (const candidate of [...CANDIDATES, ...STRUCTURED_CANDIDATES]) {
    const factory = exported<PluginKindMap[typeof candidate.kind]>(candidate.namespace, candidate.exportName);
    if (!factory) continue;
    definitions.push(
      definePlugin({
        kind: candidate.kind,
        id: candidate.id,
        description: candidate.description,
        options: candidate.options,
        create: (options: JsonObject) =>
          (factory as (options: JsonObject) => ScoreStrategy | MaskFunction | SparsitySchedule | LossTerm)(
            withoutType(options),
          ) as never,
      }),
    );
  }
  const distil = distillationDefinition();
  return [...definitions, ...(distil ? [distil] : []), ...criteriaDefinitions()];
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
