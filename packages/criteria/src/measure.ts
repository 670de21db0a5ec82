import * as tf from '@tensorflow/tfjs-core';
import type { Batch, ModelOutput, PrunableModel, PrunableParameter } from '@fineprune/core';
import { addMany, dense } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { createRandom, type RandomSource } from '@fineprune/tensor/random';
import { type DenseProduct, isDenseHookModel } from './dense-network';

/**
 * How the Gauss–Newton diagonal of a softmax cross-entropy loss is measured.
 *
 * - `exact`: G = (1/N) Σᵢ Jᵢᵀ H_out,i Jᵢ with H_out = diag(p) − ppᵀ (Appendix A), using the
 *   factorisation H_out = Σ_c q_c q_cᵀ, q_c = √p_c (e_c − p): one backward pass per class, and
 *   G_kk = (1/N) Σᵢ Σ_c (Jᵢᵀ q_{i,c})_k². Cost: K backward passes (K classes) per batch.
 * - `sampled`: one label ŷᵢ ~ softmax(f(xᵢ)) per example, G_kk ≈ (1/N) Σᵢ (∂ℓ(f(xᵢ), ŷᵢ)/∂θ_k)².
 *   Unbiased (E[(p − e_ŷ)(p − e_ŷ)ᵀ] = diag(p) − ppᵀ), noisier. Cost: one backward pass per batch.
 *
 * Both need per-example gradients: on a {@link DenseHookModel} they come from each layer's input
 * `a` and output gradient `δ` as (a²)ᵀ(δ²) (no extra passes); on any other model each example is
 * run on its own (N·K or N backward passes of one example).
 *
 * @example
 * ```ts
 * const method: GaussNewtonMethod = 'sampled';
 * ```
 */
export type GaussNewtonMethod = 'exact' | 'sampled';

/**
 * What a criterion needs measured on data.
 *
 * @example
 * ```ts
 * const needs: MeasurementNeeds = { gradient: true, gaussNewton: true }; // QM, Eq. 5
 * ```
 */
export interface MeasurementNeeds {
  /** ∂L/∂θ, the mean gradient over the scoring examples (LM, QM). */
  readonly gradient?: boolean;
  /** The Gauss–Newton diagonal G_kk (OBD, QM). */
  readonly gaussNewton?: boolean;
  /** The Hessian–gradient product H·g, by a central difference of gradients (GraSP). */
  readonly hessianGradient?: boolean;
  /** ∂R/∂θ of SynFlow's data-free objective R = 1ᵀ f_{|θ|}(1). */
  readonly synflow?: boolean;
}

/**
 * Options of {@link measure}.
 *
 * @example
 * ```ts
 * const options: MeasureOptions = { gaussNewton: 'sampled', random: createRandom(1) };
 * ```
 */
export interface MeasureOptions {
  /** The parameters to measure; default every prunable parameter of the model. */
  parameters?: readonly PrunableParameter[];
  /** Gauss–Newton method; default `exact`. */
  gaussNewton?: GaussNewtonMethod;
  /** Random source for the sampled Gauss–Newton labels; default `createRandom(0)`. */
  random?: RandomSource;
}

/**
 * Tensors measured on data, by parameter name (each shaped like the weight). Owned by this object:
 * call {@link Measurements.dispose} when done.
 *
 * @example
 * ```ts
 * const measured = await measure(model, batches, { gradient: true });
 * measured.gradient?.get('fc1/kernel')?.print();
 * measured.dispose();
 * ```
 */
export interface Measurements {
  /** Mean loss L(θ) over the scoring examples (NaN when nothing needed the loss). */
  readonly loss: number;
  /** Number of scoring examples. */
  readonly examples: number;
  readonly gradient?: ReadonlyMap<string, tf.Tensor>;
  readonly gaussNewton?: ReadonlyMap<string, tf.Tensor>;
  readonly hessianGradient?: ReadonlyMap<string, tf.Tensor>;
  readonly synflow?: ReadonlyMap<string, tf.Tensor>;
  /** Frees every tensor. */
  dispose(): void;
}

