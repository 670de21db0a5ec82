import * as tf from '@tensorflow/tfjs-core';
import { addMany, maskedWeight, wasmHeapExhausted } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { createRandom, type RandomSource } from '@fineprune/tensor/random';
import { assignMasks, writeMasksOnDemand } from './assign-masks';
import { fail as invalid } from './fail';
import { DivergenceGuard, type DivergenceGuardOptions } from './divergence-guard';
import type { GradientEntry, HostArray, Optimizer } from './optimizers';
import {
  type ParameterSelector,
  selectParameters,
  type VariableSelector,
  matchesVariable,
} from './parameter';
import { PluginDriver } from './plugin-driver';
import { type Structure, structuresForGroup, unitScoresOf } from './structures';
import {
  type Batch,
  type LossTerm,
  type MaskFunction,
  type Plugin,
  type PluginContext,
  type PrunableModel,
  type PrunableParameter,
  SPEC_VERSION,
  type ScoreStrategy,
  type SparsitySchedule,
  type StepResult,
} from './types';

/** One pruning group: a set of parameters pruned by one composition of plugins. */
export interface PruningGroupOptions {
  /** Group name, for reports and checkpoints; default `default` (or `group<i>`). */
  name?: string;
  /** Which parameters of the model this group prunes; default every parameter no earlier group took. */
  parameters?: ParameterSelector;
  /** Parameters to leave out of this group. */
  exclude?: ParameterSelector;
  scores: ScoreStrategy;
  mask: MaskFunction;
  schedule: SparsitySchedule;
  /**
   * Re-select masks every this many steps (and whenever the target changes). Default: 1 (every step)
   * when the scores are learned (`scores.learnable`), since learned scores change at every step;
   * otherwise the schedule's `updateInterval`, or 1. A mask function whose training does not read
   * the masks ({@link MaskFunction.masksOnDemand}, such as hardConcrete) defaults to
   * {@link DEFERRED_MASK_INTERVAL}: its masks are checked at that interval and written on demand between.
   */
  maskUpdateInterval?: number;
  /**
   * The optimizer that trains this group's learned scores, for a learning rate (or optimizer) of its
   * own; default `optimizers.scores`. Its slots are saved in checkpoints as `optimizer/scores@<group>/…`.
   */
  scoreOptimizer?: Optimizer;
}

/** The optimizer of each variable group. */
export interface OptimizerGroups {
  /** Trains the model's trainable variables. */
  weights: Optimizer;
  /** Trains learned scores; required when a score strategy is learnable. */
  scores?: Optimizer;
}

/** Options of {@link Pruner}. Pass `groups`, or `scores`, `mask` and `schedule` for a single group. */
export interface PrunerOptions {
  model: PrunableModel;
  groups?: PruningGroupOptions[];
  scores?: ScoreStrategy;
  mask?: MaskFunction;
  schedule?: SparsitySchedule;
  parameters?: ParameterSelector;
  exclude?: ParameterSelector;
  maskUpdateInterval?: number;
  optimizers: OptimizerGroups;
  /** Terms added to the task loss (regularisers, distillation). */
  lossTerms?: LossTerm[];
  /** Further plugins that only use hooks (loggers, metrics, checkpointing). */
  plugins?: Plugin[];
  /** Clip the global gradient norm (over weights and scores together) to this value. */
  gradientClipping?: { maxNorm: number };
  /** Seed of the run's random source (stochastic masks, random scores); default 0. */
  seed?: number;
  /**
   * Stops training when the loss grows beyond `factor` times its running minimum (`DIVERGED`),
   * naming the step and the first parameter whose value or gradient is not finite; default
   * `{ factor: 1e6, floor: 1e-3 }`. `false` turns the growth check off. A non-finite loss always
   * stops training (`NON_FINITE`, with the same names). The step that trips it is not applied.
   */
  divergenceGuard?: DivergenceGuardOptions | false;
  /**
   * Trainable variables of the model that the weight optimizer must not change (the paper freezes
   * the embeddings): names from {@link PrunableModel.trainableVariables}, a layer prefix (`dense_1`
   * selects `dense_1/kernel` and `dense_1/bias`), patterns, or a predicate on the name. Frozen
   * variables get no gradient and no update; a frozen prunable weight keeps its mask and learned
   * scores, which are still trained. A name that selects nothing is an error.
   */
  freeze?: VariableSelector;
}

/** A source of training batches that depends only on the step, so runs can resume exactly. */
export interface BatchProvider {
  batch(step: number): Batch;
}

/**
 * A source of the micro-batches of each step, for gradient accumulation (see
 * {@link Pruner.trainStep}); like a {@link BatchProvider}, a pure function of the step.
 *
 * @example
 * ```ts
 * const accumulate: MicroBatchProvider = { batch: (step) => [source.batch(2 * step), source.batch(2 * step + 1)] };
 * ```
 */
export interface MicroBatchProvider {
  batch(step: number): Batch | Batch[];
}

/** An evaluation callback of {@link Pruner.run}. */
export interface EvaluationCallback {
  /** Run every this many steps (counted from step 0). */
  every: number;
  /** Computes metrics; the model's masks are applied (training is false). */
  evaluate(context: PluginContext): Record<string, number> | Promise<Record<string, number>>;
}

