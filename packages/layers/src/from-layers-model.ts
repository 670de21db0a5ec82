import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  type Batch,
  createPrunableParameter,
  type ModelInput,
  type ModelOutput,
  type NamedVariable,
  type ParameterKind,
  type ParameterSelector,
  type PrunableModel,
  type PrunableParameter,
  SPEC_VERSION,
  type SkippedWeight,
  type Structure,
  selectParameters,
} from '@fineprune/core';
import { addMany, dense, type MaskedDenseActivation, maskedDense, maskedWeight } from '@fineprune/tensor';
import { sharedState } from '@fineprune/tensor/runtime';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { assertLayersModel } from './check-model';
import { type LayersLoss, type LossFunction, resolveLoss } from './losses';
import type { SkippedStructure } from './channel-spaces';
import { layerStructures } from './layer-structures';
import { prunableWeightsOf } from './prunable-weights';

/**
 * Options of {@link fromLayersModel}.
 *
 * @example
 * ```ts
 * const options: FromLayersModelOptions = {
 *   loss: 'sparseCategoricalCrossentropy',
 *   exclude: 'output/kernel',
 *   freeze: ['embedding'],
 * };
 * ```
 */
export interface FromLayersModelOptions {
  /**
   * The task loss. A function receives the targets and the predictions of one output. Needed to
   * train and by scores measured on data; pruning by magnitude (`pruneOnce`) works without one.
   */
  loss?: LayersLoss;
  /**
   * Whether the model's outputs are logits. Default: true, unless the output layer's activation
   * (or the output layer itself) is a softmax; then the cross-entropy is computed from clipped
   * probabilities. With logits it uses a numerically stable log-softmax.
   */
  fromLogits?: boolean;
  /**
   * Which prunable weights to expose: layer names (`dense_1`), parameter names (`dense_1/kernel`),
   * patterns tested on the parameter name, or a predicate. Default: every weight of every supported
   * layer. A name that is not a layer or parameter of the model is an error.
   */
  include?: ParameterSelector;
  /** Prunable weights to leave out (same forms as `include`). */
  exclude?: ParameterSelector;
  /**
   * Variables the optimizer must not change (for example embeddings): layer names, weight names
   * (`embedding_1/embeddings`, also the variable's own name), patterns, or a predicate. They are
   * left out of {@link PrunableModel.trainableVariables} and reported by
   * {@link PrunableModel.frozenVariables}; a frozen weight can still be pruned.
   */
  freeze?: ParameterSelector | string[];
  /**
   * Run every `Dense` layer through the fast dense op of `@fineprune/tensor` (explicit transposes
   * in the gradient, ~3× faster training on wasm). Results equal the stock layer's. Default true.
   */
  fastDense?: boolean;
  /** Name for reports; default the model's name. */
  name?: string;
}

/**
 * A `tf.LayersModel` adapted for pruning: a {@link PrunableModel} whose forward pass (and every
 * `model.predict()`) uses the masked weights W ⊙ M.
 *
 * @example
 * ```ts
 * const prunable: LayersPrunableModel = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
 * prunable.parameters().map((parameter) => parameter.name); // ['dense_1/kernel', 'dense_2/kernel']
 * const masked = prunable.model.predict(x); // uses W ⊙ M
 * ```
 */
