import * as tf from '@tensorflow/tfjs-core';
import type { JsonObject, PluginContext } from '@fineprune/core';
import { invalid } from './errors';

/**
 * How learned unit or block scores start: `constant` (every score `value`, default 0), `uniform`
 * (U(−scale, scale) from the run's seeded random source, which breaks ties), or `magnitude`
 * (`scale` times the L2 norm of the weights the score covers, so the first masks are magnitude
 * pruning's and movement accumulates on top).
 *
 * @example
 * ```ts
 * const init: GroupScoreInit = { type: 'uniform', scale: 0.01 };
 * ```
 */
export type GroupScoreInit =
  | { type: 'constant'; value?: number }
  | { type: 'uniform'; scale: number }
  | { type: 'magnitude'; scale?: number };

/**
 * Checks a {@link GroupScoreInit} and fills in its defaults.
 *
 * @example
 * ```ts
 * checkGroupScoreInit(undefined, 'unitMovement'); // { type: 'constant', value: 0 }
 * ```
 */
export function checkGroupScoreInit(
  init: GroupScoreInit | undefined,
  owner: string,
): GroupScoreInit & JsonObject {
  const value = init ?? { type: 'constant' as const };
  const fix = 'Use { type: "constant" }, { type: "uniform", scale: 0.01 } or { type: "magnitude" }.';
  if (value.type === 'constant') {
    const constant = value.value ?? 0;
    if (!Number.isFinite(constant))
      invalid(`${owner}: init.value must be a finite number, got ${constant}.`, fix);
    return { type: 'constant', value: constant };
  }
  if (value.type === 'uniform' || value.type === 'magnitude') {
    const scale = value.scale ?? 1;
    if (!(scale > 0 && Number.isFinite(scale)))
      invalid(`${owner}: init.scale must be a positive finite number, got ${value.scale}.`, fix);
    return { type: value.type, scale };
  }
  return invalid(`${owner}: unknown init type ${JSON.stringify((value as { type?: unknown }).type)}.`, fix);
}

/**
 * A score variable of `shape` started as `init` says; `norms` gives the L2 norm of the weights
 * each score covers (only called for `magnitude`).
 *
 * @example
 * ```ts
 * const scores = createGroupScores([300], init, context, () => unitNorms(structure, members));
 * ```
 */
export function createGroupScores(
  shape: number[],
  init: GroupScoreInit,
  context: PluginContext,
  norms: () => tf.Tensor,
): tf.Variable {
  return tf.tidy(() => {
    if (init.type === 'constant') return tf.variable(tf.fill(shape, init.value ?? 0));
    if (init.type === 'magnitude') return tf.variable(tf.reshape(tf.mul(norms(), init.scale ?? 1), shape));
    const size = shape.reduce((product, value) => product * value, 1);
    const values = Float32Array.from({ length: size }, () => (2 * context.random.next() - 1) * init.scale);
    return tf.variable(tf.tensor(values, shape, 'float32'));
  });
}
