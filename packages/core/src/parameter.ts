import * as tf from '@tensorflow/tfjs-core';
import { maskedWeight } from '@fineprune/tensor';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import type { MaskedFactorsFunction, ParameterKind, PrunableParameter, WeightTransform } from './types';

/** What {@link createPrunableParameter} needs. */
export interface PrunableParameterOptions {
  /** Stable unique name, for example `dense_1/kernel`. */
  name: string;
  /** Layer or block name. */
  group: string;
  kind: ParameterKind;
  /** The raw weight variable. */
  weight: tf.Variable;
  /** An existing mask to adopt (same shape); a mask of ones is created otherwise. */
  mask?: tf.Variable;
}

/**
 * Wraps a weight variable as a {@link PrunableParameter} with its own mask variable (all ones).
 * Model adapters call this for every weight they expose.
 *
 * @example
 * ```ts
 * const kernel = tf.variable(tf.randomNormal([784, 300]));
 * const parameter = createPrunableParameter({ name: 'fc1/kernel', group: 'fc1', kind: 'dense', weight: kernel });
 * parameter.effectiveWeight(); // kernel ⊙ mask
 * ```
 */
export function createPrunableParameter(options: PrunableParameterOptions): PrunableParameter {
  const { name, group, kind, weight } = options;
  if (weight.dtype !== 'float32') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `Parameter "${name}" has dtype ${weight.dtype}; only float32 weights can be pruned.`,
      fix: 'Exclude this weight from pruning or cast the model to float32.',
    });
  }
  const shape = [...weight.shape];
  if (options.mask && !tf.util.arraysEqual(options.mask.shape, weight.shape)) {
    throw new FinepruneError({
      code: ErrorCodes.SHAPE_MISMATCH,
      message: `The mask of "${name}" has shape [${options.mask.shape}] but the weight has shape [${shape}].`,
      fix: 'Pass a mask with the same shape as the weight.',
    });
  }
  const mask = options.mask ?? tf.tidy(() => tf.variable(tf.ones(shape), false));
  let transform: WeightTransform | null = null;
  let factors: MaskedFactorsFunction | undefined;
  const parameter: PrunableParameter = {
    name,
    group,
    kind,
    shape,
    size: weight.size,
    weight,
    mask,
    effectiveWeight: () => (transform ? transform(parameter) : maskedWeight(weight, mask)),
    maskedFactors: () => (transform ? factors?.(parameter) : { weight, mask }),
    setWeightTransform: (next, nextFactors) => {
      transform = next;
      factors = next ? nextFactors : undefined;
    },
  };
  return parameter;
}

/** Picks parameters by exact name, by pattern, or by predicate. */
export type ParameterSelector =
  | string
  | RegExp
  | ((parameter: PrunableParameter) => boolean)
  | ReadonlyArray<string | RegExp>;

/** True when `parameter` matches `selector` (a name, a pattern, a predicate or a list of names and patterns). */
export function matchesSelector(parameter: PrunableParameter, selector: ParameterSelector): boolean {
  if (typeof selector === 'function') return selector(parameter);
  const list = Array.isArray(selector) ? selector : [selector as string | RegExp];
  return list.some((entry) => {
    if (typeof entry === 'string') return entry === parameter.name || entry === parameter.group;
    // A global or sticky RegExp keeps state between test() calls; match with a stateless copy.
    const pattern =
      entry.global || entry.sticky ? new RegExp(entry.source, entry.flags.replace(/[gy]/g, '')) : entry;
    return pattern.test(parameter.name);
  });
}

/**
 * Filters parameters by `include` and `exclude` selectors.
 *
 * @example
 * ```ts
 * selectParameters(model.parameters(), { include: /dense/, exclude: 'dense_3/kernel' });
 * ```
 */
export function selectParameters(
  parameters: readonly PrunableParameter[],
  options: { include?: ParameterSelector; exclude?: ParameterSelector } = {},
): PrunableParameter[] {
  return parameters.filter(
    (parameter) =>
      (options.include === undefined || matchesSelector(parameter, options.include)) &&
      (options.exclude === undefined || !matchesSelector(parameter, options.exclude)),
  );
}

/**
 * Picks variables by name: an exact name or layer prefix, a pattern, a predicate on the name, or a list.
 *
 * @example
 * ```ts
 * const freeze: VariableSelector = ['embedding', /layer_norm/];
 * ```
 */
export type VariableSelector = string | RegExp | ((name: string) => boolean) | ReadonlyArray<string | RegExp>;

/**
 * True when the variable name matches `selector`: a string equal to the name or naming its layer
 * (`dense_1` matches `dense_1/kernel`), a pattern tested on the name, a predicate, or a list of these.
 *
 * @example
 * ```ts
 * matchesVariable('embedding/embeddings', 'embedding'); // true
 * matchesVariable('dense_1/bias', [/kernel$/]); // false
 * ```
 */
export function matchesVariable(name: string, selector: VariableSelector): boolean {
  if (typeof selector === 'function') return selector(name);
  const list = Array.isArray(selector) ? selector : [selector as string | RegExp];
  return list.some((entry) => {
    if (typeof entry === 'string') return entry === name || name.startsWith(`${entry}/`);
    const pattern =
      entry.global || entry.sticky ? new RegExp(entry.source, entry.flags.replace(/[gy]/g, '')) : entry;
    return pattern.test(name);
  });
}
