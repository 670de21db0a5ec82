import * as tf from '@tensorflow/tfjs-core';
import type { JsonObject, PluginContext, PrunableParameter } from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * How learned scores start.
 *
 * - `constant`: every score is `value` (the reference implementation's `mask_init="constant"`,
 *   `mask_scale=0.0`: all scores 0, so the first Top-v selection keeps the lowest indices and the
 *   ranking is made entirely by the accumulated movement of Eq. (4)).
 * - `uniform`: U(−scale, scale), drawn from the run's seeded random source (the reference's
 *   `mask_init="uniform"`), which breaks the ties of a constant start at random.
 * - `kaiming`: U(−1/√fanIn, 1/√fanIn), the reference's `mask_init="kaiming"`
 *   (`kaiming_uniform_(a=√5)` gives bound √(6 / ((1 + 5)·fanIn)) = 1/√fanIn); fanIn is the product
 *   of every dimension but the last (Dense `[in, out]`: in; Conv2D `[h, w, in, out]`: h·w·in).
 * - `magnitude`: `scale·|W|` at creation, so that the first masks equal magnitude pruning's and
 *   movement is accumulated on top of it.
 *
 * @example
 * ```ts
 * const init: ScoreInit = { type: 'uniform', scale: 0.01 };
 * ```
 */
export type ScoreInit =
  | { type: 'constant'; value?: number }
  | { type: 'uniform'; scale: number }
  | { type: 'kaiming' }
  | { type: 'magnitude'; scale?: number };

function invalid(message: string, fix: string): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix });
}

/**
 * Checks a {@link ScoreInit} and fills in its defaults.
 *
 * @example
 * ```ts
 * checkScoreInit({ type: 'constant' }, 'movement'); // { type: 'constant', value: 0 }
 * ```
 */
export function checkScoreInit(init: ScoreInit | undefined, owner: string): Required<ScoreInit> & JsonObject {
  const value = init ?? { type: 'constant' as const };
  switch (value.type) {
    case 'constant': {
      const constant = value.value ?? 0;
      if (!Number.isFinite(constant))
        invalid(
          `${owner}: init.value must be a finite number, got ${constant}.`,
          'Use 0 (the reference default).',
        );
      return { type: 'constant', value: constant };
    }
    case 'uniform':
      if (!(value.scale > 0 && Number.isFinite(value.scale)))
        invalid(
          `${owner}: init.scale of a uniform initialisation must be a positive finite number, got ${value.scale}.`,
          'Use a small scale such as 0.01, or { type: "constant" }.',
        );
      return { type: 'uniform', scale: value.scale };
    case 'kaiming':
      return { type: 'kaiming' };
    case 'magnitude': {
      const scale = value.scale ?? 1;
      if (!(scale > 0 && Number.isFinite(scale)))
        invalid(`${owner}: init.scale must be a positive finite number, got ${scale}.`, 'Use 1.');
      return { type: 'magnitude', scale };
    }
    default:
      return invalid(
        `${owner}: unknown init type ${JSON.stringify((value as { type?: unknown }).type)}.`,
        'Use one of: "constant", "uniform", "kaiming", "magnitude".',
      );
  }
}

/**
 * fanIn of a weight: the product of every dimension but the last (at least 1).
 *
 * @example
 * ```ts
 * fanIn([784, 300]); // 784
 * fanIn([3, 3, 16, 32]); // 144
 * ```
 */
export function fanIn(shape: readonly number[]): number {
  return Math.max(
    1,
    shape.slice(0, -1).reduce((product, size) => product * size, 1),
  );
}

/**
 * Creates the score variable of a parameter from an initialisation, drawing any randomness from
 * the run's seeded source (so the same seed gives the same scores).
 *
 * @example
 * ```ts
 * const scores = createScoreVariable(parameter, { type: 'kaiming' }, context);
 * ```
 */
export function createScoreVariable(
  parameter: PrunableParameter,
  init: Required<ScoreInit>,
  context: PluginContext,
): tf.Variable {
  const shape = [...parameter.shape];
  if (init.type === 'constant') return tf.tidy(() => tf.variable(tf.fill(shape, init.value), true));
  if (init.type === 'magnitude')
    return tf.tidy(() => tf.variable(tf.mul(tf.abs(parameter.weight), init.scale), true));
  const bound = init.type === 'uniform' ? init.scale : 1 / Math.sqrt(fanIn(shape));
  const values = new Float32Array(parameter.size);
  for (let index = 0; index < values.length; index += 1)
    values[index] = (2 * context.random.next() - 1) * bound;
  return tf.tidy(() => tf.variable(tf.tensor(values, shape, 'float32'), true));
}