/** Options of {@link Pruner.run}. */
export interface RunOptions {
  /**
   * Where batches come from (a list of micro-batches accumulates gradients over them). The pruner
   * disposes each batch's tensors after its step.
   */
  data: BatchProvider | MicroBatchProvider | ((step: number) => Batch | Batch[]);
  /** Run until this many steps have been completed in total (a resumed run continues to the same number). */
  untilStep: number;
  evaluations?: EvaluationCallback[];
  /** Called after every step. */
  onStep?(result: StepResult): void | Promise<void>;
  /** Called with each evaluation's metrics. */
  onEvaluate?(step: number, metrics: Record<string, number>): void | Promise<void>;
  /** Stops after the current step when aborted. */
  signal?: AbortSignal;
}

/** Serialisable run state of a {@link Pruner}: everything needed to continue a run exactly. */
export interface PrunerState {
  specVersion: typeof SPEC_VERSION;
  step: number;
  random: number[];
  groups: Array<{ name: string; lastTarget: number | null }>;
  /**
   * Tensors by name: `mask/<param>`, `scores/<param>`, `optimizer/<weights|scores>/<slot>`, and with
   * `includeVariables` also `variable/<name>`. The caller owns (and disposes) them.
   */
  tensors: Record<string, tf.Tensor>;
  /**
   * With `hostArrays`: the optimizer slots kept in JavaScript memory (`optimizer/<key>/<slot>`), as
   * the optimizer's live arrays instead of tensors (read them before the next step); those names
   * are then absent from `tensors`.
   */
  arrays?: Record<string, HostArray>;
}

interface Group {
  readonly name: string;
  readonly scores: ScoreStrategy;
  readonly mask: MaskFunction;
  readonly schedule: SparsitySchedule;
  readonly interval: number;
  readonly parameters: PrunableParameter[];
  readonly scoreVariables: Array<tf.Variable | undefined>;
  /** The structures the group prunes by unit (none unless its mask or scores work on units). */
  readonly structures: Structure[];
  /** The learned scores of each structure (learnable unit strategies). */
  readonly unitScoreVariables: Array<tf.Variable | undefined>;
  /** The group's own score optimizer, if it has one. */
  readonly scoreOptimizer: Optimizer | undefined;
  lastTarget: number | null;
  /** True when the learned scores moved since the masks were written and the mask function writes them on demand. */
  masksPending: boolean;
}

/**
 * The default `maskUpdateInterval` of a group whose mask function writes its masks on demand
 * ({@link MaskFunction.masksOnDemand}): training does not read them, so the full selection with its
 * checks (`EMPTY_MASK`) runs every this many steps, and the masks are written whenever they are read.
 *
 * @example
 * ```ts
 * new Pruner({ model, scores: l0(), mask: hardConcrete(), schedule: noTarget(), optimizers }); // checks every 50 steps
 * ```
 */
export const DEFERRED_MASK_INTERVAL = 50;

/**
 * The driver. Each step: schedule → scores → masks (when due) → masked forward → task loss + loss
 * terms → gradients to weights and learned scores → clipping → one optimizer per variable group.
 * Plugin hooks run at fixed points; every plugin error is tagged with the plugin and the hook.
 *
 * @example
 * ```ts
 * const pruner = new Pruner({
 *   model: prunable,
 *   scores: magnitudeScores(),
 *   mask: topV({ scope: 'global' }),
 *   schedule: cubic({ finalSparsity: 0.9, totalSteps: 6000, warmupSteps: 600, cooldownSteps: 1200, interval: 100 }),
 *   optimizers: { weights: adam({ learningRate: 1e-3 }) },
 * });
 * await pruner.run({ data: batches(train, { batchSize: 100, seed: 1 }), untilStep: 6000 });
 * ```
 */
export class Pruner {
  readonly model: PrunableModel;
  private readonly groups: Group[];
  private readonly optimizers: OptimizerGroups;
  private readonly lossTerms: LossTerm[];
  private readonly driver: PluginDriver;
  private readonly clipNorm: number | undefined;
  private readonly random: RandomSource;
  private readonly frozenNames: ReadonlySet<string>;
  private readonly guard: DivergenceGuard;
  private currentStep = 0;
  private training = false;
  private disposed = false;

