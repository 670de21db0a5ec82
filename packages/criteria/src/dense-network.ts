import * as tf from '@tensorflow/tfjs-core';
import {
  type Batch,
  createPrunableParameter,
  type ModelInput,
  type ModelOutput,
  type NamedVariable,
  type PrunableModel,
  type PrunableParameter,
  SPEC_VERSION,
} from '@fineprune/core';
import { dense } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { createRandom } from '@fineprune/tensor/random';

/**
 * Computes one prunable product `input · weight` inside a forward pass. A model that lets callers
 * replace this product (see {@link DenseHookModel}) gives the criteria per-example gradients for
 * the price of one backward pass: the Gauss–Newton diagonal of a dense kernel is `(a²)ᵀ(δ²)`.
 *
 * @example
 * ```ts
 * const plain: DenseProduct = (_parameter, input, weight) => dense(input, weight);
 * ```
 */
export type DenseProduct = (
  parameter: PrunableParameter,
  input: tf.Tensor2D,
  weight: tf.Tensor2D,
) => tf.Tensor2D;

/**
 * A {@link PrunableModel} whose prunable parameters are all dense kernels `[inputs, units]` and whose
 * forward pass can run with a caller's {@link DenseProduct}. The Gauss–Newton measurement uses it to
 * read each layer's input `a` and the gradient `δ` at each layer's output; models without it are
 * measured one example at a time (exact, slower).
 *
 * @example
 * ```ts
 * if (isDenseHookModel(model)) {
 *   const logits = model.forwardWith(x, (parameter, input, weight) => dense(input, weight));
 * }
 * ```
 */
export interface DenseHookModel extends PrunableModel {
  /** The forward pass (masked weights, inference mode) with every prunable product computed by `product`. */
  forwardWith(x: ModelInput, product: DenseProduct): ModelOutput;
}

/**
 * True when `model` implements {@link DenseHookModel}.
 *
 * @example
 * ```ts
 * isDenseHookModel(denseNetwork({ units: [4, 3] })); // true
 * ```
 */
export function isDenseHookModel(model: PrunableModel): model is DenseHookModel {
  return typeof (model as Partial<DenseHookModel>).forwardWith === 'function';
}

/**
 * Options of {@link denseNetwork}.
 *
 * @example
 * ```ts
 * const options: DenseNetworkOptions = { units: [784, 300, 100, 10], activation: 'tanh', seed: 0 };
 * ```
 */
export interface DenseNetworkOptions {
  /** Layer widths from input to output, for example `[784, 300, 100, 10]` (at least two). */
  units: readonly number[];
  /** Hidden activation; default `tanh` (the paper's MLP, Appendix B.1). The output is logits. */
  activation?: 'tanh' | 'relu' | 'linear';
  /** Seed of the Glorot-uniform initialisation; default 0. Biases start at 0. */
  seed?: number;
  /** Name for reports; default `mlp-<units>`. */
  name?: string;
}

/**
 * A {@link DenseHookModel} built by {@link denseNetwork}; dispose it when done.
 *
 * @example
 * ```ts
 * const model: DenseNetwork = denseNetwork({ units: [4, 3] });
 * model.dispose();
 * ```
 */
export interface DenseNetwork extends DenseHookModel {
  /** Frees weights, biases and masks. */
  dispose(): void;
}

/**
 * A fully connected classifier (logits out, softmax cross-entropy loss over integer or one-hot
 * labels) that implements {@link DenseHookModel}: the reference model of the loss-modelling paper
 * (an MLP 784-300-100-10 with tanh, Glorot initialisation) and of this package's tests. Kernels are
 * named `fc<i>/kernel` and prunable; biases `fc<i>/bias` are trained, not pruned.
 *
 * @throws FinepruneError `INVALID_ARGUMENT` for fewer than two widths or a width that is not a positive integer
 *
 * @example
 * ```ts
 * const model = denseNetwork({ units: [784, 300, 100, 10], activation: 'tanh', seed: 1 });
 * const logits = model.forward(x, { training: false });
 * model.dispose();
 * ```
 */
