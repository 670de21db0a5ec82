import * as tf from '@tensorflow/tfjs-core';
import type { MaskFunction, MaskInput } from '@fineprune/core';
import { ErrorCodes } from '@fineprune/tensor/errors';
import { topCountMasks } from '@fineprune/tensor/select';
import { readScores } from './read-scores';
import { invalid } from './invalid';

/**
 * Options of {@link nOfM}.
 *
 * @example
 * ```ts
 * const options: NOfMOptions = { n: 2, m: 4 };
 * ```
 */
export interface NOfMOptions {
  /** Entries kept in each group, 1 ≤ n ≤ m. */
  n: number;
  /** Entries per group. */
  m: number;
  /**
   * The axis the groups of `m` consecutive entries run along. Default: the input dimension, the
   * second-to-last axis (Dense `[in, out]`: 0; Conv2D `[h, w, in, out]`: 2), as sparse tensor cores
   * want it. Its size must be a multiple of `m`.
   */
  axis?: number;
  /**
   * While the target rises, which groups get the pattern first: those whose pattern removes the
   * least score, ranked in each parameter (`local`, default) or across all (`global`).
   */
  scope?: 'local' | 'global';
  /**
   * `true`: select inside the previous mask (the mask the parameter has before this selection, such
   * as whole rows or heads removed by an earlier stage). Entries it removed stay removed and are
   * never among the n kept, so a group that had k < n entries left keeps those k; groups not yet
   * given the pattern keep the previous mask. Default `false`: every selection starts from all
   * entries, so pruned weights may come back (as learned scores need).
   */
  withinPrevious?: boolean;
}

/** The previous mask of an input (ones when the caller gave none), read as a Float32Array copy. */
async function readPrevious(input: MaskInput): Promise<Float32Array> {
  if (input.previousMask === undefined) return new Float32Array(input.parameter.size).fill(1);
  return Float32Array.from(await readScores(input.previousMask));
}

/** Strides of the groups of one parameter: `outer` slices before the axis, `inner` entries after it. */
interface GroupLayout {
  readonly outer: number;
  readonly size: number;
  readonly inner: number;
  readonly groups: number;
}

function layoutOf(input: MaskInput, axisOption: number | undefined, m: number): GroupLayout {
  const { shape, name } = input.parameter;
  const axis = axisOption ?? shape.length - 2;
  if (!(Number.isInteger(axis) && axis >= 0 && axis < shape.length))
    invalid(
      `nOfM: "${name}" [${shape}] has no axis ${axis}${axisOption === undefined ? ' (the input dimension of a weight of rank < 2)' : ''}.`,
      'Exclude vectors from N:M pruning, or pass the axis the groups run along.',
    );
  const size = shape[axis]!;
  if (size % m !== 0)
    invalid(
      `nOfM: axis ${axis} of "${name}" [${shape}] has ${size} entries, not a multiple of m = ${m}.`,
      `Exclude "${name}" from this group, or choose m dividing ${size}.`,
    );
  const outer = shape.slice(0, axis).reduce((product, value) => product * value, 1);
  const inner = shape.slice(axis + 1).reduce((product, value) => product * value, 1);
  return { outer, size, inner, groups: (outer * size * inner) / m };
}

/** Calls `visit(group, offsets)` for every group of `m` entries along the axis, in a fixed order. */
function forEachGroup(
  layout: GroupLayout,
  m: number,
  visit: (group: number, offsets: Int32Array) => void,
): void {
  const offsets = new Int32Array(m);
  let group = 0;
  for (let outer = 0; outer < layout.outer; outer += 1) {
    for (let start = 0; start < layout.size; start += m) {
      for (let inner = 0; inner < layout.inner; inner += 1) {
        for (let index = 0; index < m; index += 1)
          offsets[index] = (outer * layout.size + start + index) * layout.inner + inner;
        visit(group, offsets);
        group += 1;
      }
    }
  }
}

/**
 * The order of a group's entries, highest score first, entries the previous mask removed last, ties
 * to the lower index.
 */
function ranked(scores: Float32Array, previous: Float32Array | undefined, offsets: Int32Array): number[] {
  const alive = (index: number) => (previous === undefined || previous[offsets[index]!] !== 0 ? 1 : 0);
  return Array.from(offsets.keys()).sort(
    (left, right) =>
      alive(right) - alive(left) || scores[offsets[right]!]! - scores[offsets[left]!]! || left - right,
  );
}

/** What giving each group the pattern removes: the sum of the scores of the entries it newly removes. */
function patternCosts(
  scores: Float32Array,
  previous: Float32Array | undefined,
  layout: GroupLayout,
  n: number,
  m: number,
): Float32Array {
  const cost = new Float32Array(layout.groups);
  forEachGroup(layout, m, (group, offsets) => {
    const order = ranked(scores, previous, offsets);
    for (let rank = n; rank < m; rank += 1) {
      const offset = offsets[order[rank]!]!;
      if (previous === undefined || previous[offset] !== 0) cost[group] = cost[group]! + scores[offset]!;
    }
  });
  return cost;
}