  constructor(options: PrunerOptions) {
    const { model } = options;
    if (!model || model.specVersion !== SPEC_VERSION) {
      invalid(
        `The model does not implement PrunableModel version ${SPEC_VERSION}.`,
        'Build it with an adapter such as fromLayersModel() from @fineprune/layers.',
      );
    }
    this.model = model;
    const all = model.parameters();
    if (all.length === 0) {
      invalid(
        `Model "${model.name}" exposes no prunable parameter.`,
        'Choose layers with prunable weights (Dense, Conv2D, DepthwiseConv2D, Embedding) or widen the include pattern.',
        ErrorCodes.NO_PRUNABLE_PARAMETERS,
      );
    }
    const groupOptions: PruningGroupOptions[] =
      options.groups ??
      (options.scores && options.mask && options.schedule
        ? [
            {
              scores: options.scores,
              mask: options.mask,
              schedule: options.schedule,
              ...(options.parameters !== undefined ? { parameters: options.parameters } : {}),
              ...(options.exclude !== undefined ? { exclude: options.exclude } : {}),
              ...(options.maskUpdateInterval !== undefined
                ? { maskUpdateInterval: options.maskUpdateInterval }
                : {}),
            },
          ]
        : invalid(
            'The pruner needs `groups`, or `scores`, `mask` and `schedule`.',
            'Pass the three plugins of your method.',
          ));
    if (groupOptions.length === 0) invalid('`groups` is empty.', 'Give at least one pruning group.');
    this.optimizers = options.optimizers;
    if (!options.optimizers?.weights)
      invalid(
        'No weight optimizer was given.',
        'Pass optimizers: { weights: adam({ learningRate: 1e-3 }) }.',
      );
    this.random = createRandom(options.seed ?? 0);
    this.lossTerms = [...(options.lossTerms ?? [])];
    for (const term of this.lossTerms) {
      const weight = term.taskLossWeight;
      if (weight !== undefined && !(weight >= 0 && Number.isFinite(weight)))
        invalid(
          `Loss term "${term.id}" asks for a task-loss weight of ${weight}; it must be a finite number ≥ 0.`,
          'Give the term a task-loss weight such as 0.5 (or leave it unset for 1).',
        );
    }
    const clip = options.gradientClipping?.maxNorm;
    if (clip !== undefined && !(clip > 0))
      invalid(`gradientClipping.maxNorm must be > 0, got ${clip}.`, 'Use a positive norm such as 1.');
    this.clipNorm = clip;
    this.guard = new DivergenceGuard(options.divergenceGuard);

    const taken = new Set<string>();
    this.groups = groupOptions.map((group, index) => {
      const name = group.name ?? (groupOptions.length === 1 ? 'default' : `group${index}`);
      const free = all.filter((parameter) => !taken.has(parameter.name));
      const parameters = selectParameters(free, {
        ...(group.parameters !== undefined ? { include: group.parameters } : {}),
        ...(group.exclude !== undefined ? { exclude: group.exclude } : {}),
      });
      if (parameters.length === 0) {
        invalid(
          `Pruning group "${name}" selects no parameter of model "${model.name}".`,
          `Check its parameter selector; the model's parameters are: ${all.map((parameter) => parameter.name).join(', ')}.`,
          ErrorCodes.NO_PRUNABLE_PARAMETERS,
        );
      }
      for (const parameter of parameters) taken.add(parameter.name);
      this.checkComposition(name, group);
      const structures = structuresForGroup(
        `pruning group "${name}"`,
        model,
        parameters,
        group.scores,
        group.mask,
      );
      const interval = group.maskUpdateInterval ?? defaultMaskInterval(group);
      if (!(Number.isInteger(interval) && interval >= 1)) {
        invalid(
          `maskUpdateInterval of group "${name}" must be an integer ≥ 1, got ${interval}.`,
          'Use 1 to re-select masks every step.',
        );
      }
      return {
        name,
        scores: group.scores,
        mask: group.mask,
        schedule: group.schedule,
        interval,
        parameters,
        scoreVariables: [],
        structures,
        unitScoreVariables: [],
        scoreOptimizer: group.scoreOptimizer,
        lastTarget: null,
        masksPending: false,
      };
    });
    if (new Set(this.groups.map((group) => group.name)).size !== this.groups.length) {
      invalid('Two pruning groups have the same name.', 'Give each group a unique `name`.');
    }
    for (const group of this.groups) {
      if (group.scores.learnable && !group.scoreOptimizer && !this.optimizers.scores) {
        invalid(
          `Score strategy "${group.scores.id}" of group "${group.name}" learns its scores, but no score optimizer was given.`,
          'Pass optimizers: { weights, scores: adam({ learningRate: 1e-2 }) }, or a scoreOptimizer in the group.',
        );
      }
      if (group.scoreOptimizer && !group.scores.learnable) {
        invalid(
          `Group "${group.name}" has a scoreOptimizer but its score strategy "${group.scores.id}" learns nothing.`,
          'Remove the scoreOptimizer, or use a learnable score strategy such as movement().',
        );
      }
    }
    const optimizerObjects = [
      this.optimizers.weights,
      this.optimizers.scores,
      ...this.groups.map((group) => group.scoreOptimizer),
    ].filter((optimizer) => optimizer !== undefined);
    if (new Set(optimizerObjects).size !== optimizerObjects.length) {
      invalid(
        'The same optimizer object trains two variable groups; its slots and checkpoint entries would mix.',
        'Create one optimizer per group, e.g. scoreOptimizer: adam({ learningRate: 1e-2 }) for each.',
      );
    }
    this.frozenNames = this.resolveFreeze(options.freeze);
    this.driver = new PluginDriver([
      ...this.groups.flatMap((group) => [group.scores, group.mask]),
      ...this.lossTerms,
      ...(options.plugins ?? []),
    ]);
    const context = this.context();
    for (const group of this.groups) {
      this.createUnitScores(group, context);
      const unitScores = typeof group.scores.computeUnits === 'function';
      for (const parameter of group.parameters) {
        const scores =
          group.scores.learnable && !unitScores
            ? PluginDriver.callSync(group.scores, 'createScores', 0, () => {
                const created = group.scores.createScores?.(parameter, context);
                if (!created) {
                  invalid(
                    `Score strategy "${group.scores.id}" is learnable but created no scores.`,
                    'Implement createScores().',
                  );
                }
                const spread = group.scores.expandScores
                  ? tf.tidy(() => group.scores.expandScores!(created, parameter).shape)
                  : created.shape;
                if (!tf.util.arraysEqual(spread, [...parameter.shape])) {
                  created.dispose();
                  invalid(
                    `Scores of "${parameter.name}" have shape [${created.shape}]${group.scores.expandScores ? `, spread to [${spread}]` : ''}, the weight [${parameter.shape}].`,
                    `Fix createScores() of "${group.scores.id}".`,
                    ErrorCodes.SHAPE_MISMATCH,
                  );
                }
                return created;
              })
            : undefined;
        group.scoreVariables.push(scores);
        const mask = group.mask;
        // Without a mask transform the weight is W ⊙ M with straight-through scores: its factors
        // let a projection multiply them itself (maskedDense) instead of holding the product.
        const trainingScores = () =>
          this.training ? this.trainingScores(group, parameter, scores) : undefined;
        parameter.setWeightTransform(
          () =>
            mask.transform
              ? PluginDriver.callSync(mask, 'transform', this.currentStep, () =>
                  mask.transform!({ parameter, scores, training: this.training }, this.context()),
                )
              : maskedWeight(parameter.weight, parameter.mask, trainingScores()),
          mask.transform
            ? undefined
            : () => {
                const active = trainingScores();
                return {
                  weight: parameter.weight,
                  mask: parameter.mask,
                  ...(active ? { scores: active } : {}),
                };
              },
        );
      }
    }
  }

