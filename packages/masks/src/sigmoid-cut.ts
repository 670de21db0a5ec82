/**
 * How `threshold({ on: 'sigmoid' })` compares σ(S) with τ:
 *
 * - `logit` (default): S > logit(τ), the exact comparison of real numbers (τ ≤ 0 keeps every finite
 *   score, τ ≥ 1 none).
 * - `float32`: σ(S) rounded to float32 > τ rounded to float32, as the movement-pruning reference
 *   computes it in PyTorch. The two differ only at ties made by float32 rounding: at τ = 0.5 a score
 *   of 1e-9 has σ(S) = 0.5 in float32 and is dropped, at τ = 0 a score of −200 has σ(S) = 0 and
 *   is dropped; `logit` keeps both.
 *
 * @example
 * ```ts
 * const comparison: SigmoidComparison = 'float32';
 * ```
 */
export type SigmoidComparison = 'logit' | 'float32';

const bits = new DataView(new ArrayBuffer(4));

/** An integer whose order is the order of float32 values: negatives flipped, positives offset. */
function orderKey(value: number): number {
  bits.setFloat32(0, value);
  const raw = bits.getUint32(0);
  return raw >= 0x80000000 ? 0xffffffff - raw : raw + 0x80000000;
}

function fromOrderKey(key: number): number {
  bits.setUint32(0, key >= 0x80000000 ? key - 0x80000000 : 0xffffffff - key);
  return bits.getFloat32(0);
}

function sigmoidFloat32(score: number): number {
  return Math.fround(1 / (1 + Math.exp(-score)));
}

/**
 * The score cut that the `float32` comparison amounts to: the largest float32 s with
 * fround(σ(s)) ≤ fround(τ). σ rounded to float32 never decreases, so for every float32 score S,
 * fround(σ(S)) > fround(τ) ⇔ S > s, and the mask stays one comparison of the scores.
 *
 * @returns −∞ when every score passes (τ < 0), +∞ when none does (τ ≥ 1)
 *
 * @example
 * ```ts
 * float32SigmoidCut(0.5); // 1.1920929e-7 (2⁻²³): up to it σ(S) rounds to 0.5 in float32
 * ```
 */
export function float32SigmoidCut(tau: number): number {
  const limit = Math.fround(tau);
  let low = orderKey(Number.NEGATIVE_INFINITY);
  let high = orderKey(Number.POSITIVE_INFINITY);
  if (sigmoidFloat32(fromOrderKey(high)) <= limit) return Number.POSITIVE_INFINITY;
  if (sigmoidFloat32(fromOrderKey(low)) > limit) return Number.NEGATIVE_INFINITY;
  // Invariant: σ(low) ≤ limit < σ(high), over the float32 values in order.
  while (high - low > 1) {
    const middle = low + Math.floor((high - low) / 2);
    if (sigmoidFloat32(fromOrderKey(middle)) <= limit) low = middle;
    else high = middle;
  }
  return fromOrderKey(low);
}

/**
 * The score cut of a sigmoid threshold τ: S > cut ⇔ σ(S) > τ under `comparison`.
 *
 * @example
 * ```ts
 * sigmoidCut(0.1, 'logit'); // log(0.1 / 0.9) ≈ −2.197
 * ```
 */
export function sigmoidCut(tau: number, comparison: SigmoidComparison): number {
  if (Number.isNaN(tau)) return Number.POSITIVE_INFINITY;
  if (comparison === 'float32') return float32SigmoidCut(tau);
  if (tau <= 0) return Number.NEGATIVE_INFINITY;
  if (tau >= 1) return Number.POSITIVE_INFINITY;
  return Math.log(tau / (1 - tau)); // σ(S) > τ ⇔ S > logit(τ)
}