/**
 * The N:M mask (semi-structured sparsity, as sparse tensor cores run it): in every group of `m`
 * consecutive entries along the input dimension, exactly the `n` with the largest scores are kept
 * (ties to the lower index), for a sparsity of 1 − n/m.
 *
 * It composes with the schedules: the target v rises from 0 to 1 − n/m, and at v the pattern is
 * applied to round(v / (1 − n/m) · G) of the G groups, those whose pattern removes the least score
 * (the sum of their m − n lowest scores), per parameter or, with `scope: 'global'`, across the
 * group's parameters. The others stay dense. A target above 1 − n/m is `INVALID_SPARSITY`. Learned
 * scores receive the straight-through gradient of Eq. 2 of Movement Pruning.
 *
 * With `withinPrevious: true` the pattern stacks on the mask the parameter already has (lesson 4 of
 * STYLE: heads or rows first, then 2:4 inside what remains): each patterned group keeps the n best
 * of its remaining entries (all of them when fewer than n remain).
 *
 * @example
 * ```ts
 * new Pruner({ model, scores: magnitude(), mask: nOfM({ n: 2, m: 4 }), schedule: cubic({ finalSparsity: 0.5, totalSteps: 3000 }), optimizers });
 * ```
 */
export function nOfM(options: NOfMOptions): MaskFunction {
  const { n, m } = options ?? ({} as NOfMOptions);
  const scope = options?.scope ?? 'local';
  const withinPrevious = options?.withinPrevious ?? false;
  if (!(Number.isInteger(m) && m >= 1 && Number.isInteger(n) && n >= 1 && n <= m))
    invalid(
      `nOfM: n and m must be whole numbers with 1 ≤ n ≤ m, got n = ${n}, m = ${m}.`,
      'Use a pattern such as { n: 2, m: 4 } or { n: 4, m: 8 }.',
    );
  if (options.axis !== undefined && !(Number.isInteger(options.axis) && options.axis >= 0))
    invalid(
      `nOfM: axis must be a whole number ≥ 0, got ${options.axis}.`,
      'Leave it out for the input dimension.',
    );
  if (scope !== 'local' && scope !== 'global')
    invalid(
      `nOfM: scope must be "local" or "global", got ${JSON.stringify(scope)}.`,
      'Use "local" or "global".',
    );
  if (typeof withinPrevious !== 'boolean')
    invalid(
      `nOfM: withinPrevious must be true or false, got ${JSON.stringify(withinPrevious)}.`,
      'Use true to select inside the previous mask.',
    );
  const finalSparsity = 1 - n / m;
  return {
    id: 'nOfM',
    targetKind: 'sparsity',
    async compute(inputs: readonly MaskInput[], sparsity: number) {
      if (!(sparsity >= 0 && sparsity <= finalSparsity + 1e-9))
        invalid(
          `nOfM: the target sparsity ${sparsity} is outside [0, ${finalSparsity}], the range of ${n}:${m}.`,
          `Give the schedule a final sparsity of ${finalSparsity} (1 − n/m).`,
          ErrorCodes.INVALID_SPARSITY,
        );
      const layouts = inputs.map((input) => layoutOf(input, options.axis, m));
      const scores = await Promise.all(inputs.map((input) => readScores(input.scores)));
      const previous = withinPrevious
        ? await Promise.all(inputs.map((input) => readPrevious(input)))
        : inputs.map(() => undefined);
      // Negated costs: topCountMasks keeps the largest, and the cheapest groups are patterned first.
      const costs = scores.map((values, index) =>
        patternCosts(values, previous[index], layouts[index]!, n, m).map((value) => -value),
      );
      const share = finalSparsity === 0 ? 0 : Math.min(1, sparsity / finalSparsity);
      const patterned =
        scope === 'global'
          ? topCountMasks(costs, Math.round(share * costs.reduce((sum, cost) => sum + cost.length, 0)))
          : costs.map((cost) => topCountMasks([cost], Math.round(share * cost.length))[0]!);
      return inputs.map((input, index) => {
        const values = scores[index]!;
        const before = previous[index];
        const mask = before
          ? Float32Array.from(before, (value) => (value === 0 ? 0 : 1))
          : new Float32Array(values.length).fill(1);
        forEachGroup(layouts[index]!, m, (group, offsets) => {
          if (patterned[index]![group] === 0) return;
          const order = ranked(values, before, offsets);
          for (let rank = n; rank < m; rank += 1) mask[offsets[order[rank]!]!] = 0;
        });
        return tf.tensor(mask, [...input.parameter.shape], 'float32');
      });
    },
    toConfig: () => ({
      type: 'nOfM',
      n,
      m,
      scope,
      ...(withinPrevious ? { withinPrevious } : {}),
      ...(options.axis !== undefined ? { axis: options.axis } : {}),
    }),
  };
}