/** A running sum of one tensor per parameter. */
class Accumulator {
  readonly sums = new Map<string, tf.Tensor>();

  add(name: string, value: tf.Tensor): void {
    const previous = this.sums.get(name);
    this.sums.set(name, tf.keep(previous ? tf.add(previous, value) : value.clone()));
    previous?.dispose();
  }

  /** The sums divided by `count`; the sums are freed. */
  mean(count: number): Map<string, tf.Tensor> {
    const means = new Map<string, tf.Tensor>();
    for (const [name, sum] of this.sums) {
      means.set(
        name,
        tf.tidy(() => tf.div(sum, count)),
      );
      sum.dispose();
    }
    this.sums.clear();
    return means;
  }

  dispose(): void {
    for (const sum of this.sums.values()) sum.dispose();
    this.sums.clear();
  }
}

function logitsOf(outputs: ModelOutput): tf.Tensor2D {
  const logits = (Array.isArray(outputs) ? outputs[0] : outputs) as tf.Tensor;
  if (!logits || logits.rank !== 2) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `The Gauss–Newton measurement needs logits [batch, classes], but the model returned [${logits?.shape}].`,
      fix: 'Use a model whose first output is the logits of a softmax cross-entropy loss.',
    });
  }
  return logits as tf.Tensor2D;
}

function batchSize(batch: Batch): number {
  const y = (Array.isArray(batch.y) ? batch.y[0] : batch.y) as tf.Tensor | undefined;
  const x = batch.x instanceof tf.Tensor ? batch.x : undefined;
  const count = y?.shape[0] ?? x?.shape[0];
  if (count === undefined || (x !== undefined && x.shape[0] !== count)) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `A scoring batch has ${x?.shape[0]} inputs but ${y?.shape[0]} targets.`,
      fix: 'Give as many targets as inputs in every batch.',
      details: { inputShape: x?.shape, targetShape: y?.shape },
    });
  }
  return count;
}

/** Wraps an error of the model's forward or backward pass. */
function passFailed(error: unknown, what: string, parameters: readonly PrunableParameter[]): FinepruneError {
  if (FinepruneError.is(error)) return error;
  return new FinepruneError({
    code: ErrorCodes.SHAPE_MISMATCH,
    message: `The ${what} failed while measuring parameter "${parameters[0]?.name}" and the others: ${(error as Error).message}`,
    fix: 'Check that the scoring batches fit the model (input shape, label format).',
    cause: error,
    details: { parameter: parameters[0]?.name },
  });
}

async function nonFinite(
  loss: number,
  grads: ReadonlyMap<string, tf.Tensor>,
  parameters: readonly PrunableParameter[],
  batchIndex: number,
): Promise<never> {
  let parameter = parameters[0]?.name;
  for (const candidate of parameters) {
    const gradient = grads.get(candidate.name);
    if (!gradient) continue;
    const bad = tf.tidy(() => tf.any(tf.logicalNot(tf.isFinite(gradient))));
    const flag = (await bad.data())[0];
    bad.dispose();
    if (flag) {
      parameter = candidate.name;
      break;
    }
  }
  throw new FinepruneError({
    code: ErrorCodes.NON_FINITE,
    message: `The loss became ${loss} on scoring batch ${batchIndex}; the gradient of parameter "${parameter}" is not finite.`,
    fix: 'Check the data for NaN or infinite values, and the model for a diverged weight (lower the learning rate).',
    details: { parameter, batch: batchIndex, loss },
  });
}

