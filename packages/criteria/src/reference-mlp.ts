import type { Batch } from '@fineprune/core';
import type { DenseNetwork } from './dense-network';

// Test helper, not exported from the package: the dense network of `denseNetwork()` re-done by hand
// in float64 on plain arrays, with the derivatives written out, so the tests can check what the
// criteria measure against values that share no code with `measure()`.

/** A row-major matrix. */
interface Matrix {
  readonly rows: number;
  readonly columns: number;
  readonly values: Float64Array;
}

/** One layer's effective kernel θ = W ⊙ M [inputs, units] and its bias. */
interface Layer {
  readonly kernel: Matrix;
  readonly bias: Float64Array;
}

/** What the forward pass keeps for the backward pass: every layer's input and the logits. */
interface Trace {
  /** inputs[l] is the input of layer l (inputs[0] = x); the last entry is the logits. */
  readonly inputs: Matrix[];
}

export type ReferenceActivation = 'tanh' | 'linear';

/**
 * A float64 copy of a {@link DenseNetwork}'s effective weights and biases, with its loss, validation
 * error, gradient, Gauss–Newton diagonal, Hessian–gradient product and SynFlow gradient computed
 * from their definitions.
 */
export interface ReferenceMlp {
  /** Mean softmax cross-entropy and error rate of the network on the batch. */
  evaluate(batch: Batch): { loss: number; error: number };
  /** ∂L/∂θ for every kernel: backpropagation of (p − y)/N. */
  gradient(batch: Batch): Float64Array[];
  /**
   * G_kk = (1/N) Σ_n u_nkᵀ (diag p_n − p_n p_nᵀ) u_nk with u_nk = ∂z_n/∂θ_k (Appendix A of
   * Laurent et al.), from the Jacobian of the logits written out one example at a time.
   */
  gaussNewton(batch: Batch): Float64Array[];
  /** H·g by a central difference of float64 gradients along g, step ε. */
  hessianGradient(batch: Batch, epsilon?: number): Float64Array[];
  /** ∂R/∂|θ| with R = 1ᵀ f_{|θ|}(1): every weight and bias replaced by its absolute value, input 1. */
  synflowGradient(): Float64Array[];
  /** The effective kernels θ = W ⊙ M, flattened. */
  readonly thetas: Float64Array[];
}

function matrix(rows: number, columns: number, values = new Float64Array(rows * columns)): Matrix {
  return { rows, columns, values };
}

function readLayers(model: DenseNetwork): Layer[] {
  const variables = new Map(model.trainableVariables().map(({ name, variable }) => [name, variable]));
  return model.parameters().map((parameter) => {
    const [rows, columns] = parameter.shape as [number, number];
    const weight = parameter.weight.dataSync();
    const mask = parameter.mask.dataSync();
    const kernel = matrix(
      rows,
      columns,
      Float64Array.from(weight, (value, index) => value * mask[index]!),
    );
    const bias = Float64Array.from(variables.get(parameter.name.replace('/kernel', '/bias'))!.dataSync());
    return { kernel, bias };
  });
}

function inputsOf(batch: Batch): { x: Matrix; labels: Int32Array; classes?: number } {
  const x = batch.x as { shape: number[]; dataSync(): ArrayLike<number> };
  const y = batch.y as { dataSync(): ArrayLike<number> };
  return {
    x: matrix(x.shape[0]!, x.shape[1]!, Float64Array.from(x.dataSync())),
    labels: Int32Array.from(y.dataSync()),
  };
}

function forward(layers: readonly Layer[], x: Matrix, activation: ReferenceActivation): Trace {
  const inputs = [x];
  layers.forEach(({ kernel, bias }, index) => {
    const input = inputs[index]!;
    const output = matrix(input.rows, kernel.columns);
    const last = index === layers.length - 1;
    for (let n = 0; n < input.rows; n += 1) {
      for (let j = 0; j < kernel.columns; j += 1) {
        let pre = bias[j]!;
        for (let i = 0; i < kernel.rows; i += 1)
          pre += input.values[n * input.columns + i]! * kernel.values[i * kernel.columns + j]!;
        output.values[n * kernel.columns + j] = last || activation === 'linear' ? pre : Math.tanh(pre);
      }
    }
    inputs.push(output);
  });
  return { inputs };
}

