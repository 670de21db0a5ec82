import type { Histogram, ParameterSample } from '../run-record';

/**
 * Most points per parameter in the weight–score scatter (Fig. 4b).
 *
 * @example
 * ```ts
 * sampleParameter(name, weights, scores, mask, 'learned', MAX_SAMPLES);
 * ```
 */
export const MAX_SAMPLES = 1500;
/**
 * Bins of the kept-weight histogram (Fig. 4a).
 *
 * @example
 * ```ts
 * keptHistogram(weights, mask, HISTOGRAM_BINS);
 * ```
 */
export const HISTOGRAM_BINS = 40;

/**
 * A histogram of `values` over `[low, high]` in `bins` equal bins (the last bin includes `high`).
 *
 * @example
 * ```ts
 * histogram([0, 0.5, 1], 2, 0, 1); // { edges: [0, 0.5, 1], counts: [1, 2] }
 * ```
 */
export function histogram(values: ArrayLike<number>, bins: number, low: number, high: number): Histogram {
  const width = high > low ? (high - low) / bins : 1;
  const counts = new Array<number>(bins).fill(0);
  for (let index = 0; index < values.length; index++) {
    const value = values[index]!;
    if (!Number.isFinite(value)) continue;
    const bin = Math.min(bins - 1, Math.max(0, Math.floor((value - low) / width)));
    counts[bin]! += 1;
  }
  const edges = Array.from({ length: bins + 1 }, (_, index) => low + index * width);
  return { edges, counts };
}

/**
 * The kept weights of a parameter (mask ≠ 0) as a histogram over a range symmetric about 0.
 *
 * @example
 * ```ts
 * keptHistogram(new Float32Array([0.1, -0.2, 0.3]), new Float32Array([1, 1, 0]));
 * ```
 */
export function keptHistogram(weights: Float32Array, mask: Float32Array, bins = HISTOGRAM_BINS): Histogram {
  const kept: number[] = [];
  let limit = 0;
  for (let index = 0; index < weights.length; index++) {
    if (mask[index] !== 0) {
      const value = weights[index]!;
      kept.push(value);
      limit = Math.max(limit, Math.abs(value));
    }
  }
  return histogram(kept, bins, -(limit || 1), limit || 1);
}

/**
 * A deterministic, evenly spread sample of a parameter's weights, scores and mask for the plots of
 * Fig. 4 of Movement Pruning, with the histogram of all its kept weights.
 *
 * @example
 * ```ts
 * const sample = sampleParameter('dense_1/kernel', weights, scores, mask, 'learned');
 * ```
 */
export function sampleParameter(
  name: string,
  weights: Float32Array,
  scores: Float32Array,
  mask: Float32Array,
  scoreSource: ParameterSample['scoreSource'],
  maxSamples = MAX_SAMPLES,
): ParameterSample {
  const count = Math.min(weights.length, maxSamples);
  const sampledWeights: number[] = [];
  const sampledScores: number[] = [];
  const kept: number[] = [];
  const round = (value: number) => Number(value.toPrecision(5));
  for (let index = 0; index < count; index++) {
    const at = Math.floor((index * weights.length) / count);
    sampledWeights.push(round(weights[at]!));
    sampledScores.push(round(scores[at]!));
    kept.push(mask[at] !== 0 ? 1 : 0);
  }
  return {
    name,
    scoreSource,
    weights: sampledWeights,
    scores: sampledScores,
    kept,
    keptHistogram: keptHistogram(weights, mask),
  };
}
