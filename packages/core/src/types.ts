import type * as tf from '@tensorflow/tfjs-core';
import type { Structure } from './structures';

/** Version of the plugin and model interfaces in this file. Bumped on any breaking change. */
export const SPEC_VERSION = 1 as const;

/** JSON-compatible data: what every `toConfig()` returns. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** The kind of weight a parameter is; adapters use the built-in kinds, custom layers may add their own. */
export type ParameterKind = 'dense' | 'conv2d' | 'depthwiseConv2d' | 'embedding' | (string & {});

/**
 * Builds the weight that the forward pass uses from the raw weight. Installed on a parameter by
 * the {@link Pruner}; it runs inside the gradient tape on every forward pass.
 */
export type WeightTransform = (parameter: PrunableParameter) => tf.Tensor;

/**
 * The factors of an effective weight that is exactly W ⊙ M (with, in training, the scores S that
 * receive M's straight-through gradient), so that an op can multiply them itself instead of
 * taking the product (`maskedDense` of @fineprune/tensor holds no copy of W ⊙ M for the backward pass).
 *
 * @example
 * ```ts
 * const factors = parameter.maskedFactors?.();
 * const y = factors ? maskedDense(x, factors.weight, factors.mask, bias, factors.scores) : dense(x, parameter.effectiveWeight(), bias);
 * ```
 */
export interface MaskedWeightFactors {
  readonly weight: tf.Tensor;
  readonly mask: tf.Tensor;
  /** The scores behind the mask, when the gradient must reach them. */
  readonly scores?: tf.Tensor;
}

/** Gives the {@link MaskedWeightFactors} of the effective weight a transform computes. */
export type MaskedFactorsFunction = (parameter: PrunableParameter) => MaskedWeightFactors;

/**
 * One prunable weight of a model: a stable name, the weight variable, and its mask.
 *
 * @example
 * ```ts
 * for (const parameter of model.parameters()) {
 *   console.log(parameter.name, parameter.shape, parameter.kind);
 * }
 * ```
 */
export interface PrunableParameter {
  /** Stable, unique name within the model, for example `dense_1/kernel`. */
  readonly name: string;
  /** The layer or block the parameter belongs to, for grouping and reports. */
  readonly group: string;
  /** What kind of weight this is. */
  readonly kind: ParameterKind;
  /** Shape of the weight (and of its mask and scores). */
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  /** The raw weight. Pruned entries keep their values here; the mask hides them. */
  readonly weight: tf.Variable;
  /** The binary mask (float32 0/1, same shape as the weight), not trainable. */
  readonly mask: tf.Variable;
  /**
   * The weight the forward pass uses. Without a transform it is `weight ⊙ mask`; a {@link Pruner}
   * installs a transform that also routes gradients to learned scores.
   */
  effectiveWeight(): tf.Tensor;
  /**
   * The factors of {@link effectiveWeight} when it is W ⊙ M with straight-through scores (inside the
   * gradient tape, like effectiveWeight); `undefined` when a transform computes something else.
   * Optional: adapters that leave it out always take the product.
   */
  maskedFactors?(): MaskedWeightFactors | undefined;
  /**
   * Installs (or with `null` removes) the transform that {@link effectiveWeight} applies; `factors`,
   * when given, says that the transform is W ⊙ M and gives its factors.
   */
  setWeightTransform(transform: WeightTransform | null, factors?: MaskedFactorsFunction): void;
}

/** A named variable, as models report their trainable and frozen variables. */
export interface NamedVariable {
  /** Stable name, used in checkpoints. */
  readonly name: string;
  readonly variable: tf.Variable;
}

/** Model inputs: one tensor, several, or a map of named tensors. */
export type ModelInput = tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>;
/** Model outputs: one tensor or several. */
export type ModelOutput = tf.Tensor | tf.Tensor[];

/** A batch of training or evaluation data. */
export interface Batch {
  readonly x: ModelInput;
  readonly y: tf.Tensor | tf.Tensor[];
}

