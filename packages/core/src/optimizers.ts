import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamStep } from '@fineprune/tensor';
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
      if (!prefixOk(name)) {
        throw new FinepruneError({
          code: ErrorCodes.CHECKPOINT_MISMATCH,
          message: `Optimizer state names slot "${name}", which belongs to no variable of the model.`,
          fix: 'Load the checkpoint into the model it was saved from.',
        });
      }
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

/** Options of {@link adam}. */
export interface AdamOptions {
  learningRate: LearningRate;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  /** Decoupled weight decay (AdamW), applied as θ ← θ − α·decay·θ; default 0. */
  weightDecay?: number;
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
  const slots = new SlotStore();
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
      tf.tidy(() => {
        for (const { name, variable, gradient } of entries) {
          const first = slots.get(`${name}/m`, variable);
          const second = slots.get(`${name}/v`, variable);
          // On wasm the same update runs as one SIMD pass over the heap, bit-identical to the ops below.
          const fused = fusedAdamStep(variable, first, second, gradient, {
            beta1,
            beta2,
            stepSize,
            epsilonHat,
            decay: weightDecay > 0 ? rate * weightDecay : 0,
          });
          if (fused !== undefined) {
            first.assign(fused[1]);
            second.assign(fused[2]);
            variable.assign(fused[0]);
            continue;
          }
          first.assign(tf.add(tf.mul(first, beta1), tf.mul(gradient, 1 - beta1)));
          second.assign(tf.add(tf.mul(second, beta2), tf.mul(tf.square(gradient), 1 - beta2)));
          let update = tf.div(tf.mul(first, stepSize), tf.add(tf.sqrt(second), epsilonHat));
          if (weightDecay > 0) update = tf.add(update, tf.mul(variable, rate * weightDecay));
          variable.assign(tf.sub(variable, update));
        }
      });
    },
    state: () => slots.entries(),
    loadState: (state, variables) => slots.load(state, slotOwnerCheck(variables, ['m', 'v'])),
    toConfig: () => ({
      type: 'adam',
      learningRate: typeof options.learningRate === 'number' ? options.learningRate : 'function',
      beta1,
      beta2,
      epsilon,
      weightDecay,
    }),
    dispose: () => slots.dispose(),
  };
}