function softmaxRow(logits: Matrix, n: number): Float64Array {
  const row = logits.values.subarray(n * logits.columns, (n + 1) * logits.columns);
  const top = Math.max(...row);
  const exps = Float64Array.from(row, (value) => Math.exp(value - top));
  const sum = exps.reduce((total, value) => total + value, 0);
  return exps.map((value) => value / sum);
}

/** Kernel gradients of Σ_n cotangent_nᵀ z_n by backpropagation through tanh (1 − h²) or identity. */
function backward(
  layers: readonly Layer[],
  trace: Trace,
  cotangent: Matrix,
  activation: ReferenceActivation,
): Float64Array[] {
  const gradients: Float64Array[] = [];
  let delta = cotangent; // ∂/∂(pre-activation) of the current layer, [N, units]
  for (let index = layers.length - 1; index >= 0; index -= 1) {
    const { kernel } = layers[index]!;
    const input = trace.inputs[index]!;
    const gradient = new Float64Array(kernel.rows * kernel.columns);
    for (let n = 0; n < input.rows; n += 1)
      for (let i = 0; i < kernel.rows; i += 1)
        for (let j = 0; j < kernel.columns; j += 1)
          gradient[i * kernel.columns + j]! +=
            input.values[n * input.columns + i]! * delta.values[n * delta.columns + j]!;
    gradients.unshift(gradient);
    if (index === 0) break;
    const previous = matrix(input.rows, kernel.rows);
    for (let n = 0; n < input.rows; n += 1) {
      for (let i = 0; i < kernel.rows; i += 1) {
        let sum = 0;
        for (let j = 0; j < kernel.columns; j += 1)
          sum += kernel.values[i * kernel.columns + j]! * delta.values[n * delta.columns + j]!;
        const h = input.values[n * input.columns + i]!;
        previous.values[n * kernel.rows + i] = activation === 'tanh' ? sum * (1 - h * h) : sum;
      }
    }
    delta = previous;
  }
  return gradients;
}

function lossGradient(
  layers: readonly Layer[],
  batch: Batch,
  activation: ReferenceActivation,
): Float64Array[] {
  const { x, labels } = inputsOf(batch);
  const trace = forward(layers, x, activation);
  const logits = trace.inputs.at(-1)!;
  const cotangent = matrix(x.rows, logits.columns);
  for (let n = 0; n < x.rows; n += 1) {
    const p = softmaxRow(logits, n);
    for (let c = 0; c < logits.columns; c += 1)
      cotangent.values[n * logits.columns + c] = (p[c]! - (labels[n] === c ? 1 : 0)) / x.rows; // ∂L/∂z
  }
  return backward(layers, trace, cotangent, activation);
}

/**
 * The Jacobian of example n's logits with respect to each layer's pre-activation, ∂z/∂pre^l as a
 * [units_l, classes] matrix, walked back from the identity at the output layer.
 */
function logitJacobians(layers: readonly Layer[], trace: Trace, n: number, activation: ReferenceActivation) {
  const classes = layers.at(-1)!.kernel.columns;
  let current = matrix(classes, classes);
  for (let c = 0; c < classes; c += 1) current.values[c * classes + c] = 1;
  const jacobians: Matrix[] = [current];
  for (let index = layers.length - 1; index > 0; index -= 1) {
    const { kernel } = layers[index]!;
    const input = trace.inputs[index]!;
    const next = matrix(kernel.rows, classes);
    for (let i = 0; i < kernel.rows; i += 1) {
      const h = input.values[n * input.columns + i]!;
      const slope = activation === 'tanh' ? 1 - h * h : 1;
      for (let c = 0; c < classes; c += 1) {
        let sum = 0;
        for (let j = 0; j < kernel.columns; j += 1)
          sum += kernel.values[i * kernel.columns + j]! * current.values[j * classes + c]!;
        next.values[i * classes + c] = slope * sum;
      }
    }
    jacobians.unshift(next);
    current = next;
  }
  return jacobians;
}

