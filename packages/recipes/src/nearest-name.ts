/** Levenshtein distance, capped: names far apart in length or very long count as far (99). */
function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3 || a.length > 64 || b.length > 64) return 99;
  const row = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/**
 * The candidate closest to `name` (case-insensitive edit distance of at most 2), for "did you
 * mean" hints; `undefined` when none is that close.
 *
 * @example
 * ```ts
 * nearestName('intervl', ['interval', 'totalSteps']); // 'interval'
 * nearestName('finalSparsty', ['finalSparsity', 'initialSparsity']); // 'finalSparsity'
 * ```
 */
export function nearestName(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: { candidate: string; score: number } | undefined;
  for (const candidate of candidates) {
    const score = distance(lower, candidate.toLowerCase());
    if (score <= 2 && (best === undefined || score < best.score)) best = { candidate, score };
  }
  return best?.candidate;
}