export interface LayersPrunableModel extends PrunableModel {
  /** The wrapped model. Its raw weights keep their values; the masks hide the pruned entries. */
  readonly model: tfl.LayersModel;
  /** True after {@link unwrap} or {@link dispose}. */
  readonly disposed: boolean;
  /** The prunable parameter of that name; throws `INVALID_ARGUMENT` when there is none. */
  parameter(name: string): PrunableParameter;
  /**
   * Every weight of the model that is not a parameter, with the reason, in the order of the
   * layers: normalisation layers and other classes that declare no prunable weight
   * (`layer-not-prunable`), biases and other weights that a prunable layer keeps dense
   * (`weight-not-prunable`), and prunable weights left out by `include` / `exclude` (`excluded`).
   */
  skippedWeights(): readonly SkippedWeight[];
  /**
   * The units that are pruned together ({@link Structure}): Dense neurons (the layer's kernel
   * columns and the next Dense layer's rows, `repeats` after a `Flatten`), Conv2D filters (output
   * channels, the next convolution's input channels, the channels of a DepthwiseConv2D between;
   * batch normalisation, activations and pooling between them follow in {@link shrink}), and the
   * channels an `Add` shares among its branches (kind `channel`: one unit across every producing
   * and reading layer). Channels the graph analysis cannot prove safe to cut are left out and
   * listed by {@link skippedStructures}.
   */
  structures(): readonly Structure[];
  /**
   * The Dense and Conv2D layers whose output units {@link structures} leaves out, with why: they
   * reach a model output, a layer the analysis cannot follow (`Concatenate`, `Reshape`, a custom
   * layer, a nested model, a layer called twice), or a kernel that is not a prunable parameter.
   */
  skippedStructures(): readonly SkippedStructure[];
  /**
   * Every weight of the model (trainable, non-trainable and frozen) with its raw variable, in the
   * order of `model.weights`. Names are the weights' original names (`dense_1/kernel`), stable when
   * the same topology is rebuilt; they are the names used in saved models and checkpoints.
   */
  variables(): readonly NamedVariable[];
  /**
   * Restores the model's original methods and frees the masks; returns the model, which then
   * computes with its raw (unmasked) weights again and belongs to the caller. Use {@link strip}
   * first to keep the pruning.
   */
  unwrap(): tfl.LayersModel;
  /**
   * Restores the model's original methods and frees the masks. The model stays usable and stays
   * the caller's to dispose, except a model that {@link loadCheckpoint} built: the wrapper owns
   * that one and disposes it too. Does nothing when already unwrapped or disposed.
   */
  dispose(): void;
}

type Layer = tfl.layers.Layer;
type LayerVariable = tfl.LayerVariable;
type CallFunction = (
  inputs: tf.Tensor | tf.Tensor[],
  kwargs: Record<string, unknown>,
) => tf.Tensor | tf.Tensor[];

/** The parts of stock layers that the adapter reads; they are public in JavaScript, not all in the typings. */
interface LayerInternals {
  call: CallFunction;
  invokeCallHook?(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): void;
  activation?: { apply(x: tf.Tensor): tf.Tensor; getClassName(): string } | null;
  kernel?: LayerVariable | null;
  bias?: LayerVariable | null;
  layers?: Layer[];
  outputs?: Array<{ sourceLayer?: Layer }>;
}

interface WeightEntry {
  readonly layerVariable: LayerVariable;
  readonly raw: tf.Variable;
  readonly layer: Layer;
  /** Stable name (the original name, unless two weights share it). */
  readonly name: string;
  /** `${layer.name}/${last segment}`, for matching selectors. */
  readonly view: PrunableParameter;
}

interface Candidate {
  readonly entry: WeightEntry;
  readonly name: string;
  readonly kind: ParameterKind;
  readonly view: PrunableParameter;
  mask: tf.Variable | undefined;
}

/** Layers with a call depth: while > 0, their patched weights read as W ⊙ M. */
interface CallState {
  depth: number;
}

/**
 * The models wrapped and the layers patched, shared by every copy of this package in the process
 * (ES module and CommonJS), so that one copy refuses a model the other has already wrapped.
 */
const { wrappedModels, patchedLayers } = sharedState('layers.wrapped.v1', () => ({
  wrappedModels: new WeakSet<object>(),
  patchedLayers: new WeakSet<object>(),
}));

function invalid(
  message: string,
  fix: string,
  code: FinepruneError['code'] = ErrorCodes.INVALID_ARGUMENT,
): never {
  throw new FinepruneError({ code, message, fix });
}

function internals(layer: Layer): LayerInternals {
  return layer as unknown as LayerInternals;
}

function isContainer(layer: Layer): boolean {
  return Array.isArray(internals(layer).layers);
}

/** The model's layers with nested models expanded, each layer once. */
function leafLayers(model: tfl.LayersModel): Layer[] {
  const seen = new Set<Layer>();
  const visit = (layers: readonly Layer[]) => {
    for (const layer of layers) {
      if (isContainer(layer)) visit(internals(layer).layers!);
      else if (!seen.has(layer)) seen.add(layer);
    }
  };
  visit(model.layers);
  return [...seen];
}

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

function describeLayers(layers: readonly Layer[]): string {
  return layers.map((layer) => `${layer.name} (${layer.getClassName()})`).join(', ');
}

/** A copy without the `g` / `y` flags: `test()` on those is stateful and would skip every other match. */
function statelessPattern(pattern: RegExp): RegExp {
  return pattern.global || pattern.sticky
    ? new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''))
    : pattern;
}