/**
 * Builds the float64 reference of `model` as it is now (weights, masks, biases are copied).
 *
 * @example
 * ```ts
 * const reference = referenceMlp(model, 'tanh');
 * const [g1, g2] = reference.gradient(batch);
 * ```
 */
export function referenceMlp(model: DenseNetwork, activation: ReferenceActivation): ReferenceMlp {
  const layers = readLayers(model);
  return {
    thetas: layers.map(({ kernel }) => kernel.values),
    evaluate(batch) {
      const { x, labels } = inputsOf(batch);
      const logits = forward(layers, x, activation).inputs.at(-1)!;
      let loss = 0;
      let wrong = 0;
      for (let n = 0; n < x.rows; n += 1) {
        const p = softmaxRow(logits, n);
        loss -= Math.log(p[labels[n]!]!) / x.rows; // mean softmax cross-entropy
        const row = Array.from(logits.values.subarray(n * logits.columns, (n + 1) * logits.columns));
        if (row.indexOf(Math.max(...row)) !== labels[n]) wrong += 1;
      }
      return { loss, error: wrong / x.rows };
    },
    gradient: (batch) => lossGradient(layers, batch, activation),
    gaussNewton(batch) {
      const { x } = inputsOf(batch);
      const trace = forward(layers, x, activation);
      const logits = trace.inputs.at(-1)!;
      const result = layers.map(({ kernel }) => new Float64Array(kernel.rows * kernel.columns));
      for (let n = 0; n < x.rows; n += 1) {
        const p = softmaxRow(logits, n);
        const jacobians = logitJacobians(layers, trace, n, activation);
        layers.forEach(({ kernel }, index) => {
          const input = trace.inputs[index]!;
          const jacobian = jacobians[index]!;
          for (let j = 0; j < kernel.columns; j += 1) {
            // u = ∂z/∂pre_j; uᵀ(diag p − ppᵀ)u = Σ_c p_c u_c² − (Σ_c p_c u_c)².
            let weighted = 0;
            let mean = 0;
            for (let c = 0; c < p.length; c += 1) {
              const u = jacobian.values[j * p.length + c]!;
              weighted += p[c]! * u * u;
              mean += p[c]! * u;
            }
            const curvature = weighted - mean * mean;
            for (let i = 0; i < kernel.rows; i += 1) {
              const a = input.values[n * input.columns + i]!; // ∂pre_j/∂θ_ij = a_i
              result[index]![i * kernel.columns + j]! += (a * a * curvature) / x.rows;
            }
          }
        });
      }
      return result;
    },
    hessianGradient(batch, epsilon = 1e-5) {
      const g = lossGradient(layers, batch, activation);
      const shifted = (sign: number) =>
        lossGradient(
          layers.map(({ kernel, bias }, index) => ({
            bias,
            kernel: matrix(
              kernel.rows,
              kernel.columns,
              kernel.values.map((value, k) => value + sign * epsilon * g[index]![k]!),
            ),
          })),
          batch,
          activation,
        );
      const plus = shifted(1);
      const minus = shifted(-1);
      return plus.map((values, index) =>
        values.map((value, k) => (value - minus[index]![k]!) / (2 * epsilon)),
      );
    },
    synflowGradient() {
      const positive = layers.map(({ kernel, bias }) => ({
        kernel: matrix(kernel.rows, kernel.columns, kernel.values.map(Math.abs)),
        bias: bias.map(Math.abs),
      }));
      const ones = matrix(1, layers[0]!.kernel.rows, new Float64Array(layers[0]!.kernel.rows).fill(1));
      const trace = forward(positive, ones, activation);
      const classes = layers.at(-1)!.kernel.columns;
      return backward(positive, trace, matrix(1, classes, new Float64Array(classes).fill(1)), activation);
    },
  };
}
