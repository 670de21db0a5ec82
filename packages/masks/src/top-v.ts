import * as tf from '@tensorflow/tfjs-core';
import {
  checkKeptCountRule,
  type KeptCountRule,
  keptCountFor,
  type MaskFunction,
  type MaskInput,
} from '@fineprune/core';
import { ErrorCodes, FinepruneError } from '@fineprune/tensor/errors';
import { type SelectionHint, topCountMaskTensors, topCountMasks } from '@fineprune/tensor/select';
import { emptyMaskError } from './empty-mask';
import { readScoresTransient } from './read-scores';

/** Options of {@link topV}. */
export interface TopVOptions {
  /**
   * `local` keeps the top (1 − v) of each matrix separately; `global` ranks all the group's
   * scores together, so layers end with different sparsities. Default `local`.
   */
  scope?: 'local' | 'global';
  /**
   * How the sparsity v becomes a count of n entries: `round` (default) keeps n − round(v·n);
   * `floor` keeps ⌊(1 − v)·n⌋ as the movement-pruning reference code does (one entry fewer at, for
   * example, 784×64 at v = 0.7 or 768×3072 at v = 0.97); `half-even` keeps n − round-half-even(v·n).
   * With `global` scope the rule applies to the group's total. See `KeptCountRule` of `@fineprune/core`.
   */
  keptCount?: KeptCountRule;
}

/** Throws EMPTY_MASK when a selection (each parameter, or the group with `global`) would keep no weight. */
function refuseEmpty(
  inputs: readonly MaskInput[],
  scope: 'local' | 'global',
  sparsity: number,
  keep: (list: readonly tf.Tensor[]) => number,
): void {
  const units =
    scope === 'global'
      ? [{ over: `the group of ${inputs.length} parameters`, tensors: inputs.map((input) => input.scores) }]
      : inputs.map((input) => ({ over: JSON.stringify(input.parameter.name), tensors: [input.scores] }));
  for (const { over, tensors } of units) {
    const total = tensors.reduce((sum, tensor) => sum + tensor.size, 0);
    if (total > 0 && keep(tensors) === 0) {
      throw emptyMaskError(
        'topV',
        over,
        total,
        `at sparsity ${sparsity}`,
        // total − round(v·total) ≥ 1 ⇔ v < 1 − 0.5/total
        `Lower the final sparsity below ${1 - 0.5 / total} so that at least one weight is kept${scope === 'local' ? ' in every matrix (or use scope: global)' : ''}.`,
      );
    }
  }
}

/**
 * Number of entries kept out of `total` at sparsity `sparsity`: total − round(v·total) by default,
 * or under another {@link KeptCountRule} (the same function as `keptCountFor` of `@fineprune/core`).
 *
 * @example
 * ```ts
 * keptCount(10, 0.3); // 7
 * ```
 */
export const keptCount: (total: number, sparsity: number, rule?: KeptCountRule) => number = keptCountFor;

/**
 * The Top-v mask of Eq. (1) of Movement Pruning: M = Top_v(S) keeps the entries with the largest
 * scores, exactly `total − round(v · total)` of them (or the count of another `keptCount` rule);
 * ties at the threshold go to the lowest index (earlier parameter first, for global selection), so
 * the mask is deterministic. A sparsity that rounds the kept count to 0 (of a matrix with `local`,
 * of the group with `global`) is an `EMPTY_MASK` error.
 *
 * The default transform is straight-through (Eq. 2): the forward pass uses W ⊙ M and learned
 * scores receive dL/d(W ⊙ M) ⊙ W.
 *
 * Start learned scores with a warm-up at sparsity 0 (the paper's cubic schedule has one), or with a
 * random `init`: constant-0 scores all tie at the first selection, and a global Top-v then keeps the
 * first matrices whole and prunes the last ones entirely, after which no gradient reaches any score.
 *
 * On wasm, inputs of 16,384 scores or more are selected where they lie in the wasm heap, starting
 * from the previous threshold of the same parameters; the masks are the same as elsewhere.
 *
 * @example
 * ```ts
 * const mask = topV({ scope: 'global' });
 * const [m1, m2] = await mask.compute([{ parameter: p1, scores: s1 }, { parameter: p2, scores: s2 }], 0.9, context);
 * ```
 */
export function topV(options: TopVOptions = {}): MaskFunction {
  const scope = options.scope ?? 'local';
  if (scope !== 'local' && scope !== 'global') {
    throw new FinepruneError({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: `topV: scope must be "local" or "global", got ${JSON.stringify(scope)}.`,
      fix: 'Use "local" to prune each matrix to the same sparsity, "global" to rank all matrices together.',
    });
  }
  const rule = options.keptCount ?? 'round';
  checkKeptCountRule('topV', rule);
  // Selection hints, keyed by the parameter (local) or the group's first parameter (global). A hint
  // only speeds selection up, so a stale or shared one cannot change a mask.
  const hints = new WeakMap<object, SelectionHint>();
  const hintFor = (parameter: MaskInput['parameter']): SelectionHint => {
    let hint = hints.get(parameter);
    if (hint === undefined) {
      hint = {};
      hints.set(parameter, hint);
    }
    return hint;
  };
  return {
    id: 'topV',
    targetKind: 'sparsity',
    async compute(inputs: readonly MaskInput[], sparsity: number) {
      if (!(sparsity >= 0 && sparsity < 1)) {
        throw new FinepruneError({
          code: ErrorCodes.INVALID_SPARSITY,
          message: `topV: sparsity must be in [0, 1), got ${sparsity}.`,
          fix: 'Give the schedule a final sparsity below 1.',
        });
      }
      const tensors = inputs.map((input) => input.scores);
      const keep = (list: readonly tf.Tensor[]) =>
        keptCountFor(
          list.reduce((sum, tensor) => sum + tensor.size, 0),
          sparsity,
          rule,
        );
      refuseEmpty(inputs, scope, sparsity, keep);
      // On wasm, large selections run where the scores lie (no read-out, no mask upload), starting
      // from the last threshold of the same parameters (a speed-up only: the masks are exact).
      const direct: Array<tf.Tensor | undefined> =
        scope === 'global' && inputs.length > 0
          ? (topCountMaskTensors(tensors, keep(tensors), hintFor(inputs[0]!.parameter)) ??
            tensors.map(() => undefined))
          : tensors.map(
              (tensor, index) =>
                topCountMaskTensors([tensor], keep([tensor]), hintFor(inputs[index]!.parameter))?.[0],
            );
      const rest = inputs.flatMap((_input, index) => (direct[index] === undefined ? [index] : []));
      if (rest.length === 0) return direct as tf.Tensor[];
      // The score arrays may be views of backend memory, valid only until the next tensor is
      // allocated: select every mask before creating any tensor.
      const scores = await readScoresTransient(rest.map((index) => inputs[index]!.scores));
      let masks: Float32Array[];
      if (scope === 'global') {
        const total = scores.reduce((sum, values) => sum + values.length, 0);
        masks = topCountMasks(scores, keptCountFor(total, sparsity, rule));
      } else {
        masks = scores.map(
          (values) => topCountMasks([values], keptCountFor(values.length, sparsity, rule))[0]!,
        );
      }
      rest.forEach((inputIndex, index) => {
        direct[inputIndex] = tf.tensor(masks[index]!, [...inputs[inputIndex]!.parameter.shape], 'float32');
      });
      return direct as tf.Tensor[];
    },
    toConfig: () => ({ type: 'topV', scope, keptCount: rule }),
  };
}