  /** Creates the learned scores of every structure of a group whose strategy learns unit scores. */
  private createUnitScores(group: Group, context: PluginContext): void {
    const { scores } = group;
    if (!scores.learnable || typeof scores.computeUnits !== 'function') return;
    for (const structure of group.structures) {
      const created = PluginDriver.callSync(scores, 'createUnitScores', 0, () => {
        const variable = scores.createUnitScores?.(structure, context);
        if (!variable) {
          invalid(
            `Score strategy "${scores.id}" learns unit scores but created none for structure "${structure.name}".`,
            'Implement createUnitScores().',
          );
        }
        if (!tf.util.arraysEqual(variable.shape, [structure.count])) {
          variable.dispose();
          invalid(
            `Unit scores of "${structure.name}" have shape [${variable.shape}], the structure has ${structure.count} units.`,
            `Fix createUnitScores() of "${scores.id}": one score per unit, shape [count].`,
            ErrorCodes.SHAPE_MISMATCH,
          );
        }
        return variable;
      });
      group.unitScoreVariables.push(created);
    }
  }

  /**
   * The learned scores that receive a parameter's straight-through gradient, inside the gradient
   * tape: its own (spread over the weight when coarser), or the unit scores of its structures.
   */
  private trainingScores(
    group: Group,
    parameter: PrunableParameter,
    scores: tf.Variable | undefined,
  ): tf.Tensor | undefined {
    if (scores) return group.scores.expandScores ? group.scores.expandScores(scores, parameter) : scores;
    if (group.unitScoreVariables.length === 0) return undefined;
    return unitScoresOf(parameter, group.structures, group.unitScoreVariables);
  }

  private checkComposition(name: string, group: PruningGroupOptions): void {
    for (const [role, plugin] of [
      ['scores', group.scores],
      ['mask', group.mask],
      ['schedule', group.schedule],
    ] as const) {
      if (!plugin || typeof plugin.id !== 'string') {
        invalid(
          `Pruning group "${name}" has no valid ${role} plugin.`,
          `Pass a ${role} plugin object with an id.`,
        );
      }
    }
    if (group.mask.targetKind !== group.schedule.kind) {
      invalid(
        `In group "${name}", mask "${group.mask.id}" needs a ${group.mask.targetKind} target but schedule "${group.schedule.id}" produces a ${group.schedule.kind}.`,
        `Use a schedule that produces a ${group.mask.targetKind}.`,
        ErrorCodes.INCOMPATIBLE_PLUGINS,
      );
    }
    if (group.mask.requiresLearnableScores && !group.scores.learnable) {
      invalid(
        `In group "${name}", mask "${group.mask.id}" needs learned scores but "${group.scores.id}" computes them.`,
        'Use a learnable score strategy such as movement or l0 with this mask.',
        ErrorCodes.INCOMPATIBLE_PLUGINS,
      );
    }
  }

  private resolveFreeze(selector: VariableSelector | undefined): ReadonlySet<string> {
    if (selector === undefined) return new Set();
    const names = this.model.trainableVariables().map((entry) => entry.name);
    const entries = typeof selector === 'function' ? [] : Array.isArray(selector) ? selector : [selector];
    for (const entry of entries) {
      if (typeof entry === 'string' && !names.some((name) => matchesVariable(name, entry))) {
        invalid(
          `freeze names "${entry}", which is neither a trainable variable nor a layer of model "${this.model.name}".`,
          `Use one of: ${names.join(', ')}.`,
        );
      }
    }
    return new Set(names.filter((name) => matchesVariable(name, selector)));
  }

  /**
   * Names of the trainable variables that {@link PrunerOptions.freeze} keeps unchanged.
   *
   * @example
   * ```ts
   * new Pruner({ ...options, freeze: 'embedding' }).frozen(); // ['embedding/embeddings']
   * ```
   */
  frozen(): string[] {
    return [...this.frozenNames];
  }

  /** Number of optimizer steps completed. */
  get step(): number {
    return this.currentStep;
  }

  /**
   * The pruned parameters of every group, with their learned scores (if any). Masks that training
   * left pending ({@link MaskFunction.masksOnDemand}) are written first, so `parameter.mask` is current.
   *
   * @example
   * ```ts
   * for (const { parameter, scores } of pruner.pruned()) console.log(parameter.name, scores?.shape);
   * ```
   */
  pruned(): Array<{ group: string; parameter: PrunableParameter; scores: tf.Variable | undefined }> {
    this.writePendingMasks();
    return this.prunedParameters();
  }