/** The selector with stateless patterns. */
function stateless<T extends ParameterSelector | string[] | undefined>(selector: T): T {
  if (selector instanceof RegExp) return statelessPattern(selector) as T;
  if (Array.isArray(selector)) {
    return (selector as ReadonlyArray<string | RegExp>).map((entry) =>
      entry instanceof RegExp ? statelessPattern(entry) : entry,
    ) as unknown as T;
  }
  return selector;
}

function selectorStrings(selector: ParameterSelector | string[] | undefined): string[] {
  if (selector === undefined || typeof selector === 'function' || selector instanceof RegExp) return [];
  if (typeof selector === 'string') return [selector];
  return (selector as ReadonlyArray<string | RegExp>).filter(
    (entry): entry is string => typeof entry === 'string',
  );
}

/** A parameter-shaped view of any weight, for selectors; its mask is created only if a predicate asks. */
function weightView(options: {
  name: string;
  group: string;
  kind: ParameterKind;
  raw: tf.Variable;
  prunable: boolean;
  lazyMask: () => tf.Variable;
}): PrunableParameter {
  const { name, group, kind, raw } = options;
  const view: PrunableParameter = {
    name,
    group,
    kind,
    shape: [...raw.shape],
    size: raw.size,
    weight: raw,
    get mask(): tf.Variable {
      if (!options.prunable)
        invalid(`"${name}" is not a prunable weight, so it has no mask.`, 'Read only `weight` here.');
      return options.lazyMask();
    },
    effectiveWeight: () => (options.prunable ? maskedWeight(raw, options.lazyMask()) : raw.clone()),
    setWeightTransform: () =>
      invalid(
        `"${name}" is being selected and cannot take a weight transform yet.`,
        'Use the parameters of the wrapped model.',
      ),
  };
  return view;
}

function isProbabilityLayer(layer: Layer | undefined): boolean {
  let current = layer;
  while (current && isContainer(current)) {
    const inner = internals(current);
    current = inner.outputs?.[0]?.sourceLayer ?? inner.layers?.at(-1);
  }
  if (!current) return false;
  if (current.getClassName() === 'Softmax') return true;
  return internals(current).activation?.getClassName() === 'softmax';
}

function outputLayers(model: tfl.LayersModel): Array<Layer | undefined> {
  const outputs = internals(model as unknown as Layer).outputs;
  if (outputs && outputs.length > 0) return outputs.map((output) => output.sourceLayer);
  return [model.layers.at(-1)];
}

class LayersPrunableModelImpl implements LayersPrunableModel {
  readonly specVersion = SPEC_VERSION;
  readonly name: string;
  readonly model: tfl.LayersModel;
  private readonly parameterList: readonly PrunableParameter[];
  private readonly parameterByName: ReadonlyMap<string, PrunableParameter>;
  private readonly entries: ReadonlyMap<LayerVariable, WeightEntry>;
  private readonly frozen: ReadonlySet<LayerVariable>;
  private readonly lossFunctions: readonly LossFunction[] | undefined;
  private readonly skipped: readonly SkippedWeight[];
  private readonly restore: Array<() => void>;
  private readonly layers: readonly Layer[];
  private readonly named = new Map<LayerVariable, NamedVariable>();
  private isDisposed = false;
  private ownsModel = false;
  private units: { structures: readonly Structure[]; skipped: readonly SkippedStructure[] } | undefined;

