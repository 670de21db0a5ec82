import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';

/**
 * The shape of a learning rate over training, as JSON (what a recipe's `optimizer.schedule` holds):
 *
 * - `constant`: the peak rate at every step;
 * - `linear`: linear warm-up over `warmupSteps` (reaching the peak at step `warmupSteps − 1`), then
 *   linear decay to 0 at `totalSteps` — the learning rate of BERT fine-tuning (Devlin et al. 2019),
 *   which the Movement Pruning benchmarks of this project use;
 * - `cosine`: the same warm-up, then half a cosine from the peak down to `minimum` at `totalSteps`.
 *
 * A learning rate must stay positive, so every schedule is floored at `minimum` (default 1e-8).
 *
 * @example
 * ```ts
 * const config: LearningRateScheduleConfig = { type: 'linear', warmupSteps: 15, totalSteps: 150 };
 * ```
 */
export type LearningRateScheduleConfig =
  | { readonly type: 'constant' }
  | {
      readonly type: 'linear' | 'cosine';
      /** Steps of linear warm-up; default 0. */
      readonly warmupSteps?: number;
      /** The step at which the decay ends (the run's length). */
      readonly totalSteps: number;
      /** The floor of the rate, > 0; default 1e-8. */
      readonly minimum?: number;
    };

/**
 * The default floor of a decaying learning rate: optimizers need a rate above 0.
 *
 * @example
 * ```ts
 * learningRateSchedule(1e-3, { type: 'linear', totalSteps: 10 })(10) === DEFAULT_MINIMUM_LEARNING_RATE; // true
 * ```
 */
export const DEFAULT_MINIMUM_LEARNING_RATE = 1e-8;

function invalidSchedule(message: string, fix: string): never {
  throw new FinepruneError({ code: ErrorCodes.INVALID_ARGUMENT, message, fix });
}

/**
 * The learning rate at each step of a schedule with the given peak, for `adam({ learningRate })` and
 * `sgd({ learningRate })`. It is a pure function of the step, so a run resumed from a checkpoint
 * (which stores the step) continues the schedule exactly.
 *
 * @param peak - the largest rate, > 0
 * @param config - the schedule (see {@link LearningRateScheduleConfig})
 * @returns step → rate
 * @throws FinepruneError `INVALID_ARGUMENT` for a peak ≤ 0, a warm-up that does not end before
 *   `totalSteps`, or a minimum outside (0, peak]
 *
 * @example
 * ```ts
 * const rate = learningRateSchedule(3e-4, { type: 'linear', warmupSteps: 15, totalSteps: 150 });
 * rate(0); // 2e-5 (1/15 of the peak)
 * rate(14); // 3e-4
 * rate(149); // 3e-4 / 135
 * const weights = adam({ learningRate: rate, weightDecay: 0.01 });
 * ```
 */
export function learningRateSchedule(
  peak: number,
  config: LearningRateScheduleConfig,
): (step: number) => number {
  if (!(peak > 0 && Number.isFinite(peak)))
    invalidSchedule(
      `The peak learning rate must be a positive finite number, got ${peak}.`,
      'Use for example 3e-4.',
    );
  if (config.type === 'constant') return () => peak;
  if (config.type !== 'linear' && config.type !== 'cosine')
    invalidSchedule(
      `Unknown learning-rate schedule ${JSON.stringify((config as { type?: unknown }).type)}.`,
      'Use constant, linear or cosine.',
    );
  const warmup = config.warmupSteps ?? 0;
  const total = config.totalSteps;
  const minimum = config.minimum ?? DEFAULT_MINIMUM_LEARNING_RATE;
  if (!(Number.isInteger(total) && total >= 1))
    invalidSchedule(`totalSteps must be an integer ≥ 1, got ${total}.`, 'Pass the run length in steps.');
  if (!(Number.isInteger(warmup) && warmup >= 0 && warmup < total))
    invalidSchedule(
      `warmupSteps must be an integer in 0 … ${total - 1} (it must end before totalSteps ${total}), got ${warmup}.`,
      'Use a warm-up shorter than the run, for example 10% of it.',
    );
  if (!(minimum > 0 && minimum <= peak))
    invalidSchedule(
      `minimum must be in (0, ${peak}] (above 0 and at most the peak), got ${minimum}.`,
      'Leave it out for 1e-8, or give a small positive rate.',
    );
  if (config.type === 'linear') {
    // Linear warm-up to the peak, then linear decay to 0 at totalSteps (BERT fine-tuning).
    return (step) =>
      Math.max(peak * (step < warmup ? (step + 1) / warmup : (total - step) / (total - warmup)), minimum);
  }
  return (step) => {
    if (step < warmup) return Math.max(peak * ((step + 1) / warmup), minimum);
    const progress = Math.min(1, (step - warmup) / (total - warmup));
    // Cosine annealing (Loshchilov & Hutter 2017, Eq. 5) from the peak to the minimum.
    return minimum + (peak - minimum) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