/**
 * What a model must offer to be pruned. Adapters build it from a `tf.LayersModel`
 * (`@fineprune/layers`), from the transformer encoder, or from a user's own model.
 *
 * @example
 * ```ts
 * const prunable: PrunableModel = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
 * const outputs = prunable.forward(x, { training: false });
 * ```
 */
export interface PrunableModel {
  /** The interface version this model implements. */
  readonly specVersion: typeof SPEC_VERSION;
  /** A name for reports. */
  readonly name: string;
  /** The weights that can be pruned, in a stable order. */
  parameters(): readonly PrunableParameter[];
  /** Forward pass with masked weights. Runs inside the gradient tape when training. */
  forward(x: ModelInput, options: { training: boolean }): ModelOutput;
  /** The task loss of `outputs` against the batch's targets, a scalar. */
  loss(outputs: ModelOutput, batch: Batch): tf.Scalar;
  /** Every variable trained by the weight optimizer (prunable weights, biases, norms…), frozen ones excluded. */
  trainableVariables(): readonly NamedVariable[];
  /** Variables that are part of the model but must not change. */
  frozenVariables(): readonly NamedVariable[];
  /**
   * Further model state that no optimizer trains but a checkpoint must keep (batch-norm moving
   * statistics, for example). Optional.
   */
  stateVariables?(): readonly NamedVariable[];
  /**
   * Every weight of the model that the adapter left dense, with the reason: normalisation layers,
   * biases, layers it cannot prune, weights left out by `include` / `exclude`. Optional; adapters
   * should implement it so that users see what is not pruned.
   */
  skippedWeights?(): readonly SkippedWeight[];
  /**
   * The units of the model that are pruned together across parameters (neurons, filters with the
   * next layer's input channels, attention heads), as {@link Structure}s. Optional: unit masks and
   * unit scores (`@fineprune/structured`) need it, and a recipe that uses them with a model without
   * it is refused when it is composed. Must describe only parameters of {@link parameters}.
   */
  structures?(): readonly Structure[];
}

/**
 * Why a weight of a model is not prunable:
 * - `layer-not-prunable`: its layer (or block) declares no prunable weight (batch or layer
 *   normalisation, PReLU, a custom layer that is neither registered nor declares its weights);
 * - `weight-not-prunable`: its layer prunes other weights, not this one (a bias, say);
 * - `excluded`: it could be pruned but the `include` / `exclude` options (or `parameters`) left it out.
 */
export type SkipReason = 'layer-not-prunable' | 'weight-not-prunable' | 'excluded';

/**
 * A weight that stays dense, as {@link PrunableModel.skippedWeights} and `pruneOnce` report it.
 *
 * @example
 * ```ts
 * for (const weight of prunable.skippedWeights?.() ?? []) {
 *   console.log(`${weight.name} [${weight.shape}] of ${weight.layerClass}: ${weight.reason}`);
 * }
 * ```
 */
export interface SkippedWeight {
  /** The weight's name in the model's naming, for example `bn_1/gamma` or `dense_1/bias`. */
  readonly name: string;
  /** The layer or block it belongs to. */
  readonly group: string;
  /** The class (or kind) of that layer or block, for example `BatchNormalization`. */
  readonly layerClass: string;
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  readonly reason: SkipReason;
}

/** Facts about the run that every plugin hook and plugin method receives. */
export interface PluginContext {
  /** Number of optimizer steps completed so far. */
  readonly step: number;
  /** The model being pruned. */
  readonly model: PrunableModel;
  /** The seeded random source of the run (its state is saved in checkpoints). */
  readonly random: { next(): number; nextUint32(): number };
}