  /** {@link pruned} without writing pending masks (inside a training step). */
  private prunedParameters(): Array<{
    group: string;
    parameter: PrunableParameter;
    scores: tf.Variable | undefined;
  }> {
    return this.groups.flatMap((group) =>
      group.parameters.map((parameter, index) => ({
        group: group.name,
        parameter,
        scores: group.scoreVariables[index],
      })),
    );
  }

  /**
   * The structures pruned by unit scores in every group, with their learned unit scores (if any).
   *
   * @example
   * ```ts
   * for (const { structure, scores } of pruner.prunedUnits()) console.log(structure.name, scores?.shape);
   * ```
   */
  prunedUnits(): Array<{ group: string; structure: Structure; scores: tf.Variable | undefined }> {
    return this.groups.flatMap((group) =>
      typeof group.scores.computeUnits === 'function'
        ? group.structures.map((structure, index) => ({
            group: group.name,
            structure,
            scores: group.unitScoreVariables[index],
          }))
        : [],
    );
  }

  /** The target of every group at `step` (default: the current step). */
  targets(step = this.currentStep): Record<string, number> {
    return Object.fromEntries(this.groups.map((group) => [group.name, group.schedule.valueAt(step)]));
  }

  /** The factor on the task loss: the product of the loss terms' `taskLossWeight` (1 without any). */
  private taskLossWeight(): number {
    return this.lossTerms.reduce((product, term) => product * (term.taskLossWeight ?? 1), 1);
  }

  private context(): PluginContext {
    return { step: this.currentStep, model: this.model, random: this.random };
  }

  private assertLive(): void {
    if (this.disposed) invalid('The pruner was disposed.', 'Create a new Pruner.', ErrorCodes.DISPOSED);
  }

  /**
   * Writes the masks of the groups whose mask function computes them on demand and whose scores
   * moved since they were last written (no checks; the full selection runs at the mask interval).
   */
  private writePendingMasks(): void {
    for (const group of this.groups) {
      if (!group.masksPending) continue;
      writeMasksOnDemand({
        parameters: group.parameters,
        scores: group.scores,
        scoreVariables: group.scoreVariables,
        mask: group.mask,
        target: group.lastTarget ?? 0,
        context: this.context(),
      });
      group.masksPending = false;
    }
  }

  /** Re-selects the masks of one group (or all) for a target now, whatever the schedule says. */
  async updateMasks(groupName?: string, target?: number): Promise<void> {
    for (const group of this.groups) {
      if (groupName !== undefined && group.name !== groupName) continue;
      await this.selectMasks(group, target ?? group.schedule.valueAt(this.currentStep));
    }
  }

  private async selectMasks(group: Group, target: number): Promise<void> {
    await assignMasks({
      parameters: group.parameters,
      scores: group.scores,
      scoreVariables: group.scoreVariables,
      structures: group.structures,
      unitScoreVariables: group.unitScoreVariables,
      mask: group.mask,
      target,
      context: this.context(),
    });
    group.lastTarget = target;
    group.masksPending = false;
    await this.driver.run('afterMaskUpdate', { ...this.context(), target, group: group.name });
  }

  /** Every variable of the model a checkpoint keeps: trained, frozen and other state. */
  private modelVariables() {
    return [
      ...this.model.trainableVariables(),
      ...this.model.frozenVariables(),
      ...(this.model.stateVariables?.() ?? []),
    ];
  }

  private weightVariables() {
    const all = this.model.trainableVariables();
    return this.frozenNames.size === 0 ? all : all.filter((entry) => !this.frozenNames.has(entry.name));
  }

  private scoreVariables(groups: readonly Group[] = this.groups) {
    return groups.flatMap((group) => [
      ...group.parameters.flatMap((parameter, index) => {
        const variable = group.scoreVariables[index];
        return variable ? [{ name: `${parameter.name}/scores`, variable }] : [];
      }),
      ...group.structures.flatMap((structure, index) => {
        const variable = group.unitScoreVariables[index];
        return variable ? [{ name: `${structure.name}/scores`, variable }] : [];
      }),
    ]);
  }

  /** Every optimizer with its checkpoint name and the variables it trains. */
  private optimizerEntries(): Array<{
    key: string;
    optimizer: Optimizer;
    owners: () => Array<{ name: string; variable: tf.Variable }>;
  }> {
    const shared = this.groups.filter((group) => !group.scoreOptimizer);
    const list: Array<{
      key: string;
      optimizer: Optimizer;
      owners: () => Array<{ name: string; variable: tf.Variable }>;
    }> = [{ key: 'weights', optimizer: this.optimizers.weights, owners: () => [...this.weightVariables()] }];
    if (this.optimizers.scores)
      list.push({
        key: 'scores',
        optimizer: this.optimizers.scores,
        owners: () => this.scoreVariables(shared),
      });
    for (const group of this.groups) {
      if (group.scoreOptimizer)
        list.push({
          key: `scores@${group.name}`,
          optimizer: group.scoreOptimizer,
          owners: () => this.scoreVariables([group]),
        });
    }
    return list;
  }

