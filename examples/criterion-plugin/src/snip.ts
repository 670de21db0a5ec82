import {
  type BatchProvider,
  ErrorCodes,
  FinepruneError,
  type PrunableModel,
  type ScoreStrategy,
} from '@fineprune/core';
import * as tf from '@tensorflow/tfjs-core';

/**
 * Options of {@link snip}.
 *
 * @example
 * ```ts
 * const options: SnipOptions = { model: prunable, data: batches(train, { batchSize: 100, seed: 1 }), batches: 2 };
 * ```
 */
export interface SnipOptions {
  /** The model being pruned (its loss and forward pass give the gradients). */
  model: PrunableModel;
  /** Training batches; batch `s` must be a pure function of `s` so runs stay resumable. */
  data: BatchProvider;
  /** Batches the sensitivity is averaged over, each time masks are re-selected; default 1. */
  batches?: number;
}

/**
 * SNIP connection sensitivity (Lee et al., 2019, Eq. 6): S = |W ⊙ ∂L/∂W|, the first-order
 * estimate of the loss change when a weight is removed, averaged over a few training batches.
 * Measured on data whenever masks are re-selected; nothing is learned. The gradient is taken
 * through the masked forward pass, so weights already pruned score 0 and stay pruned.
 *
 * @example
 * ```ts
 * const pruner = new Pruner({ model, scores: snip({ model, data: source }), mask: topV({ scope: 'global' }), schedule, optimizers });
 * ```
 */
export function snip(options: SnipOptions): ScoreStrategy {
  const batchCount = options.batches ?? 1;
  if (!(Number.isInteger(batchCount) && batchCount >= 1 && batchCount <= 64)) {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `snip: batches must be an integer in 1…64, got ${String(options.batches)}.`,
      fix: 'Average over a few batches, for example batches: 4.',
    });
  }
  const { model, data } = options;
  // Scores of every parameter at one step: computed on the first compute() call of a mask update.
  let cache: { step: number; scores: Map<string, tf.Tensor> } | undefined;
  const measure = (step: number): Map<string, tf.Tensor> => {
    const parameters = model.parameters();
    const sums = new Map<string, tf.Tensor>();
    for (let index = 0; index < batchCount; index++) {
      const batch = data.batch(step + index);
      try {
        const { grads, value } = tf.variableGrads(
          () => model.loss(model.forward(batch.x, { training: false }), batch),
          parameters.map((parameter) => parameter.weight),
        );
        value.dispose();
        for (const parameter of parameters) {
          const gradient = grads[parameter.weight.name]!;
          // Lee et al. (2019), Eq. 6: |g ⊙ w|, summed here and averaged below.
          const sensitivity = tf.tidy(() => tf.abs(tf.mul(gradient, parameter.weight)));
          const previous = sums.get(parameter.name);
          sums.set(parameter.name, previous ? tf.tidy(() => tf.add(previous, sensitivity)) : sensitivity);
          if (previous) {
            previous.dispose();
            sensitivity.dispose();
          }
        }
        tf.dispose(grads);
      } finally {
        tf.dispose([batch.x, batch.y] as tf.TensorContainer);
      }
    }
    for (const [name, sum] of sums) {
      sums.set(
        name,
        tf.tidy(() => tf.div(sum, batchCount)),
      );
      sum.dispose();
    }
    return sums;
  };
  return {
    id: 'community/snip',
    learnable: false,
    compute({ parameter }, context) {
      if (!cache || cache.step !== context.step) {
        if (cache) tf.dispose([...cache.scores.values()]);
        cache = { step: context.step, scores: measure(context.step) };
      }
      const scores = cache.scores.get(parameter.name);
      if (!scores) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_ARGUMENT,
          message: `snip: "${parameter.name}" is not a parameter of model "${model.name}".`,
          fix: 'Create snip() with the model that the pruner prunes.',
        });
      }
      return scores.clone();
    },
    onRunEnd() {
      if (cache) tf.dispose([...cache.scores.values()]);
      cache = undefined;
    },
    toConfig: () => ({ type: 'community/snip', batches: batchCount }),
  };
}