/** Lifecycle hooks any plugin may implement. Errors thrown here are tagged with the plugin and the hook. */
export interface PluginHooks {
  /** Before the first step of `run` (also after a resume). */
  onRunStart?(context: PluginContext): void | Promise<void>;
  /** At the start of each step, before masks are updated. */
  onStepStart?(context: PluginContext & { readonly target: number }): void | Promise<void>;
  /** After new masks were assigned. */
  afterMaskUpdate?(
    context: PluginContext & { readonly target: number; readonly group: string },
  ): void | Promise<void>;
  /** After the optimizer step. */
  onStepEnd?(context: PluginContext & { readonly result: StepResult }): void | Promise<void>;
  /** After an evaluation callback produced metrics. */
  onEvaluate?(
    context: PluginContext & { readonly metrics: Readonly<Record<string, number>> },
  ): void | Promise<void>;
  /** After the last step of `run`. */
  onRunEnd?(context: PluginContext): void | Promise<void>;
}

/** A plugin: an object with a required `id` and any of the {@link PluginHooks}. */
export interface Plugin extends PluginHooks {
  /** Unique id, for example `magnitude` or `my-company/fisher`. */
  readonly id: string;
}

/** Anything serialisable: plugins, schedules and loss terms return their options as JSON. */
export interface Configurable {
  /** The options this object was created with, as JSON; `fromConfig` of its package rebuilds it. */
  toConfig(): JsonObject;
}

/**
 * How importance scores come to be: computed from weights (`magnitude`), learned by gradient
 * (`movement`, `l0`), or measured on data (saliency criteria).
 *
 * @example
 * ```ts
 * const magnitude: ScoreStrategy = {
 *   id: 'magnitude', learnable: false,
 *   compute: ({ parameter }) => tf.abs(parameter.weight),
 *   toConfig: () => ({}),
 * };
 * ```
 */
export interface ScoreStrategy extends Plugin, Configurable {
  /** True when the scores are variables trained by the score optimizer. */
  readonly learnable: boolean;
  /**
   * Creates the learned score variable of a parameter (learnable strategies only): the weight's
   * shape, or a coarser one (one score per block) that {@link expandScores} spreads over the weight.
   */
  createScores?(parameter: PrunableParameter, context: PluginContext): tf.Variable;
  /**
   * For learned scores coarser than the weight (one per block): spreads the variable of
   * {@link createScores} over the weight's shape, differentiably, inside the gradient tape. Each
   * score then receives the straight-through gradient of every weight it covers, summed (Eq. 2 of
   * Movement Pruning applied to the group). Default: the scores have the weight's shape.
   */
  expandScores?(scores: tf.Tensor, parameter: PrunableParameter): tf.Tensor;
  /**
   * The scores that the mask function ranks, same shape as the weight. Called outside the gradient
   * tape when masks are updated; the caller disposes the result.
   */
  compute(
    input: { parameter: PrunableParameter; scores: tf.Variable | undefined },
    context: PluginContext,
  ): tf.Tensor | Promise<tf.Tensor>;
  /**
   * For scores measured on data (gradients, curvature): measures on scoring batches, which stay
   * the caller's, and keeps what `compute()` needs until {@link dispose}. Optional; `pruneOnce`
   * calls it with its `data`.
   */
  measure?(model: PrunableModel, batches: Iterable<Batch>): Promise<void>;
  /** Frees what {@link measure} kept. Optional. */
  dispose?(): void;
  /**
   * One score per unit of a structure (a neuron, a filter, a head) instead of one per weight: shape
   * `[structure.count]`. A strategy that has it scores units, and needs a mask function with
   * {@link MaskFunction.computeUnits}. `members` are the structure's parameters, in the order of its
   * members; `scores` is the structure's learned variable from {@link createUnitScores}. Called
   * outside the gradient tape; the caller disposes the result.
   */
  computeUnits?(input: UnitScoreInput, context: PluginContext): tf.Tensor | Promise<tf.Tensor>;
  /**
   * Creates the learned scores of a structure, shape `[structure.count]` (learnable unit strategies).
   * Forward passes use W ⊙ M, and the score of a unit receives the straight-through gradient of
   * every weight it owns, summed (Eq. 2 of Movement Pruning applied to the unit).
   */
  createUnitScores?(structure: Structure, context: PluginContext): tf.Variable;
}

