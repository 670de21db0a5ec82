import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamStep, fusedAdamStepHostSlots } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import type { JsonObject, NamedVariable } from './types';

/** A learning rate: a number, or a function of the step. */
export type LearningRate = number | ((step: number) => number);

/** One variable's gradient for an optimizer step. */
export interface GradientEntry {
  readonly name: string;
  readonly variable: tf.Variable;
  readonly gradient: tf.Tensor;
}

/**
 * Float32 values with their shape, held in JavaScript memory (not a tensor).
 *
 * @example
 * ```ts
 * const slot: HostArray = { shape: [2, 3], values: new Float32Array(6) };
 * ```
 */
export interface HostArray {
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** A loaded slot must belong to a variable of the model (its name starts with one's prefix). */
function checkSlotOwner(name: string, prefixOk: (name: string) => boolean): void {
  if (!prefixOk(name)) {
    throw new FinepruneError({
      code: ErrorCodes.CHECKPOINT_MISMATCH,
      message: `Optimizer state names slot "${name}", which belongs to no variable of the model.`,
      fix: 'Load the checkpoint into the model it was saved from.',
    });
  }
}

/**
 * An optimizer with state that can be saved and restored bit for bit. fineprune runs its own
 * optimizers (rather than `tf.train.*`) so that a resumed run repeats an uninterrupted one exactly.
 *
 * @example
 * ```ts
 * const optimizer = adam({ learningRate: 1e-3 });
 * optimizer.apply([{ name: 'w', variable: w, gradient: g }], step);
 * ```
 */
export interface Optimizer {
  readonly id: string;
  /** The learning rate used at `step`. */
  learningRate(step: number): number;
  /** Updates each variable with its gradient. `step` is the number of steps completed before this one. */
  apply(entries: readonly GradientEntry[], step: number): void;
  /** The optimizer's slots, by `variableName/slot`. The tensors stay owned by the optimizer. */
  state(): Record<string, tf.Tensor>;
  /**
   * The slots that live in JavaScript memory (Adam's `slots: 'host'`), by `variableName/slot`, as
   * they are: no tensor is made, so a checkpoint writer can stream them without staging 1.3 GB
   * (BERT-base) on the wasm heap. The arrays are the live slots: read them before the next step.
   * Optimizers whose slots are tensors leave it out.
   */
  hostState?(): Record<string, HostArray>;
  /** Restores slots saved by {@link state} (copies them). */
  loadState(state: Record<string, tf.Tensor>, variables: readonly NamedVariable[]): void;
  /** Options as JSON (a function learning rate is reported as `"function"`). */
  toConfig(): JsonObject;
  /** Frees the slots. */
  dispose(): void;
}

function checkLearningRate(learningRate: LearningRate, what: string): void {
  if (typeof learningRate === 'number' && !(learningRate > 0 && Number.isFinite(learningRate))) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The ${what} learning rate must be a positive finite number, got ${learningRate}.`,
      fix: 'Pass a learning rate greater than 0, for example 1e-3.',
    });
  }
}

function resolve(learningRate: LearningRate, step: number): number {
  if (typeof learningRate === 'number') return learningRate;
  const value = learningRate(step);
  if (!(value > 0 && Number.isFinite(value))) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `The learning-rate function returned ${value} at step ${step}; a learning rate must be a positive finite number.`,
      fix: 'Make the learning-rate function return a value greater than 0 at every step (a floor such as Math.max(lr, 1e-8)).',
      details: { step, learningRate: value },
    });
  }
  return value;
}

class SlotStore {
  private readonly slots = new Map<string, tf.Variable>();

  get(name: string, like: tf.Tensor): tf.Variable {
    let slot = this.slots.get(name);
    if (!slot) {
      slot = tf.tidy(() => tf.variable(tf.zerosLike(like), false));
      this.slots.set(name, slot);
    }
    return slot;
  }

  entries(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.slots);
  }

  load(state: Record<string, tf.Tensor>, prefixOk: (name: string) => boolean): void {
    this.dispose();
    for (const [name, tensor] of Object.entries(state)) {
      checkSlotOwner(name, prefixOk);
      this.slots.set(
        name,
        tf.tidy(() => tf.variable(tensor.clone(), false)),
      );
    }
  }

  dispose(): void {
    for (const slot of this.slots.values()) slot.dispose();
    this.slots.clear();
  }
}

/** Adam's moments as JavaScript arrays (`slots: 'host'`), exported as tensors on demand. */
class HostSlotStore {
  private readonly slots = new Map<string, Float32Array>();
  /** Tensors made by the last {@link entries} call; freed at the next step, call or dispose. */
  private exported: tf.Tensor[] = [];

  get(name: string, size: number): Float32Array {
    let slot = this.slots.get(name);
    if (!slot) {
      slot = new Float32Array(size);
      this.slots.set(name, slot);
    }
    return slot;
  }

  arrays(shapes: (name: string) => number[]): Record<string, HostArray> {
    const out: Record<string, HostArray> = {};
    for (const [name, values] of this.slots) out[name] = { shape: shapes(name), values };
    return out;
  }

  entries(shapes: (name: string) => number[]): Record<string, tf.Tensor> {
    this.release();
    const out: Record<string, tf.Tensor> = {};
    for (const [name, values] of this.slots) out[name] = tf.tensor(values, shapes(name), 'float32');
    this.exported = Object.values(out);
    return out;
  }

  load(state: Record<string, tf.Tensor>, prefixOk: (name: string) => boolean): void {
    this.dispose();
    for (const [name, tensor] of Object.entries(state)) {
      checkSlotOwner(name, prefixOk);
      this.slots.set(name, Float32Array.from(tensor.dataSync() as Float32Array));
    }
  }

  release(): void {
    tf.dispose(this.exported);
    this.exported = [];
  }

  dispose(): void {
    this.release();
    this.slots.clear();
  }
}

function slotOwnerCheck(variables: readonly NamedVariable[], slotNames: readonly string[]) {
  const byName = new Map(variables.map((entry) => [entry.name, entry.variable]));
  return (slot: string) => {
    const cut = slot.lastIndexOf('/');
    const owner = byName.get(slot.slice(0, cut));
    return owner !== undefined && slotNames.includes(slot.slice(cut + 1));
  };
}

/** Options of {@link sgd}. */
export interface SgdOptions {
  learningRate: LearningRate;
  /** Heavy-ball momentum in [0, 1); 0 (default) is plain SGD. */
  momentum?: number;
}

/**
 * Stochastic gradient descent, optionally with momentum: v ← μv + g, θ ← θ − αv.
 *
 * @example
 * ```ts
 * const optimizer = sgd({ learningRate: 0.1, momentum: 0.9 });
 * ```
 */
export function sgd(options: SgdOptions): Optimizer {
  const momentum = options.momentum ?? 0;
  checkLearningRate(options.learningRate, 'SGD');
  if (!(momentum >= 0 && momentum < 1)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `SGD momentum must be in [0, 1), got ${momentum}.`,
      fix: 'Pass a momentum such as 0.9, or 0 for plain SGD.',
    });
  }
  const slots = new SlotStore();
  return {
    id: 'sgd',
    learningRate: (step) => resolve(options.learningRate, step),
    apply(entries, step) {
      const rate = resolve(options.learningRate, step);
      tf.tidy(() => {
        for (const { name, variable, gradient } of entries) {
          if (momentum === 0) {
            variable.assign(tf.sub(variable, tf.mul(gradient, rate)));
          } else {
            const velocity = slots.get(`${name}/velocity`, variable);
            velocity.assign(tf.add(tf.mul(velocity, momentum), gradient));
            variable.assign(tf.sub(variable, tf.mul(velocity, rate)));
          }
        }
      });
    },
    state: () => slots.entries(),
    loadState: (state, variables) => slots.load(state, slotOwnerCheck(variables, ['velocity'])),
    toConfig: () => ({
      type: 'sgd',
      learningRate: typeof options.learningRate === 'number' ? options.learningRate : 'function',
      momentum,
    }),
    dispose: () => slots.dispose(),
  };
}

/**
 * Adam's update as TF.js ops: m' = m·β₁ + g·(1−β₁); v' = v·β₂ + g²·(1−β₂);
 * w' = w − (m'·η̂/(√v' + ε̂) + w·λ) (Kingma & Ba 2015, Algorithm 1, with the bias correction folded
 * into η̂ and ε̂). Returns [w', m', v'].
 */
function adamOpChain(
  variable: tf.Tensor,
  first: tf.Tensor,
  second: tf.Tensor,
  gradient: tf.Tensor,
  scalars: { beta1: number; beta2: number; stepSize: number; epsilonHat: number },
  decay: number,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const { beta1, beta2, stepSize, epsilonHat } = scalars;
  const m = tf.add(tf.mul(first, beta1), tf.mul(gradient, 1 - beta1));
  const v = tf.add(tf.mul(second, beta2), tf.mul(tf.square(gradient), 1 - beta2));
  let update = tf.div(tf.mul(m, stepSize), tf.add(tf.sqrt(v), epsilonHat));
  if (decay > 0) update = tf.add(update, tf.mul(variable, decay));
  return [tf.sub(variable, update), m, v];
}

/** Options of {@link adam}. */
export interface AdamOptions {
  learningRate: LearningRate;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (AdamW), applied as θ ← θ − α·decay·θ; default 0. */
  weightDecay?: number;
  /**
   * Where the moments m and v live: `'tensors'` (default), TF.js variables on the active backend;
   * or `'host'`, JavaScript Float32Arrays, updated through a small heap window by the fused SIMD
   * pass on wasm (bit-identical), so that they do not count against the wasm heap's 4 GiB — at
   * BERT-base scale they are 1.36 GB. Elsewhere `'host'` runs the op chain on tensors made from
   * the arrays for each step. Saved and restored like the tensor slots.
   */
  slots?: 'tensors' | 'host';
}

/**
 * Adam (Kingma & Ba), with optional decoupled weight decay (AdamW). Bias corrections are computed
 * from the step number, so a restored optimizer continues exactly.
 *
 * @example
 * ```ts
 * const optimizer = adam({ learningRate: 1e-3, weightDecay: 0.01 });
 * ```
 */
export function adam(options: AdamOptions): Optimizer {
  const beta1 = options.beta1 ?? 0.9;
  const beta2 = options.beta2 ?? 0.999;
  const epsilon = options.epsilon ?? 1e-8;
  const weightDecay = options.weightDecay ?? 0;
  checkLearningRate(options.learningRate, 'Adam');
  for (const [label, value] of [
    ['beta1', beta1],
    ['beta2', beta2],
  ] as const) {
    if (!(value >= 0 && value < 1)) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `Adam ${label} must be in [0, 1), got ${value}.`,
        fix: `Use the usual value (${label === 'beta1' ? 0.9 : 0.999}).`,
      });
    }
  }
  if (!(epsilon > 0) || !(weightDecay >= 0)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Adam needs epsilon > 0 and weightDecay ≥ 0, got epsilon ${epsilon} and weightDecay ${weightDecay}.`,
      fix: 'Use epsilon 1e-8 and a non-negative weight decay.',
    });
  }
  const host = options.slots === 'host';
  if (options.slots !== undefined && options.slots !== 'tensors' && !host) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Adam slots must be 'tensors' or 'host', got ${JSON.stringify(options.slots)}.`,
      fix: "Leave slots out, or pass 'host' to keep the moments outside the wasm heap.",
    });
  }
  const slots = new SlotStore();
  const hostSlots = new HostSlotStore();
  const shapes = new Map<string, number[]>();
  return {
    id: 'adam',
    learningRate: (step) => resolve(options.learningRate, step),
    apply(entries, step) {
      const rate = resolve(options.learningRate, step);
      const t = step + 1;
      // Bias-corrected step size α·√(1−β₂ᵗ)/(1−β₁ᵗ), with ε scaled to match (Kingma & Ba, Sec. 2).
      const correction = Math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t);
      const stepSize = rate * correction;
      const epsilonHat = epsilon * Math.sqrt(1 - beta2 ** t);
      const scalars = { beta1, beta2, stepSize, epsilonHat, decay: weightDecay > 0 ? rate * weightDecay : 0 };
      hostSlots.release();
      tf.tidy(() => {
        for (const { name, variable, gradient } of entries) {
          if (host) {
            shapes.set(`${name}/m`, variable.shape).set(`${name}/v`, variable.shape);
            const m = hostSlots.get(`${name}/m`, variable.size);
            const v = hostSlots.get(`${name}/v`, variable.size);
            // On wasm: one SIMD pass, in place, the moments staged through a small heap window.
            if (fusedAdamStepHostSlots(variable, m, v, gradient, scalars)) continue;
            const first = tf.tensor(m, variable.shape);
            const second = tf.tensor(v, variable.shape);
            const [w, m2, v2] = adamOpChain(variable, first, second, gradient, scalars, rate * weightDecay);
            variable.assign(w);
            m.set(m2.dataSync() as Float32Array);
            v.set(v2.dataSync() as Float32Array);
            continue;
          }
          const first = slots.get(`${name}/m`, variable);
          const second = slots.get(`${name}/v`, variable);
          // On wasm the same update runs as one SIMD pass over the heap, bit-identical to the ops below.
          const fused =
            fusedAdamStep(variable, first, second, gradient, scalars) ??
            adamOpChain(variable, first, second, gradient, scalars, rate * weightDecay);
          first.assign(fused[1]);
          second.assign(fused[2]);
          variable.assign(fused[0]);
        }
      });
    },
    state: () => (host ? hostSlots.entries((name) => shapes.get(name)!) : slots.entries()),
    ...(host ? { hostState: () => hostSlots.arrays((name) => shapes.get(name)!) } : {}),
    loadState: (state, variables) => {
      const owner = slotOwnerCheck(variables, ['m', 'v']);
      if (!host) return slots.load(state, owner);
      hostSlots.load(state, owner);
      for (const [name, tensor] of Object.entries(state)) shapes.set(name, tensor.shape);
    },
    toConfig: () => ({
      type: 'adam',
      learningRate: typeof options.learningRate === 'number' ? options.learningRate : 'function',
      beta1,
      beta2,
      epsilon,
      weightDecay,
    }),
    dispose: () => {
      slots.dispose();
      hostSlots.dispose();
    },
  };
}