  /**
   * One training step on a batch, or on several micro-batches whose gradients are accumulated: with
   * `k` micro-batches, each is run forward and backward in turn (only one graph is alive at a time)
   * and the optimizers apply the mean of their gradients, the gradient of the mean loss — one step
   * on a batch of `k` times the size when the micro-batches have equal sizes. Masks are selected
   * once, before the first micro-batch. The batches' tensors stay owned by the caller.
   *
   * @example
   * ```ts
   * const batch = source.batch(pruner.step);
   * const result = await pruner.trainStep(batch);
   * tf.dispose([batch.x, batch.y]);
   * // gradient accumulation: two micro-batches of 16 make one step on 32 examples
   * await pruner.trainStep([source.batch(2 * step), source.batch(2 * step + 1)]);
   * ```
   */
  async trainStep(batch: Batch | readonly Batch[]): Promise<StepResult> {
    this.assertLive();
    const microBatches: readonly Batch[] = Array.isArray(batch) ? batch : [batch as Batch];
    if (microBatches.length === 0)
      invalid(
        'trainStep() got an empty list of micro-batches.',
        'Pass one batch, or at least one micro-batch.',
      );
    const step = this.currentStep;
    const targets = this.targets(step);
    await this.driver.run('onStepStart', { ...this.context(), target: targets[this.groups[0]!.name]! });
    let masksUpdated = false;
    for (const group of this.groups) {
      const target = targets[group.name]!;
      if (group.lastTarget === null || group.lastTarget !== target || step % group.interval === 0) {
        await this.selectMasks(group, target);
        masksUpdated = true;
      }
    }

    const weights = this.weightVariables();
    const scores = this.scoreVariables();
    const named = [...weights, ...scores];
    const {
      value,
      taskLoss,
      grads: accumulated,
    } = this.accumulatedGradients(
      microBatches,
      step,
      targets,
      named.map((entry) => entry.variable),
    );
    let grads = accumulated;
    try {
      const [lossValue, taskValue] = await Promise.all([value.data(), taskLoss.data()]);
      const verdict = this.guard.check(lossValue[0]!);
      if (verdict !== 'ok') {
        const guarded = named.map(({ name, variable }) => ({
          name,
          value: variable,
          gradient: grads[variable.name],
        }));
        throw await this.guard.error(verdict, step, lossValue[0]!, guarded);
      }
      let gradientNorm: number | undefined;
      if (this.clipNorm !== undefined) {
        const norm = tf.tidy(() =>
          tf.sqrt(addMany(Object.values(grads).map((grad) => tf.sum(tf.square(grad))))),
        );
        gradientNorm = (await norm.data())[0]!;
        norm.dispose();
        if (gradientNorm > this.clipNorm) {
          const factor = this.clipNorm / (gradientNorm + 1e-6);
          const clipped = tf.tidy(() =>
            Object.fromEntries(Object.entries(grads).map(([key, grad]) => [key, tf.mul(grad, factor)])),
          );
          tf.dispose(grads);
          grads = clipped;
        }
      }
      const entries = (list: readonly { name: string; variable: tf.Variable }[]): GradientEntry[] =>
        list.flatMap(({ name, variable }) => {
          const gradient = grads[variable.name];
          return gradient ? [{ name, variable, gradient }] : [];
        });
      const learningRates: Record<string, number> = {};
      for (const { key, optimizer, owners } of this.optimizerEntries()) {
        const list = entries(owners());
        if (list.length > 0) optimizer.apply(list, step);
        learningRates[key] = optimizer.learningRate(step);
      }
      this.currentStep = step + 1;
      for (const group of this.groups) if (writesMasksOnDemand(group)) group.masksPending = true;
      const result: StepResult = {
        step: this.currentStep,
        loss: lossValue[0]!,
        taskLoss: taskValue[0]!,
        targets,
        masksUpdated,
        learningRates,
        ...(gradientNorm !== undefined ? { gradientNorm } : {}),
      };
      if (this.driver.has('onStepEnd')) {
        this.writePendingMasks();
        await this.driver.run('onStepEnd', { ...this.context(), result });
      }
      return result;
    } finally {
      value.dispose();
      taskLoss.dispose();
      tf.dispose(grads);
    }
  }

