/**
 * The switch for fineprune's fused wasm kernels (the sliced batched product, the fused softmax,
 * GELU and column sums): on unless the environment variable `FINEPRUNE_FUSED` is `0`, read at every
 * call so a benchmark can interleave the fused kernels with the plain op chains in one process.
 */

/**
 * Whether the fused wasm kernels may be used (`FINEPRUNE_FUSED` is not `'0'`; always on where there
 * is no `process`, as in a browser).
 *
 * @returns false only when `process.env.FINEPRUNE_FUSED === '0'`
 *
 * @example
 * ```ts
 * process.env.FINEPRUNE_FUSED = '0'; // the plain op chains from now on
 * fusedKernelsEnabled(); // false
 * ```
 */
export function fusedKernelsEnabled(): boolean {
  return environmentValue('FINEPRUNE_FUSED') !== '0';
}

/**
 * Whether `maskedDense` may take its sparse route on wasm (`FINEPRUNE_SPARSE_ROUTE` is not `'0'`,
 * and the fused kernels are on), read at every call like {@link fusedKernelsEnabled}.
 *
 * @returns false when `FINEPRUNE_SPARSE_ROUTE` or `FINEPRUNE_FUSED` is `'0'`
 *
 * @example
 * ```ts
 * process.env.FINEPRUNE_SPARSE_ROUTE = '0'; // masked projections multiply W ⊙ M densely
 * ```
 */
export function sparseRouteEnabled(): boolean {
  return environmentValue('FINEPRUNE_SPARSE_ROUTE') !== '0' && fusedKernelsEnabled();
}

function environmentValue(name: string): string | undefined {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
}