  constructor(options: {
    name: string;
    model: tfl.LayersModel;
    parameters: PrunableParameter[];
    entries: Map<LayerVariable, WeightEntry>;
    frozen: Set<LayerVariable>;
    lossFunctions: LossFunction[] | undefined;
    skipped: SkippedWeight[];
    restore: Array<() => void>;
    layers: Layer[];
  }) {
    this.name = options.name;
    this.model = options.model;
    this.parameterList = Object.freeze([...options.parameters]);
    this.parameterByName = new Map(options.parameters.map((parameter) => [parameter.name, parameter]));
    this.entries = options.entries;
    this.frozen = options.frozen;
    this.lossFunctions = options.lossFunctions;
    this.skipped = Object.freeze([...options.skipped]);
    this.restore = options.restore;
    this.layers = options.layers;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  private assertLive(): void {
    if (this.isDisposed) {
      invalid(
        `The pruning wrapper of model "${this.name}" was unwrapped or disposed.`,
        'Wrap the model again with fromLayersModel().',
        ErrorCodes.DISPOSED,
      );
    }
  }

  parameters(): readonly PrunableParameter[] {
    this.assertLive();
    return this.parameterList;
  }

  parameter(name: string): PrunableParameter {
    this.assertLive();
    const parameter = this.parameterByName.get(name);
    if (!parameter) {
      invalid(
        `Model "${this.name}" has no prunable parameter "${name}".`,
        `Use one of: ${[...this.parameterByName.keys()].join(', ')}.`,
      );
    }
    return parameter;
  }

  structures(): readonly Structure[] {
    return this.unitAnalysis().structures;
  }

  skippedStructures(): readonly SkippedStructure[] {
    return this.unitAnalysis().skipped;
  }

  /** The structures and the producers left out, computed once (the topology does not change). */
  private unitAnalysis(): { structures: readonly Structure[]; skipped: readonly SkippedStructure[] } {
    this.assertLive();
    this.units ??= layerStructures(this.model, (variable) => {
      const name = this.entries.get(variable)?.view.name;
      return name !== undefined && this.parameterByName.has(name) ? name : undefined;
    });
    return this.units;
  }

  skippedWeights(): readonly SkippedWeight[] {
    this.assertLive();
    return this.skipped;
  }

  private namedVariable(layerVariable: LayerVariable): NamedVariable {
    let named = this.named.get(layerVariable);
    if (!named) {
      const entry = this.entries.get(layerVariable);
      // A weight added after wrapping (unusual): its unpatched read() is the raw variable.
      named = entry
        ? { name: entry.name, variable: entry.raw }
        : {
            name: layerVariable.originalName ?? layerVariable.name,
            variable: layerVariable.read() as tf.Variable,
          };
      this.named.set(layerVariable, named);
    }
    return named;
  }

  variables(): readonly NamedVariable[] {
    this.assertLive();
    return this.model.weights.map((weight) => this.namedVariable(weight));
  }

  trainableVariables(): readonly NamedVariable[] {
    this.assertLive();
    return this.model.trainableWeights
      .filter((weight) => !this.frozen.has(weight))
      .map((weight) => this.namedVariable(weight));
  }

  frozenVariables(): readonly NamedVariable[] {
    this.assertLive();
    return this.model.weights
      .filter((weight) => this.frozen.has(weight))
      .map((weight) => this.namedVariable(weight));
  }

  /** Non-trainable layer weights that are not frozen by the wrapper (batch-norm moving statistics). */
  stateVariables(): readonly NamedVariable[] {
    this.assertLive();
    return this.model.nonTrainableWeights
      .filter((weight) => !this.frozen.has(weight))
      .map((weight) => this.namedVariable(weight));
  }

  forward(x: ModelInput, options: { training: boolean }): ModelOutput {
    this.assertLive();
    let inputs: tf.Tensor | tf.Tensor[];
    if (x instanceof tf.Tensor || Array.isArray(x)) {
      inputs = x;
    } else {
      const names = this.model.inputNames;
      inputs = names.map((name) => {
        const tensor = (x as Record<string, tf.Tensor>)[name];
        if (!tensor) {
          invalid(
            `The input map has no tensor for model input "${name}".`,
            `Pass a tensor for each input: ${names.join(', ')}.`,
          );
        }
        return tensor;
      });
    }
    return this.model.apply(inputs, { training: options.training }) as ModelOutput;
  }

  loss(outputs: ModelOutput, batch: Batch): tf.Scalar {
    this.assertLive();
    const lossFunctions = this.lossFunctions;
    if (!lossFunctions) {
      invalid(
        `Model "${this.name}" was wrapped without a loss, and training or a score measured on data needs one.`,
        "Pass one to fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' }) (or 'categoricalCrossentropy', 'meanSquaredError', a function).",
      );
    }
    const predictions = Array.isArray(outputs) ? outputs : [outputs];
    const targets = Array.isArray(batch.y) ? batch.y : [batch.y];
    if (predictions.length !== targets.length || predictions.length > lossFunctions.length) {
      invalid(
        `Model "${this.name}" produced ${predictions.length} output(s) but the batch has ${targets.length} target(s).`,
        'Give one target tensor per model output (an array for several outputs).',
        ErrorCodes.SHAPE_MISMATCH,
      );
    }
    return tf.tidy(() => {
      const losses = predictions.map((prediction, index) =>
        lossFunctions[index]!(targets[index]!, prediction),
      );
      for (const value of losses) {
        if (value.rank !== 0) {
          invalid(
            `The loss function returned shape [${value.shape}], not a scalar.`,
            'Reduce the loss to a scalar (tf.mean).',
          );
        }
      }
      return (losses.length === 1 ? losses[0]! : addMany(losses)) as tf.Scalar;
    });
  }

  unwrap(): tfl.LayersModel {
    this.assertLive();
    this.isDisposed = true;
    for (const undo of [...this.restore].reverse()) undo();
    for (const parameter of this.parameterList) {
      parameter.setWeightTransform(null);
      parameter.mask.dispose();
    }
    wrappedModels.delete(this.model);
    for (const layer of this.layers) patchedLayers.delete(layer);
    return this.model;
  }

  dispose(): void {
    if (this.isDisposed) return;
    const model = this.unwrap();
    if (this.ownsModel) model.dispose();
  }

  /** Makes {@link dispose} dispose the model too (for models the package built itself). */
  ownModel(): void {
    this.ownsModel = true;
  }
}

/**
 * Hands the model of a wrapper to the wrapper: its `dispose()` then disposes the model too. For
 * models this package builds (loadCheckpoint); not part of the public API.
 */
export function ownModel(prunable: LayersPrunableModel): void {
  if (prunable instanceof LayersPrunableModelImpl) prunable.ownModel();
}

/** Replaces a method (or property) on one object and returns how to put the original back. */
function patch(target: object, key: string, value: unknown): () => void {
  const record = target as Record<string, unknown>;
  const own = Object.hasOwn(record, key);
  const previous = record[key];
  record[key] = value;
  return () => {
    if (own) record[key] = previous;
    else delete record[key];
  };
}

function singleInput(inputs: tf.Tensor | tf.Tensor[], layer: Layer): tf.Tensor {
  if (!Array.isArray(inputs)) return inputs;
  if (inputs.length !== 1) {
    invalid(
      `Dense layer "${layer.name}" received ${inputs.length} inputs.`,
      'Give a Dense layer exactly one input.',
    );
  }
  return inputs[0]!;
}

/**
 * The Dense layer's call through the fast dense ops: flatten to 2-D, x·K + b, reshape back,
 * activation. A pruned kernel whose effective weight is W ⊙ M (with straight-through scores in
 * training) goes through `maskedDense`, which takes the sparse route when few weights are kept;
 * any other through `dense` on the effective weight.
 */
function fastDenseCall(
  layer: Layer,
  state: CallState,
  parameter: PrunableParameter | undefined,
): CallFunction {
  const inner = internals(layer);
  return (inputs, kwargs) =>
    tf.tidy(() => {
      state.depth += 1;
      try {
        inner.invokeCallHook?.call(layer, inputs, kwargs);
        const input = singleInput(inputs, layer);
        const bias = inner.bias ? (inner.bias.read() as tf.Tensor1D) : undefined;
        const factors = parameter?.maskedFactors?.();
        const kernel = factors ? undefined : (inner.kernel!.read() as tf.Tensor2D);
        const [features, units] = (factors?.weight ?? kernel!).shape as [number, number];
        const flat = (input.rank === 2 ? input : tf.reshape(input, [-1, features])) as tf.Tensor2D;
        // ReLU and GELU (exact, as tfjs-layers' 'gelu') fold into maskedDense
        const folded = factors ? foldedActivation(inner.activation) : undefined;
        let output: tf.Tensor = factors
          ? maskedDense(flat, factors.weight as tf.Tensor2D, factors.mask, bias, factors.scores, {
              activation: folded ?? 'linear',
            })
          : dense(flat, kernel!, bias);
        if (input.rank !== 2) output = tf.reshape(output, [...input.shape.slice(0, -1), units]);
        return inner.activation && folded === undefined ? inner.activation.apply(output) : output;
      } finally {
        state.depth -= 1;
      }
    });
}

/** The `maskedDense` activation that computes the layer's own, if there is one. */
function foldedActivation(activation: LayerInternals['activation']): MaskedDenseActivation | undefined {
  const name = activation?.getClassName() ?? 'linear';
  return name === 'linear' || name === 'relu' || name === 'gelu' ? name : undefined;
}

/** Any other layer's call, with its patched weights reading as W ⊙ M while it runs. */
function maskedCall(layer: Layer, state: CallState): CallFunction {
  const original = internals(layer).call;
  return (inputs, kwargs) => {
    state.depth += 1;
    try {
      return original.call(layer, inputs, kwargs);
    } finally {
      state.depth -= 1;
    }
  };
}

function checkIncludes(
  include: ParameterSelector | undefined,
  candidates: readonly Candidate[],
  layers: readonly Layer[],
  modelName: string,
): void {
  for (const entry of selectorStrings(include)) {
    if (candidates.some((candidate) => candidate.name === entry || candidate.entry.layer.name === entry))
      continue;
    const layer =
      layers.find((candidate) => candidate.name === entry) ??
      layers.find((candidate) => entry.startsWith(`${candidate.name}/`));
    if (layer) {
      const className = layer.getClassName();
      const prunables = prunableWeightsOf(layer);
      if (prunables) {
        invalid(
          `"${entry}" is not a prunable weight of layer "${layer.name}" (${className}); its prunable weights are: ${[...prunables.weights.values()].map((weight) => `${layer.name}/${weight}`).join(', ')}.`,
          `Include one of those, or registerPrunableLayer('${className}', { weights: [...], kind: '...' }) to choose other weights.`,
          ErrorCodes.UNSUPPORTED_LAYER,
        );
      }
      invalid(
        `Layer "${layer.name}" is a ${className}, which fromLayersModel() cannot prune.`,
        `Prune Dense, Conv2D, DepthwiseConv2D or Embedding layers, or call registerPrunableLayer('${className}', { weights: ['kernel'], kind: '...' }) first.`,
        ErrorCodes.UNSUPPORTED_LAYER,
      );
    }
    invalid(
      `include names "${entry}", which is neither a layer nor a prunable weight of model "${modelName}".`,
      `Use layer or parameter names of the model; its layers are: ${describeLayers(layers)}.`,
    );
  }
}

/** Every weight that is not a chosen parameter, with why it stays dense. */
function skippedWeights(
  entries: Iterable<WeightEntry>,
  candidates: readonly Candidate[],
  chosen: readonly Candidate[],
  prunableLayers: ReadonlySet<Layer>,
): SkippedWeight[] {
  const candidateEntries = new Set(candidates.map((candidate) => candidate.entry));
  const chosenEntries = new Set(chosen.map((candidate) => candidate.entry));
  const skipped: SkippedWeight[] = [];
  for (const entry of entries) {
    if (chosenEntries.has(entry)) continue;
    skipped.push({
      name: entry.view.name,
      group: entry.layer.name,
      layerClass: entry.layer.getClassName(),
      shape: [...entry.raw.shape],
      size: entry.raw.size,
      reason: candidateEntries.has(entry)
        ? 'excluded'
        : prunableLayers.has(entry.layer)
          ? 'weight-not-prunable'
          : 'layer-not-prunable',
    });
  }
  return skipped;
}

function matchesFreeze(entry: WeightEntry, selector: ParameterSelector | string[]): boolean {
  if (typeof selector === 'function') return selector(entry.view);
  const list: ReadonlyArray<string | RegExp> =
    typeof selector === 'string' || selector instanceof RegExp ? [selector] : selector;
  const names = [entry.view.name, entry.layerVariable.name, entry.layerVariable.originalName, entry.name];
  return list.some((item) =>
    typeof item === 'string'
      ? item === entry.view.group || names.includes(item)
      : names.some((name) => name !== undefined && item.test(name)),
  );
}

/**
 * Wraps a `tf.LayersModel` (Sequential or functional, nested models included) as a
 * {@link PrunableModel}. Every weight of a supported layer becomes a parameter named
 * `${layer.name}/${weight}` (group: the layer name) with a mask of ones: Dense `kernel`, Conv2D
 * `kernel`, DepthwiseConv2D `depthwiseKernel`, Embedding `embeddings`, plus classes added with
 * {@link registerPrunableLayer}.
 *
 * How: each chosen `LayerVariable`'s `read()` is overridden on that instance so that, while its
 * layer's `call()` runs, it returns `parameter.effectiveWeight()` (W ⊙ M, or the pruner's
 * straight-through transform in training); outside a call it still returns the raw variable, so
 * `getWeights()`, `fit()` and `save()` see raw weights and nothing leaks. Dense layers also get a
 * `call()` on the fast dense op. `model.predict()` therefore uses the masked weights too.
 *
 * @param model - a built model (it has weights)
 * @param options - the loss, which weights to prune, which to freeze
 * @returns the adapter; {@link LayersPrunableModel.unwrap} restores the model
 * @throws FinepruneError `NO_PRUNABLE_PARAMETERS` when no weight is chosen, `UNSUPPORTED_LAYER` when
 *   `include` names a layer that cannot be pruned, `INVALID_ARGUMENT` when the model is already
 *   wrapped, not built, or a name in `include` / `freeze` is unknown
 *
 * @example
 * ```ts
 * const model = tf.sequential({
 *   layers: [
 *     tf.layers.dense({ inputShape: [784], units: 300, activation: 'relu' }),
 *     tf.layers.dense({ units: 10 }),
 *   ],
 * });
 * const prunable = fromLayersModel(model, { loss: 'sparseCategoricalCrossentropy' });
 * const pruner = new Pruner({ model: prunable, scores, mask, schedule, optimizers: { weights: adam({ learningRate: 1e-3 }) } });
 * ```
 */
export function fromLayersModel(
  model: tfl.LayersModel,
  options: FromLayersModelOptions = {},
): LayersPrunableModel {
  assertLayersModel(model, 'fromLayersModel()');
  if (options === null || typeof options !== 'object') {
    invalid(
      `fromLayersModel() options must be an object, got ${options === null ? 'null' : typeof options}.`,
      "Pass { loss: 'sparseCategoricalCrossentropy' }, or nothing to prune without training.",
    );
  }
  if (wrappedModels.has(model)) {
    invalid(
      `Model "${model.name}" is already wrapped for pruning.`,
      'Use the existing wrapper, or call its unwrap() before wrapping the model again.',
    );
  }
  const layers = leafLayers(model);
  const shared = layers.find((layer) => patchedLayers.has(layer));
  if (shared) {
    invalid(
      `Layer "${shared.name}" of model "${model.name}" belongs to another model that is wrapped for pruning.`,
      'Unwrap the other model first, or build this one from its own layers.',
    );
  }
  const unbuilt = layers.find((layer) => !layer.built);
  if (unbuilt) {
    invalid(
      `Layer "${unbuilt.name}" of model "${model.name}" is not built, so its weights do not exist yet.`,
      'Give the first layer an inputShape, or call model.build() / model.predict() once before wrapping.',
    );
  }

  // Every weight of the model, with its owner layer and a stable name.
  const originalCounts = new Map<string, number>();
  for (const weight of model.weights) {
    originalCounts.set(weight.originalName, (originalCounts.get(weight.originalName) ?? 0) + 1);
  }
  const candidates: Candidate[] = [];
  const entries = new Map<LayerVariable, WeightEntry>();
  const prunableLayers = new Set<Layer>();
  for (const layer of layers) {
    const spec = prunableWeightsOf(layer);
    if (spec) prunableLayers.add(layer);
    const prunableVariables = spec?.weights ?? new Map<LayerVariable, string>();
    for (const layerVariable of layer.weights) {
      if (entries.has(layerVariable)) continue;
      const raw = layerVariable.read() as tf.Variable;
      const attribute = prunableVariables.get(layerVariable);
      const viewName = `${layer.name}/${attribute ?? lastSegment(layerVariable.originalName)}`;
      let candidate: Candidate | undefined;
      const view = weightView({
        name: viewName,
        group: layer.name,
        kind: attribute !== undefined && spec ? spec.kind : 'weight',
        raw,
        prunable: attribute !== undefined,
        lazyMask: () => {
          candidate!.mask ??= tf.tidy(() => tf.variable(tf.ones(raw.shape), false));
          return candidate!.mask;
        },
      });
      const name =
        (originalCounts.get(layerVariable.originalName) ?? 0) > 1
          ? layerVariable.name
          : layerVariable.originalName;
      const entry: WeightEntry = { layerVariable, raw, layer, name, view };
      entries.set(layerVariable, entry);
      if (attribute !== undefined && spec) {
        if (candidates.some((other) => other.name === viewName)) {
          invalid(
            `Two prunable weights of model "${model.name}" are both named "${viewName}" (nested models with equal layer names).`,
            'Give the layers unique names.',
          );
        }
        candidate = { entry, name: viewName, kind: spec.kind, view, mask: undefined };
        candidates.push(candidate);
      }
    }
  }

  const releaseLazyMasks = (keep: ReadonlySet<Candidate>) => {
    for (const candidate of candidates) {
      if (!keep.has(candidate)) {
        candidate.mask?.dispose();
        candidate.mask = undefined;
      }
    }
  };

  const include = stateless(options.include);
  const exclude = stateless(options.exclude);
  const freeze = stateless(options.freeze);
  let chosen: Candidate[];
  const frozen = new Set<LayerVariable>();
  try {
    checkIncludes(include, candidates, layers, model.name);
    const byView = new Map(candidates.map((candidate) => [candidate.view, candidate]));
    chosen = selectParameters(
      candidates.map((candidate) => candidate.view),
      {
        ...(include !== undefined ? { include } : {}),
        ...(exclude !== undefined ? { exclude } : {}),
      },
    ).map((view) => byView.get(view)!);
    if (chosen.length === 0) {
      invalid(
        `No prunable weight of model "${model.name}" was chosen${include !== undefined || exclude !== undefined ? ' by include / exclude' : ''}.`,
        `Prune Dense, Conv2D, DepthwiseConv2D or Embedding layers (or registerPrunableLayer() yours, or give your layer class a getPrunableWeights() method), and check include / exclude; the model's layers are: ${describeLayers(layers)}.`,
        ErrorCodes.NO_PRUNABLE_PARAMETERS,
      );
    }
    if (freeze !== undefined) {
      const all = [...entries.values()];
      for (const item of selectorStrings(freeze)) {
        if (!all.some((entry) => matchesFreeze(entry, [item]))) {
          invalid(
            `freeze names "${item}", which is neither a layer nor a weight of model "${model.name}".`,
            `Use layer or weight names; the model's weights are: ${all.map((entry) => entry.view.name).join(', ')}.`,
          );
        }
      }
      for (const entry of all) if (matchesFreeze(entry, freeze)) frozen.add(entry.layerVariable);
    }
  } catch (error) {
    releaseLazyMasks(new Set());
    throw error;
  }
  releaseLazyMasks(new Set(chosen));

  const { loss } = options;
  const lossFunctions =
    loss === undefined
      ? undefined
      : outputLayers(model).map((layer) =>
          resolveLoss(loss, options.fromLogits ?? !isProbabilityLayer(layer)),
        );
  const skipped = skippedWeights(entries.values(), candidates, chosen, prunableLayers);

  const parameters: PrunableParameter[] = [];
  const parameterOf = new Map<LayerVariable, PrunableParameter>();
  const restore: Array<() => void> = [];
  const states = new Map<Layer, CallState>();
  const stateOf = (layer: Layer) => {
    let state = states.get(layer);
    if (!state) {
      state = { depth: 0 };
      states.set(layer, state);
    }
    return state;
  };
  for (const candidate of chosen) {
    const { entry } = candidate;
    const parameter = createPrunableParameter({
      name: candidate.name,
      group: entry.layer.name,
      kind: candidate.kind,
      weight: entry.raw,
      ...(candidate.mask ? { mask: candidate.mask } : {}),
    });
    parameters.push(parameter);
    parameterOf.set(entry.layerVariable, parameter);
    const state = stateOf(entry.layer);
    const raw = entry.raw;
    restore.push(
      patch(entry.layerVariable, 'read', () => (state.depth > 0 ? parameter.effectiveWeight() : raw)),
    );
  }
  const fastDense = options.fastDense ?? true;
  if (fastDense) {
    for (const layer of layers) {
      if (layer.getClassName() === 'Dense' && internals(layer).kernel) stateOf(layer);
    }
  }
  for (const [layer, state] of states) {
    const useFastDense = fastDense && layer.getClassName() === 'Dense' && internals(layer).kernel;
    const call = useFastDense
      ? fastDenseCall(layer, state, parameterOf.get(internals(layer).kernel!))
      : maskedCall(layer, state);
    restore.push(patch(layer, 'call', call));
    patchedLayers.add(layer);
  }
  wrappedModels.add(model);
  return new LayersPrunableModelImpl({
    name: options.name ?? model.name,
    model,
    parameters,
    entries,
    frozen,
    lossFunctions,
    skipped,
    restore,
    layers: [...states.keys()],
  });
}

/**
 * True when `value` is a model wrapped by {@link fromLayersModel} and not yet unwrapped.
 *
 * @param value - anything
 * @returns whether it is a live {@link LayersPrunableModel}
 *
 * @example
 * ```ts
 * if (!isLayersPrunableModel(prunable)) throw new Error('wrap the model first');
 * ```
 */
export function isLayersPrunableModel(value: unknown): value is LayersPrunableModel {
  return value instanceof LayersPrunableModelImpl && !value.disposed;
}