/**
 * What {@link ScoreStrategy.computeUnits} receives for one structure.
 *
 * @example
 * ```ts
 * const l1: ScoreStrategy['computeUnits'] = ({ structure, members }: UnitScoreInput) =>
 *   tf.addN(structure.members.map((member, index) => poolUnits(tf.abs(members[index]!.weight), member, structure.count, 'sum')));
 * ```
 */
export interface UnitScoreInput {
  readonly structure: Structure;
  /** The parameter of each member of the structure, in the order of `structure.members`. */
  readonly members: readonly PrunableParameter[];
  /** The structure's learned scores (learnable unit strategies), shape `[structure.count]`. */
  readonly scores: tf.Variable | undefined;
}

/**
 * What a unit mask function receives for one structure.
 *
 * @example
 * ```ts
 * const keepFirst: MaskFunction['computeUnits'] = (inputs: readonly UnitMaskInput[]) =>
 *   inputs.map(({ structure }) => tf.oneHot([0], structure.count).reshape([structure.count]));
 * ```
 */
export interface UnitMaskInput {
  readonly structure: Structure;
  /** One score per unit, shape `[structure.count]`. */
  readonly scores: tf.Tensor;
}

/** What a mask function receives for one parameter. */
export interface MaskInput {
  readonly parameter: PrunableParameter;
  /** Scores to rank (from {@link ScoreStrategy.compute}). */
  readonly scores: tf.Tensor;
  /**
   * The mask the parameter has now (before this selection): ones before the first one. Read-only;
   * mask functions that stack on earlier pruning (keep what an earlier stage removed removed, or
   * select 2:4 inside the units that remain) take it into account.
   */
  readonly previousMask?: tf.Tensor;
}

/** What kind of target a schedule produces and a mask function consumes. */
export type TargetKind = 'sparsity' | 'threshold' | 'none';

/**
 * Turns scores and a target into masks, and defines how gradients reach the scores.
 *
 * @example
 * ```ts
 * const masks = await topV({ scope: 'global' }).compute(inputs, 0.9, context);
 * ```
 */
export interface MaskFunction extends Plugin, Configurable {
  /** The target this mask function needs from its schedule. */
  readonly targetKind: TargetKind;
  /** True when the function needs learned scores (it makes no sense on computed ones). */
  readonly requiresLearnableScores?: boolean;
  /**
   * True when the function needs the model's {@link PrunableModel.structures} (unit masks). A
   * recipe that gives it a model without structures, or a group whose parameters no structure
   * touches, is refused when it is composed.
   */
  readonly requiresStructures?: boolean;
  /**
   * Unit masks, one `[count]` 0/1 tensor per structure, in order, from one score per unit. Used
   * instead of {@link compute} when the group's score strategy scores units
   * ({@link ScoreStrategy.computeUnits}); the driver spreads the unit masks over the parameters.
   * The caller disposes the results.
   */
  computeUnits?(
    inputs: readonly UnitMaskInput[],
    target: number,
    context: PluginContext,
  ): tf.Tensor[] | Promise<tf.Tensor[]>;
  /**
   * New binary masks, one per input, in order. Selection across inputs (global) or per input
   * (local) is this function's concern. The caller disposes the results.
   */
  compute(
    inputs: readonly MaskInput[],
    target: number,
    context: PluginContext,
  ): tf.Tensor[] | Promise<tf.Tensor[]>;
  /**
   * Present when training never reads the masks {@link compute} writes, because {@link transform}
   * uses the learned scores directly (hardConcrete's stochastic gates): the masks `compute` would
   * return for the learned score variables (given as `scores`), synchronously and without checks.
   * With it the {@link Pruner} runs `compute` (and its checks, such as `EMPTY_MASK`) only every
   * `maskUpdateInterval` steps — default {@link DEFERRED_MASK_INTERVAL} for such functions — and
   * writes these masks when the pruner is asked for them between: `pruned()`, `exportState()`,
   * `updateMasks()`, `dispose()`, before evaluations, at the end of `run()`, and before `onStepEnd`
   * plugins. The caller disposes the results.
   *
   * @example
   * ```ts
   * const masks = hardConcrete().masksOnDemand!([{ parameter, scores }], context); // M̂ of Sec. 4
   * ```
   */
  masksOnDemand?(inputs: readonly MaskInput[], context: PluginContext): tf.Tensor[];
  /**
   * The forward weight, inside the gradient tape. Default: straight-through `W ⊙ M`, with the
   * gradient reaching learned scores as `dL/d(W⊙M) ⊙ W` (Eq. 2 of Movement Pruning).
   */
  transform?(
    input: { parameter: PrunableParameter; scores: tf.Variable | undefined; training: boolean },
    context: PluginContext,
  ): tf.Tensor;
}

