/**
 * A compact export of a TF.js layers model run with its Dense kernels kept sparse: the layer chain is
 * executed with tfjs-core ops, each Dense layer through `sparseDense` (sparse or dense, whichever was
 * measured faster), so no tfjs-layers and no densified copy is needed in `'sparse'` mode.
 */

import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { quoteText } from '@fineprune/tensor/untrusted';
import type { SparseDenseChoice } from '../inference/break-even';
import {
  prepareSparseDenseFromRows,
  type SparseDenseMode,
  type SparseDenseWeights,
  sparseDense,
} from '../inference/sparse-dense';
import { type CompactSource, compactModelOf, layersFieldsOf } from '../format/layers-artifacts';
import type { CompactModel, ReadCompactOptions } from '../format/read';
import { ACTIVATION_NAMES, activationByName } from './activations';
import { type ChainLayer, layerChain } from './topology';

/** One step of the executor. */
type Step =
  | { kind: 'dense'; name: string; weights: SparseDenseWeights; activation: (x: tf.Tensor) => tf.Tensor }
  | { kind: 'map'; name: string; apply: (x: tf.Tensor) => tf.Tensor };

/**
 * What one Dense layer of a {@link SparseLayersModel} holds and picked.
 *
 * @example
 * ```ts
 * for (const layer of model.denseLayers()) console.log(layer.name, layer.nonzeros, layer.choices);
 * ```
 */
export interface SparseDenseLayerInfo {
  name: string;
  inputSize: number;
  outputSize: number;
  nonzeros: number;
  /** The sparse/dense choices made so far (one per backend and batch bucket). */
  choices: SparseDenseChoice[];
}

/**
 * A layers model from a compact export, run with sparse Dense kernels. Create it with
 * {@link loadSparseLayersModel}; free it with `dispose()`.
 *
 * @example
 * ```ts
 * const model = await loadSparseLayersModel(bytes);
 * const probabilities = model.predict(images); // [B, 10]
 * model.dispose();
 * ```
 */
export class SparseLayersModel {
  private disposed = false;

  constructor(
    private readonly steps: readonly Step[],
    /** The compact export it was made from. */
    readonly compact: CompactModel,
  ) {}

  /**
   * Runs the chain on a batch: `[B, ...inputShape]` float32 in, the last layer's output out (as the
   * stock model's `predict`, with dropout off).
   *
   * @throws FinepruneError `DISPOSED` after `dispose()`; `SHAPE_MISMATCH` when x does not fit
   */
  predict(x: tf.Tensor): tf.Tensor {
    if (this.disposed)
      throw new FinepruneError({
        code: ErrorCodes.DISPOSED,
        message: 'This sparse layers model was disposed.',
        fix: 'Load it again with loadSparseLayersModel().',
      });
    return tf.tidy(() => {
      let y = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
      for (const step of this.steps) {
        y = step.kind === 'dense' ? step.activation(sparseDense(y, step.weights)) : step.apply(y);
      }
      return y;
    });
  }

  /**
   * Times sparse against dense for every Dense layer at batch size `batch` (awaiting results, so it
   * works on every backend, webgpu included); see `SparseDenseWeights.calibrate`.
   */
  async calibrate(batch: number): Promise<void> {
    for (const step of this.steps) if (step.kind === 'dense') await step.weights.calibrate(batch);
  }

  /** Each Dense layer: sizes, kept weights, and what was picked. */
  denseLayers(): SparseDenseLayerInfo[] {
    return this.steps.flatMap((step) =>
      step.kind === 'dense'
        ? [
            {
              name: step.name,
              inputSize: step.weights.matrix.inputSize,
              outputSize: step.weights.matrix.outputSize,
              nonzeros: step.weights.matrix.nonzeros,
              choices: step.weights.choices(),
            },
          ]
        : [],
    );
  }

  /** Frees every layer's tensors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const step of this.steps) if (step.kind === 'dense') step.weights.dispose();
  }
}

/**
 * Options of {@link loadSparseLayersModel}.
 *
 * @example
 * ```ts
 * const options: LoadSparseLayersOptions = { source: 'mlp.fpsparse', mode: 'sparse' };
 * ```
 */
export interface LoadSparseLayersOptions extends ReadCompactOptions {
  /** How each Dense layer picks its product (see `sparseDense`). Default `'auto'`. */
  mode?: SparseDenseMode;
}

function mismatch(source: string, message: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.CHECKPOINT_MISMATCH,
    message: `${source}: ${message}`,
    fix: 'The compact export does not match its own topology: export the model again.',
    details: { file: source },
  });
}

function unsupportedLayer(source: string, layer: ChainLayer, what: string): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.UNSUPPORTED_LAYER,
    message: `${source}: the layer ${quoteText(layer.name)} is ${what}, which the sparse executor does not run (it runs InputLayer, Dense, Flatten, Reshape, Dropout and Activation with the activations ${ACTIVATION_NAMES.join(', ')}).`,
    fix: 'Load it with compactLayersHandler() and tf.loadLayersModel() instead: stock TF.js runs every layer, with the weights densified.',
    details: { file: source, layer: layer.name.slice(0, 200) },
  });
}