/** Σ_b n_b ∇L_b and Σ_b n_b L_b over the batches. */
async function measureGradient(
  model: PrunableModel,
  batches: readonly Batch[],
  parameters: readonly PrunableParameter[],
): Promise<{ gradient: Map<string, tf.Tensor>; loss: number; examples: number }> {
  const sums = new Accumulator();
  let lossSum = 0;
  let examples = 0;
  try {
    for (const [batchIndex, batch] of batches.entries()) {
      const count = batchSize(batch);
      let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
      try {
        result = tf.variableGrads(
          () => model.loss(model.forward(batch.x, { training: false }), batch),
          parameters.map((parameter) => parameter.weight),
        );
      } catch (error) {
        throw passFailed(error, 'forward or backward pass', parameters);
      }
      const { value, grads } = result;
      const loss = (await value.data())[0]!;
      value.dispose();
      const byName = new Map(parameters.map((parameter) => [parameter.name, grads[parameter.weight.name]!]));
      try {
        if (!Number.isFinite(loss)) await nonFinite(loss, byName, parameters, batchIndex);
        tf.tidy(() => {
          for (const [name, gradient] of byName) sums.add(name, tf.mul(gradient, count));
        });
      } finally {
        tf.dispose(Object.values(grads));
      }
      lossSum += loss * count;
      examples += count;
    }
  } catch (error) {
    sums.dispose();
    throw error;
  }
  return { gradient: sums.mean(examples), loss: lossSum / examples, examples };
}

/** Output cotangents [n, K] whose outer products sum (or average) to H_out = diag(p) − ppᵀ. */
function cotangents(
  probabilities: Float32Array,
  count: number,
  classes: number,
  method: GaussNewtonMethod,
  random: RandomSource,
): tf.Tensor2D[] {
  if (method === 'sampled') {
    // v = p − e_ŷ with ŷ ~ Cat(p): E[v vᵀ] = diag(p) − ppᵀ (unbiased).
    const values = new Float32Array(count * classes);
    for (let row = 0; row < count; row += 1) {
      const draw = random.next();
      let cumulative = 0;
      let label = classes - 1;
      for (let c = 0; c < classes; c += 1) {
        cumulative += probabilities[row * classes + c]!;
        if (draw < cumulative) {
          label = c;
          break;
        }
      }
      for (let c = 0; c < classes; c += 1) values[row * classes + c] = probabilities[row * classes + c]!;
      values[row * classes + label]! -= 1;
    }
    return [tf.tensor2d(values, [count, classes])];
  }
  // q_c = √p_c (e_c − p): Σ_c q_c q_cᵀ = diag(p) − ppᵀ (Appendix A, H_out of the softmax cross-entropy).
  const list: tf.Tensor2D[] = [];
  for (let c = 0; c < classes; c += 1) {
    const values = new Float32Array(count * classes);
    for (let row = 0; row < count; row += 1) {
      const pc = probabilities[row * classes + c]!;
      const scale = Math.sqrt(pc);
      for (let k = 0; k < classes; k += 1)
        values[row * classes + k] = -scale * probabilities[row * classes + k]!;
      values[row * classes + c]! += scale;
    }
    list.push(tf.tensor2d(values, [count, classes]));
  }
  return list;
}

/** An identity whose gradient function hands the incoming gradient δ to `record`. */
function probe(z: tf.Tensor2D, record: (delta: tf.Tensor2D) => void): tf.Tensor2D {
  const op = tf.customGrad((input) => ({
    value: tf.clone(input as tf.Tensor),
    gradFunc: (dy) => {
      record(dy as tf.Tensor2D);
      return dy;
    },
  }));
  return op(z) as tf.Tensor2D;
}

function transposeSquare(input: tf.Tensor2D): tf.Tensor2D {
  return tf.transpose(tf.square(input));
}

