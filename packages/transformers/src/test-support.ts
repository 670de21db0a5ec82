/**
 * Plain-JS (float64) references and fixtures shared by the tests; not part of the public API.
 */

import { bertBaseUncasedConfig, type EncoderConfig } from './config';

/** A tiny encoder (hidden 4, 2 layers, 2 heads) with large initial weights, for fast exact tests. */
export const tinyEncoderConfig: EncoderConfig = {
  ...bertBaseUncasedConfig,
  vocabSize: 11,
  hiddenSize: 4,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 8,
  maxPositions: 6,
  initializerRange: 0.5,
};

/**
 * One row of multi-head self-attention written from Vaswani et al. (2017), Eq. 1: for position `i`,
 * softmax(q_i·k_jᵀ/√d + mask_j) v_j per head, with −10000 added where `mask[j]` is not 1.
 */
export function attentionRow(
  q: readonly number[][],
  k: readonly number[][],
  v: readonly number[][],
  mask: readonly number[],
  heads: number,
  i: number,
): number[] {
  const width = q[i]!.length;
  const d = width / heads;
  const out = new Array<number>(width).fill(0);
  for (let head = 0; head < heads; head += 1) {
    const scores = k.map((key, j) => {
      let dot = 0;
      for (let t = 0; t < d; t += 1) dot += q[i]![head * d + t]! * key[head * d + t]!;
      return dot / Math.sqrt(d) + (mask[j] === 1 ? 0 : -10000);
    });
    const top = Math.max(...scores);
    const exps = scores.map((score) => Math.exp(score - top));
    const total = exps.reduce((a, b) => a + b, 0);
    for (let j = 0; j < k.length; j += 1) {
      for (let t = 0; t < d; t += 1) out[head * d + t]! += (exps[j]! / total) * v[j]![head * d + t]!;
    }
  }
  return out;
}
