import * as tf from '@tensorflow/tfjs-core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * Options of the `Pruner`'s divergence guard: training stops when the loss exceeds
 * `factor × max(running minimum, floor)`, where the running minimum is the lowest loss seen since the
 * pruner was created (or resumed). A non-finite loss always stops training.
 *
 * @example
 * ```ts
 * new Pruner({ ...options, divergenceGuard: { factor: 1e3 } }); // stricter than the default 1e6
 * new Pruner({ ...options, divergenceGuard: false }); // only non-finite losses stop the run
 * ```
 */
export interface DivergenceGuardOptions {
  /** How many times its running minimum the loss may reach, > 1; default {@link DEFAULT_DIVERGENCE_FACTOR}. */
  factor?: number;
  /**
   * The running minimum counts as at least this much, ≥ 0, so that a loss near 0 (a fitted batch)
   * does not make ordinary noise look like divergence; default {@link DEFAULT_DIVERGENCE_FLOOR}.
   */
  floor?: number;
}

/**
 * The default growth factor of the divergence guard: 10⁶, six orders of magnitude above the best
 * loss so far, far beyond the noise of mini-batch losses.
 *
 * @example
 * ```ts
 * const limit = DEFAULT_DIVERGENCE_FACTOR * Math.max(runningMinimum, DEFAULT_DIVERGENCE_FLOOR);
 * ```
 */
export const DEFAULT_DIVERGENCE_FACTOR = 1e6;

/**
 * The default floor of the running minimum: 10⁻³, so the guard never stops a run below a loss of 10³.
 *
 * @example
 * ```ts
 * console.log(DEFAULT_DIVERGENCE_FACTOR * DEFAULT_DIVERGENCE_FLOOR); // 1000
 * ```
 */
export const DEFAULT_DIVERGENCE_FLOOR = 1e-3;

/** A tensor the loss depends on, with its name for messages. */
export interface GuardedTensor {
  readonly name: string;
  readonly value: tf.Tensor;
  readonly gradient: tf.Tensor | undefined;
}

/**
 * The first parameter, in order, whose value holds a NaN or an infinity, else the first whose
 * gradient does (a non-finite value makes the gradients before it non-finite too, so values are the
 * cause to name first), read in one transfer.
 *
 * @example
 * ```ts
 * await firstNonFinite([{ name: 'fc1/kernel', value: w, gradient: g }]); // { name: 'fc1/kernel', tensor: 'gradient' }
 * ```
 */
export async function firstNonFinite(
  entries: readonly GuardedTensor[],
): Promise<{ name: string; tensor: 'value' | 'gradient' } | undefined> {
  if (entries.length === 0) return undefined;
  const flags = tf.tidy(() =>
    tf.stack(
      entries.flatMap(({ value, gradient }) =>
        [value, gradient].map((tensor) =>
          tensor === undefined || tensor.size === 0
            ? tf.scalar(1)
            : tf.cast(tf.all(tf.isFinite(tensor)), 'float32'),
        ),
      ),
    ),
  );
  const finite = await flags.data();
  flags.dispose();
  for (const tensor of ['value', 'gradient'] as const) {
    const offset = tensor === 'value' ? 0 : 1;
    const index = entries.findIndex((_, position) => finite[2 * position + offset] === 0);
    if (index >= 0) return { name: entries[index]!.name, tensor };
  }
  return undefined;
}

/**
 * Watches the loss of each step: non-finite, or grown beyond `factor × max(running minimum, floor)`,
 * and builds the error that names the step and the first non-finite parameter.
 *
 * @example
 * ```ts
 * const guard = new DivergenceGuard({ factor: 1e4 });
 * const verdict = guard.check(loss); // 'ok' | 'non-finite' | 'diverged'
 * ```
 */
export class DivergenceGuard {
  private readonly factor: number;
  private readonly floor: number;
  private readonly enabled: boolean;
  private minimum = Number.POSITIVE_INFINITY;

  constructor(options: DivergenceGuardOptions | false = {}) {
    this.enabled = options !== false;
    const { factor = DEFAULT_DIVERGENCE_FACTOR, floor = DEFAULT_DIVERGENCE_FLOOR } = options || {};
    if (!(Number.isFinite(factor) && factor > 1) || !(Number.isFinite(floor) && floor >= 0)) {
      throw new FinepruneError({
        code: ErrorCodes.INVALID_ARGUMENT,
        message: `divergenceGuard needs a finite factor > 1 and a finite floor ≥ 0, got factor ${factor} and floor ${floor}.`,
        fix: `Use the defaults (factor ${DEFAULT_DIVERGENCE_FACTOR}, floor ${DEFAULT_DIVERGENCE_FLOOR}), or divergenceGuard: false to turn the growth check off.`,
      });
    }
    this.factor = factor;
    this.floor = floor;
  }

  /** The loss the next step may not exceed (infinite before the first step, or when the check is off). */
  get limit(): number {
    return this.enabled && Number.isFinite(this.minimum)
      ? this.factor * Math.max(this.minimum, this.floor)
      : Number.POSITIVE_INFINITY;
  }

  /** Judges one step's loss; an accepted loss updates the running minimum. */
  check(loss: number): 'ok' | 'non-finite' | 'diverged' {
    if (!Number.isFinite(loss)) return 'non-finite';
    if (loss > this.limit) return 'diverged';
    this.minimum = Math.min(this.minimum, loss);
    return 'ok';
  }

  /**
   * The error of a step the guard stopped: `NON_FINITE` or `DIVERGED`, naming the step, the loss and
   * the first parameter whose value or gradient is not finite (if any).
   */
  async error(
    verdict: 'non-finite' | 'diverged',
    step: number,
    loss: number,
    entries: readonly GuardedTensor[],
  ): Promise<FinepruneError> {
    const culprit = await firstNonFinite(entries);
    const where = culprit
      ? ` The first non-finite tensor is the ${culprit.tensor} of "${culprit.name}".`
      : ' No weight, score or gradient is non-finite yet.';
    const details = {
      step,
      loss,
      ...(culprit ? { parameter: culprit.name, tensor: culprit.tensor } : {}),
    };
    if (verdict === 'non-finite') {
      return new FinepruneError({
        code: ErrorCodes.NON_FINITE,
        message: `The loss became ${loss} at step ${step}.${where}`,
        fix: 'Lower the learning rates, enable gradientClipping, or check the data for NaN.',
        details,
      });
    }
    return new FinepruneError({
      code: ErrorCodes.DIVERGED,
      message: `Training diverged at step ${step}: the loss ${loss.toPrecision(4)} is above ${this.factor} × its running minimum ${Math.max(this.minimum, this.floor).toPrecision(4)}.${where}`,
      fix: 'Lower the learning rates or enable gradientClipping; if such growth is expected, raise divergenceGuard.factor (or set divergenceGuard: false).',
      details: { ...details, runningMinimum: this.minimum, factor: this.factor },
    });
  }
}