  /**
   * The total and task loss and the gradients of one step: of the batch itself, or the means over
   * micro-batches (each micro-batch's graph is freed before the next one runs).
   */
  private accumulatedGradients(
    microBatches: readonly Batch[],
    step: number,
    targets: Record<string, number>,
    variables: tf.Variable[],
  ): { value: tf.Scalar; taskLoss: tf.Scalar; grads: tf.NamedTensorMap } {
    if (microBatches.length === 1) return this.batchGradients(microBatches[0]!, step, targets, variables);
    let total: { value: tf.Scalar; taskLoss: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
    try {
      for (const microBatch of microBatches) {
        const next = this.batchGradients(microBatch, step, targets, variables);
        if (total === undefined) {
          total = next;
          continue;
        }
        const previous = total;
        total = tf.tidy(() => ({
          value: tf.add(previous.value, next.value) as tf.Scalar,
          taskLoss: tf.add(previous.taskLoss, next.taskLoss) as tf.Scalar,
          grads: Object.fromEntries(
            Object.entries(previous.grads).map(([key, gradient]) => {
              const other = next.grads[key];
              return [key, other ? tf.add(gradient, other) : tf.clone(gradient)];
            }),
          ),
        }));
        tf.dispose([previous.value, previous.taskLoss, next.value, next.taskLoss]);
        tf.dispose([previous.grads, next.grads] as tf.TensorContainer);
      }
      const sum = total!;
      const scale = 1 / microBatches.length;
      // The gradient of the mean loss over the micro-batches is the mean of their gradients.
      const mean = tf.tidy(() => ({
        value: tf.mul(sum.value, scale) as tf.Scalar,
        taskLoss: tf.mul(sum.taskLoss, scale) as tf.Scalar,
        grads: Object.fromEntries(
          Object.entries(sum.grads).map(([key, gradient]) => [key, tf.mul(gradient, scale)]),
        ),
      }));
      return mean;
    } finally {
      if (total) {
        tf.dispose([total.value, total.taskLoss]);
        tf.dispose(total.grads as tf.TensorContainer);
      }
    }
  }

  /** The losses and gradients of one batch (the model runs in training mode). */
  private batchGradients(
    batch: Batch,
    step: number,
    targets: Record<string, number>,
    variables: tf.Variable[],
  ): { value: tf.Scalar; taskLoss: tf.Scalar; grads: tf.NamedTensorMap } {
    let taskLoss: tf.Scalar | undefined;
    this.training = true;
    try {
      const { value, grads } = tf.variableGrads(() => {
        const outputs = this.model.forward(batch.x, { training: true });
        const task = this.model.loss(outputs, batch);
        taskLoss = tf.keep(task.clone());
        if (this.lossTerms.length === 0) return task;
        const lossContext = {
          ...this.context(),
          batch,
          outputs,
          targets,
          pruned: this.prunedParameters(),
          prunedUnits: this.prunedUnits(),
        };
        const terms = this.lossTerms.map((term) =>
          PluginDriver.callSync(term, 'compute', step, () => term.compute(lossContext)),
        );
        const weight = this.taskLossWeight();
        return addMany([weight === 1 ? task : tf.mul(task, weight), ...terms]) as tf.Scalar;
      }, variables);
      return { value, taskLoss: taskLoss!, grads };
    } catch (error) {
      taskLoss?.dispose();
      if (FinepruneError.is(error)) throw error;
      const heap = wasmHeapExhausted(error, `The forward or backward pass at step ${step}`);
      if (heap) throw heap;
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `The forward or backward pass failed at step ${step}: ${(error as Error).message}`,
        fix: 'Check that the batch fits the model (input shape, label format) and that the loss is a scalar.',
        cause: error,
      });
    } finally {
      this.training = false;
    }
  }

  /**
   * Trains until `untilStep` steps are completed, taking batch `s` for step `s`; runs evaluation
   * callbacks and hooks. Calling it again (or after {@link loadState}) continues where it stopped.
   */
  async run(options: RunOptions): Promise<StepResult | undefined> {
    this.assertLive();
    const provide = typeof options.data === 'function' ? options.data : options.data.batch.bind(options.data);
    if (!(Number.isInteger(options.untilStep) && options.untilStep >= 0)) {
      invalid(
        `untilStep must be a non-negative integer, got ${options.untilStep}.`,
        'Pass the total number of steps to reach.',
      );
    }
    for (const evaluation of options.evaluations ?? []) {
      if (!(Number.isInteger(evaluation.every) && evaluation.every >= 1)) {
        invalid(
          `An evaluation's every must be an integer ≥ 1, got ${evaluation.every}.`,
          'Evaluate every N steps with N ≥ 1.',
        );
      }
    }
    await this.driver.run('onRunStart', this.context());
    let last: StepResult | undefined;
    while (this.currentStep < options.untilStep && !options.signal?.aborted) {
      const batch = provide(this.currentStep);
      try {
        last = await this.trainStep(batch);
      } finally {
        for (const entry of Array.isArray(batch) ? batch : [batch])
          tf.dispose([entry.x, entry.y] as tf.TensorContainer);
      }
      await options.onStep?.(last);
      for (const evaluation of options.evaluations ?? []) {
        if (this.currentStep % evaluation.every === 0) await this.evaluate(evaluation, options);
      }
    }
    this.writePendingMasks();
    await this.driver.run('onRunEnd', this.context());
    return last;
  }

  private async evaluate(evaluation: EvaluationCallback, options: RunOptions): Promise<void> {
    this.writePendingMasks();
    const metrics = await evaluation.evaluate(this.context());
    await options.onEvaluate?.(this.currentStep, metrics);
    await this.driver.run('onEvaluate', { ...this.context(), metrics });
  }

  /**
   * Everything needed to continue the run exactly: step, random state, masks, learned scores,
   * optimizer slots, and (with `includeVariables`) the model's variables. The caller disposes the tensors.
   * With `hostArrays`, slots that an optimizer keeps in JavaScript memory come as `arrays` (no copy
   * on the wasm heap; for writers that stream a checkpoint) instead of tensors.
   *
   * @example
   * ```ts
   * const { tensors, arrays } = pruner.exportState({ hostArrays: true });
   * ```
   */
  exportState(options: { includeVariables?: boolean; hostArrays?: boolean } = {}): PrunerState {
    this.assertLive();
    const tensors: Record<string, tf.Tensor> = {};
    const arrays: Record<string, HostArray> = {};
    tf.tidy(() => {
      // pruned() writes the masks training left pending
      for (const { parameter, scores } of this.pruned()) {
        tensors[`mask/${parameter.name}`] = tf.keep(parameter.mask.clone());
        if (scores) tensors[`scores/${parameter.name}`] = tf.keep(scores.clone());
      }
      for (const { structure, scores } of this.prunedUnits()) {
        if (scores) tensors[`scores/${structure.name}`] = tf.keep(scores.clone());
      }
      for (const { key, optimizer } of this.optimizerEntries()) {
        if (options.hostArrays && optimizer.hostState) {
          for (const [slot, array] of Object.entries(optimizer.hostState()))
            arrays[`optimizer/${key}/${slot}`] = array;
          continue;
        }
        for (const [slot, tensor] of Object.entries(optimizer.state()))
          tensors[`optimizer/${key}/${slot}`] = tf.keep(tensor.clone());
      }
      if (options.includeVariables) {
        for (const { name, variable } of this.modelVariables()) {
          tensors[`variable/${name}`] = tf.keep(variable.clone());
        }
      }
    });
    return {
      specVersion: SPEC_VERSION,
      step: this.currentStep,
      random: this.random.state(),
      groups: this.groups.map((group) => ({ name: group.name, lastTarget: group.lastTarget })),
      tensors,
      ...(options.hostArrays ? { arrays } : {}),
    };
  }

  /** Restores a state from {@link exportState}. Checks every name and shape first; the caller keeps ownership of `state.tensors`. */
  loadState(state: PrunerState): void {
    this.assertLive();
    const mismatch: (message: string) => never = (message) =>
      invalid(
        message,
        'Load a checkpoint saved from this model with the same pruning groups.',
        ErrorCodes.CHECKPOINT_MISMATCH,
      );
    if (state?.specVersion !== SPEC_VERSION)
      mismatch(`The state has spec version ${state?.specVersion}, expected ${SPEC_VERSION}.`);
    if (!(Number.isInteger(state.step) && state.step >= 0))
      mismatch(`The state's step ${state.step} is not a non-negative integer.`);
    const { tensors } = state;
    const expectShape = (key: string, shape: readonly number[]) => {
      const tensor = tensors[key];
      if (!tensor) mismatch(`The state has no "${key}".`);
      if (!tf.util.arraysEqual(tensor.shape, [...shape]))
        mismatch(`"${key}" has shape [${tensor.shape}] but the model needs [${shape}].`);
      return tensor;
    };
    for (const group of this.groups) {
      if (!state.groups.some((saved) => saved.name === group.name))
        mismatch(`The state has no pruning group "${group.name}".`);
    }
    const variables = this.modelVariables();
    const hasVariables = Object.keys(tensors).some((key) => key.startsWith('variable/'));
    for (const { parameter, scores } of this.prunedParameters()) {
      expectShape(`mask/${parameter.name}`, parameter.shape);
      if (scores) expectShape(`scores/${parameter.name}`, scores.shape);
    }
    for (const { structure, scores } of this.prunedUnits()) {
      if (scores) expectShape(`scores/${structure.name}`, [structure.count]);
    }
    if (hasVariables)
      for (const { name, variable } of variables) expectShape(`variable/${name}`, variable.shape);
    const optimizerState = (groupName: string) =>
      Object.fromEntries(
        Object.entries(tensors)
          .filter(([key]) => key.startsWith(`optimizer/${groupName}/`))
          .map(([key, tensor]) => [key.slice(`optimizer/${groupName}/`.length), tensor]),
      );
    // Check every optimizer slot before anything is changed, so a bad state leaves the pruner as it was.
    const optimizerGroups = this.optimizerEntries().map(({ key: groupName, optimizer, owners: ownersOf }) => {
      const slots = optimizerState(groupName);
      const owners = ownersOf();
      for (const [slot, tensor] of Object.entries(slots)) {
        const owner = owners.find((entry) => slot.startsWith(`${entry.name}/`));
        if (!owner) mismatch(`Optimizer slot "${slot}" belongs to no variable of the model.`);
        if (!tf.util.arraysEqual(owner.variable.shape, tensor.shape)) {
          mismatch(
            `Optimizer slot "${slot}" has shape [${tensor.shape}] but its variable has [${owner.variable.shape}].`,
          );
        }
      }
      return { optimizer, slots, owners };
    });
    for (const { optimizer, slots, owners } of optimizerGroups) optimizer.loadState(slots, owners);
    for (const { parameter, scores } of this.prunedParameters()) {
      parameter.mask.assign(tensors[`mask/${parameter.name}`]!);
      if (scores) scores.assign(tensors[`scores/${parameter.name}`]!);
    }
    for (const { structure, scores } of this.prunedUnits()) {
      if (scores) scores.assign(tensors[`scores/${structure.name}`]!);
    }
    if (hasVariables)
      for (const { name, variable } of variables) variable.assign(tensors[`variable/${name}`]!);
    for (const group of this.groups) {
      group.lastTarget = state.groups.find((saved) => saved.name === group.name)!.lastTarget;
      // exportState wrote the masks of these scores
      group.masksPending = false;
    }
    this.random.setState(state.random);
    this.currentStep = state.step;
  }

  /** Frees the learned scores and optimizer slots and removes the weight transforms. The model stays usable (W ⊙ M). */
  dispose(): void {
    if (this.disposed) return;
    this.writePendingMasks();
    this.disposed = true;
    for (const group of this.groups) {
      for (const parameter of group.parameters) parameter.setWeightTransform(null);
      for (const scores of group.scoreVariables) scores?.dispose();
      for (const scores of group.unitScoreVariables) scores?.dispose();
    }
    for (const { optimizer } of this.optimizerEntries()) optimizer.dispose();
  }
}

/**
 * True when a group's mask function writes its masks on demand: training does not read them, and
 * the group has one learned score variable per parameter (not unit scores).
 */
function writesMasksOnDemand(group: Pick<Group, 'mask' | 'scores'>): boolean {
  return (
    typeof group.mask.masksOnDemand === 'function' &&
    group.scores.learnable === true &&
    typeof group.scores.computeUnits !== 'function'
  );
}

/** Learned scores move at every step, so their masks are re-selected every step unless they are written on demand. */
function defaultMaskInterval(group: PruningGroupOptions): number {
  if (writesMasksOnDemand(group)) return DEFERRED_MASK_INTERVAL;
  return group.scores.learnable ? 1 : (group.schedule.updateInterval ?? 1);
}