export function denseNetwork(options: DenseNetworkOptions): DenseNetwork {
  const units = [...options.units];
  if (units.length < 2 || !units.every((width) => Number.isInteger(width) && width > 0)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `denseNetwork() needs at least two positive integer widths, got [${units}].`,
      fix: 'Pass widths from input to output, for example [784, 300, 100, 10].',
    });
  }
  const activation = options.activation ?? 'tanh';
  const random = createRandom(options.seed ?? 0);
  const kernels: PrunableParameter[] = [];
  const biases: NamedVariable[] = [];
  for (let layer = 0; layer + 1 < units.length; layer += 1) {
    const fanIn = units[layer]!;
    const fanOut = units[layer + 1]!;
    const limit = Math.sqrt(6 / (fanIn + fanOut)); // Glorot & Bengio (2010), uniform
    const values = new Float32Array(fanIn * fanOut);
    for (let index = 0; index < values.length; index += 1) values[index] = (2 * random.next() - 1) * limit;
    const weight = tf.tidy(() => tf.variable(tf.tensor2d(values, [fanIn, fanOut]), true));
    const name = `fc${layer + 1}`;
    kernels.push(createPrunableParameter({ name: `${name}/kernel`, group: name, kind: 'dense', weight }));
    biases.push({ name: `${name}/bias`, variable: tf.tidy(() => tf.variable(tf.zeros([fanOut]), true)) });
  }
  const classes = units.at(-1)!;
  const plain: DenseProduct = (_parameter, input, weight) => dense(input, weight);

  const forwardWith = (x: ModelInput, product: DenseProduct): tf.Tensor2D => {
    if (!(x instanceof tf.Tensor) || x.rank !== 2 || x.shape[1] !== units[0]) {
      const shape = x instanceof tf.Tensor ? `[${x.shape}]` : 'not a single tensor';
      throw new FinepruneError({
        code: ErrorCodes.SHAPE_MISMATCH,
        message: `Parameter "${kernels[0]!.name}" expects inputs [batch, ${units[0]}], but the batch is ${shape}.`,
        fix: `Give the model inputs of shape [batch, ${units[0]}].`,
        details: { parameter: kernels[0]!.name, shape: x instanceof tf.Tensor ? x.shape : null },
      });
    }
    return tf.tidy(() => {
      let hidden = x as tf.Tensor2D;
      kernels.forEach((parameter, index) => {
        const pre = tf.add(
          product(parameter, hidden, parameter.effectiveWeight() as tf.Tensor2D),
          biases[index]!.variable,
        ) as tf.Tensor2D;
        const last = index === kernels.length - 1;
        hidden = last || activation === 'linear' ? pre : activation === 'tanh' ? tf.tanh(pre) : tf.relu(pre);
      });
      return hidden;
    });
  };

  let disposed = false;
  const live = () => {
    if (disposed) {
      throw new FinepruneError({
        code: ErrorCodes.DISPOSED,
        message: 'The dense network was disposed.',
        fix: 'Build a new one with denseNetwork().',
      });
    }
  };
  return {
    specVersion: SPEC_VERSION,
    name: options.name ?? `mlp-${units.join('-')}`,
    parameters: () => {
      live();
      return kernels;
    },
    forward: (x) => {
      live();
      return forwardWith(x, plain);
    },
    forwardWith: (x, product) => {
      live();
      return forwardWith(x, product);
    },
    loss: (outputs: ModelOutput, batch: Batch) =>
      tf.tidy(() => {
        const logits = (Array.isArray(outputs) ? outputs[0] : outputs) as tf.Tensor2D;
        const labels = (Array.isArray(batch.y) ? batch.y[0] : batch.y) as tf.Tensor;
        const target =
          labels.rank === 1 ? tf.oneHot(tf.cast(labels, 'int32'), classes) : tf.cast(labels, 'float32');
        if (target.shape[0] !== logits.shape[0] || target.shape[1] !== classes) {
          throw new FinepruneError({
            code: ErrorCodes.SHAPE_MISMATCH,
            message: `The labels [${labels.shape}] do not fit the logits [${logits.shape}].`,
            fix: `Give one integer label per example, or one-hot rows of ${classes} classes.`,
          });
        }
        // L = −(1/N) Σ_i log softmax(f(x_i))_{t_i}: the mean softmax cross-entropy.
        return tf.neg(tf.mean(tf.sum(tf.mul(target, tf.logSoftmax(logits)), -1))) as tf.Scalar;
      }),
    trainableVariables: () => {
      live();
      return kernels.flatMap((parameter, index) => [
        { name: parameter.name, variable: parameter.weight },
        biases[index]!,
      ]);
    },
    frozenVariables: () => [],
    dispose: () => {
      if (disposed) return;
      disposed = true;
      for (const parameter of kernels) {
        parameter.weight.dispose();
        parameter.mask.dispose();
      }
      for (const bias of biases) bias.variable.dispose();
    },
  };
}