/** Σ over examples and cotangents of the squared per-example gradients, for a {@link DenseHookModel}. */
function gaussNewtonDense(
  model: PrunableModel & { forwardWith(x: tf.Tensor, product: DenseProduct): ModelOutput },
  x: tf.Tensor,
  vectors: readonly tf.Tensor2D[],
  parameters: readonly PrunableParameter[],
  sums: Accumulator,
): void {
  const wanted = new Set(parameters.map((parameter) => parameter.name));
  for (const vector of vectors) {
    const squaredInputs = new Map<string, tf.Tensor2D>();
    try {
      const product: DenseProduct = (parameter, input, weight) => {
        const z = dense(input, weight);
        if (!wanted.has(parameter.name)) return z;
        squaredInputs.get(parameter.name)?.dispose();
        squaredInputs.set(parameter.name, tf.keep(transposeSquare(input)));
        // Per-example gradient of a dense kernel is aᵢ ⊗ δᵢ, so Σᵢ (aᵢ ⊗ δᵢ)² = (a²)ᵀ(δ²).
        return probe(z, (delta) =>
          sums.add(parameter.name, tf.matMul(squaredInputs.get(parameter.name)!, tf.square(delta))),
        );
      };
      const gradient = tf.grad((input: tf.Tensor) =>
        tf.sum(tf.mul(logitsOf(model.forwardWith(input, product)), vector)),
      );
      gradient(x).dispose();
    } finally {
      for (const tensor of squaredInputs.values()) tensor.dispose();
    }
  }
}

/** The same sums, one example at a time, for any model. */
function gaussNewtonLoop(
  model: PrunableModel,
  x: tf.Tensor,
  vectors: readonly tf.Tensor2D[],
  parameters: readonly PrunableParameter[],
  sums: Accumulator,
): void {
  const count = x.shape[0]!;
  for (let row = 0; row < count; row += 1) {
    tf.tidy(() => {
      const example = tf.slice(x, [row], [1]);
      for (const vector of vectors) {
        const cotangent = tf.slice(vector, [row, 0], [1, -1]);
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(logitsOf(model.forward(example, { training: false })), cotangent)),
          parameters.map((parameter) => parameter.weight),
        );
        value.dispose();
        for (const parameter of parameters)
          sums.add(parameter.name, tf.square(grads[parameter.weight.name]!));
      }
    });
  }
}

async function measureGaussNewton(
  model: PrunableModel,
  batches: readonly Batch[],
  parameters: readonly PrunableParameter[],
  method: GaussNewtonMethod,
  random: RandomSource,
): Promise<Map<string, tf.Tensor>> {
  const sums = new Accumulator();
  let examples = 0;
  try {
    for (const batch of batches) {
      const count = batchSize(batch);
      if (!(batch.x instanceof tf.Tensor)) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: 'The Gauss–Newton measurement needs batches whose x is one tensor.',
          fix: 'Give scoring batches with a single input tensor.',
        });
      }
      const x = batch.x;
      let probabilities: Float32Array;
      let classes: number;
      try {
        const p = tf.tidy(() => tf.softmax(logitsOf(model.forward(x, { training: false }))));
        classes = p.shape[1]!;
        probabilities = (await p.data()) as Float32Array;
        p.dispose();
      } catch (error) {
        throw passFailed(error, 'forward pass', parameters);
      }
      const vectors = cotangents(probabilities, count, classes, method, random);
      try {
        if (isDenseHookModel(model)) gaussNewtonDense(model, x, vectors, parameters, sums);
        else gaussNewtonLoop(model, x, vectors, parameters, sums);
      } catch (error) {
        throw passFailed(error, 'Gauss–Newton backward pass', parameters);
      } finally {
        tf.dispose(vectors);
      }
      examples += count;
    }
  } catch (error) {
    sums.dispose();
    throw error;
  }
  const result = sums.mean(examples);
  // A parameter that no product touched (a model that skips the hook) would be missing.
  for (const parameter of parameters) {
    if (!result.has(parameter.name)) {
      tf.dispose([...result.values()]);
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `The Gauss–Newton pass produced nothing for parameter "${parameter.name}".`,
        fix: 'Make forwardWith() compute every prunable product with the product it is given.',
        details: { parameter: parameter.name },
      });
    }
  }
  return result;
}