function activationOf(source: string, layer: ChainLayer): (x: tf.Tensor) => tf.Tensor {
  const activation = activationByName(layer.config.activation);
  if (activation === undefined)
    throw unsupportedLayer(
      source,
      layer,
      `a ${layer.className} with the activation ${quoteText(layer.config.activation)}`,
    );
  return activation;
}

/** The Dense step of a layer: its kernel's rows and its bias, checked against its config. */
function denseStep(compact: CompactModel, layer: ChainLayer, source: string, mode: SparseDenseMode): Step {
  const names = new Set(compact.tensors.map((tensor) => tensor.name));
  const kernelName = `${layer.name}/kernel`;
  if (!names.has(kernelName))
    throw mismatch(source, `the Dense layer ${quoteText(layer.name)} has no tensor ${quoteText(kernelName)}`);
  const kernel = compact.tensor(kernelName);
  const units = layer.config.units;
  if (
    !kernel.isMatrix ||
    kernel.shape.length !== 2 ||
    kernel.shape[1] !== units ||
    kernel.entry.channelAxis !== 1
  )
    throw mismatch(
      source,
      `the kernel of ${quoteText(layer.name)} is [${kernel.shape}], not [inputs, ${String(units)}] with channels last`,
    );
  const useBias = layer.config.use_bias !== false;
  const biasName = `${layer.name}/bias`;
  if (useBias && !names.has(biasName))
    throw mismatch(source, `the Dense layer ${quoteText(layer.name)} has no tensor ${quoteText(biasName)}`);
  const activation = activationOf(source, layer);
  let bias: tf.Tensor1D | undefined;
  if (useBias) {
    const biasTensor = compact.tensor(biasName);
    if (biasTensor.shape.length !== 1 || biasTensor.shape[0] !== units)
      throw mismatch(
        source,
        `the bias of ${quoteText(layer.name)} is [${biasTensor.shape}], not [${String(units)}]`,
      );
    bias = tf.tensor1d(biasTensor.dense(), 'float32');
  }
  try {
    const weights = prepareSparseDenseFromRows(kernel.rows(), { ...(bias ? { bias } : {}), mode });
    return { kind: 'dense', name: layer.name, weights, activation };
  } finally {
    bias?.dispose();
  }
}

/** The step of a layer without weights. */
function mapStep(layer: ChainLayer, source: string): Step | undefined {
  switch (layer.className) {
    case 'InputLayer':
    case 'Dropout':
      return undefined;
    case 'Activation':
      return { kind: 'map', name: layer.name, apply: activationOf(source, layer) };
    case 'Flatten':
      return { kind: 'map', name: layer.name, apply: (x) => tf.reshape(x, [x.shape[0]!, -1]) };
    case 'Reshape': {
      const target = layer.config.target_shape;
      if (
        !Array.isArray(target) ||
        !target.every((size) => Number.isSafeInteger(size) && (size as number) >= -1)
      )
        throw unsupportedLayer(source, layer, 'a Reshape without a target_shape');
      return {
        kind: 'map',
        name: layer.name,
        apply: (x) => tf.reshape(x, [x.shape[0]!, ...(target as number[])]),
      };
    }
    default:
      throw unsupportedLayer(source, layer, `a ${quoteText(layer.className)} layer`);
  }
}

/**
 * Loads a compact export of a TF.js layers model for inference with its Dense kernels kept sparse:
 * each Dense layer becomes a `sparseDense` product (in `'auto'` mode timed against the dense product
 * on first use per batch bucket; `'sparse'` keeps no dense copy), the other layers run as tfjs-core
 * ops. Runs chains of InputLayer, Dense, Flatten, Reshape, Dropout (off) and Activation; anything
 * else is refused with a typed error pointing at {@link compactLayersHandler}. Outputs equal those of
 * the stock model loaded from the same file (float32 sums in another order: within about 1e-6
 * relative).
 *
 * @param source - the file bytes, or a model read already
 * @param options - `source` name, `maxDenseBytes`, `mode`
 * @returns the model (dispose it when done)
 * @throws FinepruneError `CHECKPOINT_CORRUPT` / `CHECKPOINT_MISMATCH` for a damaged file or weights that
 *   do not fit the topology; `UNSUPPORTED_MODEL` / `UNSUPPORTED_LAYER` for what the executor does not run
 *
 * @example
 * ```ts
 * const model = await loadSparseLayersModel(bytes, { source: 'mlp.fpsparse' });
 * const logits = model.predict(tf.zeros([1, 784]));
 * console.log(model.denseLayers().map((layer) => layer.choices[0]?.reason));
 * ```
 */
export async function loadSparseLayersModel(
  source: CompactSource,
  options: LoadSparseLayersOptions = {},
): Promise<SparseLayersModel> {
  const name = options.source ?? 'the compact export';
  const compact = await compactModelOf(source, options);
  const chain = layerChain(layersFieldsOf(compact, name).modelTopology, name);
  const steps: Step[] = [];
  try {
    for (const layer of chain) {
      const step =
        layer.className === 'Dense'
          ? denseStep(compact, layer, name, options.mode ?? 'auto')
          : mapStep(layer, name);
      if (step) steps.push(step);
    }
  } catch (error) {
    for (const step of steps) if (step.kind === 'dense') step.weights.dispose();
    throw error;
  }
  return new SparseLayersModel(steps, compact);
}