/**
 * Step → target (a sparsity, or a threshold). Pure and serialisable.
 *
 * @example
 * ```ts
 * const schedule = cubic({ initialSparsity: 0, finalSparsity: 0.9, totalSteps: 6000, warmupSteps: 600, cooldownSteps: 1200, interval: 100 });
 * schedule.valueAt(0); // 0
 * ```
 */
export interface SparsitySchedule extends Configurable {
  readonly id: string;
  /** What the value means for the mask function. */
  readonly kind: TargetKind;
  /** The target at a step (the number of steps completed before it). */
  valueAt(step: number): number;
  /** How often (in steps) masks should be re-selected while this schedule runs; default 1. */
  readonly updateInterval?: number;
}

/** What a loss term receives, inside the gradient tape. */
export interface LossContext extends PluginContext {
  readonly batch: Batch;
  readonly outputs: ModelOutput;
  /** The current target of each pruning group, by group name. */
  readonly targets: Readonly<Record<string, number>>;
  /** Every pruned parameter with its learned scores (if any). */
  readonly pruned: ReadonlyArray<{
    readonly parameter: PrunableParameter;
    readonly scores: tf.Variable | undefined;
  }>;
  /** Every structure pruned by unit scores, with its learned unit scores (if any). */
  readonly prunedUnits?: ReadonlyArray<{
    readonly structure: Structure;
    readonly scores: tf.Variable | undefined;
  }>;
}

/**
 * A term added to the task loss: a regulariser on scores, distillation, a penalty.
 *
 * @example
 * ```ts
 * import { addMany } from '@fineprune/tensor'; // tf.addN in groups of ≤ 7 inputs (WebGPU's limit)
 *
 * const l2: LossTerm = {
 *   id: 'l2', toConfig: () => ({ weight: 1e-4 }),
 *   compute: ({ pruned }) => addMany(pruned.map(({ parameter }) => tf.sum(tf.square(parameter.weight)))).mul(1e-4),
 * };
 * ```
 */
export interface LossTerm extends Plugin, Configurable {
  /** The term's value (a scalar) for this step. */
  compute(context: LossContext): tf.Scalar;
  /**
   * A factor on the model's task loss while this term is active (default 1). Distillation uses it
   * to weight the task cross-entropy by α_ce; the factors of several terms multiply. Must be a
   * finite number ≥ 0. {@link StepResult.taskLoss} stays the unweighted task loss.
   */
  readonly taskLossWeight?: number;
}

/** What one training step reports. */
export interface StepResult {
  /** The step number after this step (1 after the first). */
  readonly step: number;
  /** The total loss (task loss plus loss terms). */
  readonly loss: number;
  /** The task loss alone. */
  readonly taskLoss: number;
  /** The target of each pruning group at this step. */
  readonly targets: Readonly<Record<string, number>>;
  /** True when masks were re-selected at this step. */
  readonly masksUpdated: boolean;
  /** Global gradient norm before clipping, when clipping is on. */
  readonly gradientNorm?: number;
  /** Learning rate of each optimizer group at this step. */
  readonly learningRates: Readonly<Record<string, number>>;
}