/**
 * H·g by a central difference of gradients along ĝ: (∇L(θ + εĝ) − ∇L(θ − εĝ)) / 2ε, with
 * ε‖ĝ‖ = 10⁻³‖θ‖. TF.js cannot differentiate twice through exp, tanh, sigmoid, softmax or
 * custom-gradient ops (their gradients read detached saved outputs), so double backprop would be
 * silently wrong here; the difference is exact up to O(ε²) and float32 rounding.
 */
async function measureHessianGradient(
  model: PrunableModel,
  batches: readonly Batch[],
  parameters: readonly PrunableParameter[],
  gradient: ReadonlyMap<string, tf.Tensor>,
): Promise<Map<string, tf.Tensor>> {
  const norms = tf.tidy(() => {
    const squares = (tensors: tf.Tensor[]) => addMany(tensors.map((tensor) => tf.sum(tf.square(tensor))));
    return tf.sqrt(
      tf.stack([
        squares(parameters.map((parameter) => tf.mul(parameter.weight, parameter.mask))),
        squares(parameters.map((parameter) => gradient.get(parameter.name)!)),
      ]),
    );
  });
  const [thetaNorm, gradientNorm] = (await norms.data()) as Float32Array;
  norms.dispose();
  if (!(gradientNorm! > 0)) {
    return new Map(parameters.map((parameter) => [parameter.name, tf.zerosLike(parameter.weight)]));
  }
  const epsilon = (1e-3 * Math.max(thetaNorm!, 1e-3)) / gradientNorm!;
  const saved = parameters.map((parameter) => tf.keep(parameter.weight.clone()));
  const shift = (scale: number) =>
    tf.tidy(() => {
      parameters.forEach((parameter, index) => {
        parameter.weight.assign(tf.add(saved[index]!, tf.mul(gradient.get(parameter.name)!, scale)));
      });
    });
  let plus: Map<string, tf.Tensor> | undefined;
  let minus: Map<string, tf.Tensor> | undefined;
  try {
    shift(epsilon);
    plus = (await measureGradient(model, batches, parameters)).gradient;
    shift(-epsilon);
    minus = (await measureGradient(model, batches, parameters)).gradient;
    const result = new Map<string, tf.Tensor>();
    for (const parameter of parameters) {
      result.set(
        parameter.name,
        tf.tidy(() => tf.div(tf.sub(plus!.get(parameter.name)!, minus!.get(parameter.name)!), 2 * epsilon)),
      );
    }
    return result;
  } finally {
    for (const [index, parameter] of parameters.entries()) parameter.weight.assign(saved[index]!);
    tf.dispose(saved);
    if (plus) tf.dispose([...plus.values()]);
    if (minus) tf.dispose([...minus.values()]);
  }
}

/** SynFlow: every trainable variable replaced by |v|, input of ones, R = Σ f(1), ∂R/∂θ. */
function measureSynflow(
  model: PrunableModel,
  batch: Batch,
  parameters: readonly PrunableParameter[],
): Map<string, tf.Tensor> {
  if (!(batch.x instanceof tf.Tensor)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'SynFlow needs a batch whose x is one tensor (for the shape of its input of ones).',
      fix: 'Give scoring batches with a single input tensor.',
    });
  }
  const variables = model.trainableVariables();
  const saved = variables.map(({ variable }) => tf.keep(variable.clone()));
  try {
    tf.tidy(() => {
      for (const { variable } of variables) variable.assign(tf.abs(variable));
    });
    const ones = tf.ones([1, ...batch.x.shape.slice(1)]);
    try {
      const { value, grads } = tf.variableGrads(
        () => {
          const outputs = model.forward(ones, { training: false });
          return tf.sum(Array.isArray(outputs) ? outputs[0]! : outputs) as tf.Scalar; // R = 1ᵀ f_{|θ|}(1)
        },
        parameters.map((parameter) => parameter.weight),
      );
      value.dispose();
      return new Map(parameters.map((parameter) => [parameter.name, grads[parameter.weight.name]!]));
    } finally {
      ones.dispose();
    }
  } catch (error) {
    throw passFailed(error, 'SynFlow pass', parameters);
  } finally {
    for (const [index, { variable }] of variables.entries()) variable.assign(saved[index]!);
    tf.dispose(saved);
  }
}

/**
 * Measures what a criterion needs on scoring batches: the mean gradient ∂L/∂θ, the Gauss–Newton
 * diagonal, the Hessian–gradient product, SynFlow's gradient. The batches stay the caller's.
 * The model runs in inference mode with its masks applied, so everything is measured at the
 * effective weights θ ⊙ m.
 *
 * @param model - the model; its forward returns logits when the Gauss–Newton diagonal is needed
 * @param batches - the scoring examples (Appendix B.2 uses 1,000 fresh examples per stage)
 * @param needs - what to measure
 * @param options - parameters to measure, Gauss–Newton method, random source
 * @returns the measurements; dispose them when done
 * @throws FinepruneError `NON_FINITE` when the loss is not finite (naming the parameter),
 *   `SHAPE_MISMATCH` when a batch does not fit the model, `INVALID_ARGUMENT` for no batch
 *
 * @example
 * ```ts
 * const measured = await measure(model, [batch], { gradient: true, gaussNewton: true }, { gaussNewton: 'exact' });
 * measured.dispose();
 * ```
 */
export async function measure(
  model: PrunableModel,
  batches: Iterable<Batch>,
  needs: MeasurementNeeds,
  options: MeasureOptions = {},
): Promise<Measurements> {
  const parameters = options.parameters ?? model.parameters();
  const list = [...batches];
  const dataNeeded = needs.gradient || needs.gaussNewton || needs.hessianGradient;
  if (list.length === 0 && (dataNeeded || needs.synflow)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: 'No scoring batch was given.',
      fix: 'Give at least one batch of examples (the paper uses 1,000 examples per stage).',
    });
  }
  const owned: Array<Map<string, tf.Tensor>> = [];
  try {
    let loss = Number.NaN;
    let examples = 0;
    let gradient: Map<string, tf.Tensor> | undefined;
    if (needs.gradient || needs.hessianGradient) {
      ({ gradient, loss, examples } = await measureGradient(model, list, parameters));
      owned.push(gradient);
    } else {
      for (const batch of list) examples += batchSize(batch);
    }
    let gaussNewton: Map<string, tf.Tensor> | undefined;
    if (needs.gaussNewton) {
      gaussNewton = await measureGaussNewton(
        model,
        list,
        parameters,
        options.gaussNewton ?? 'exact',
        options.random ?? createRandom(0),
      );
      owned.push(gaussNewton);
    }
    let hessianGradient: Map<string, tf.Tensor> | undefined;
    if (needs.hessianGradient) {
      hessianGradient = await measureHessianGradient(model, list, parameters, gradient!);
      owned.push(hessianGradient);
    }
    let synflow: Map<string, tf.Tensor> | undefined;
    if (needs.synflow) {
      synflow = measureSynflow(model, list[0]!, parameters);
      owned.push(synflow);
    }
    if (gradient && !needs.gradient) {
      tf.dispose([...gradient.values()]);
      owned.splice(owned.indexOf(gradient), 1);
      gradient = undefined;
    }
    return {
      loss,
      examples,
      ...(gradient ? { gradient } : {}),
      ...(gaussNewton ? { gaussNewton } : {}),
      ...(hessianGradient ? { hessianGradient } : {}),
      ...(synflow ? { synflow } : {}),
      dispose: () => {
        for (const map of owned) tf.dispose([...map.values()]);
        owned.length = 0;
      },
    };
  } catch (error) {
    for (const map of owned) tf.dispose([...map.values()]);
    throw error;
  }
}
