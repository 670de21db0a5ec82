/**
 * What the prunings must give, computed here from the papers' definitions and the weights the run
 * reports, without any fineprune code.
 */
import { expect } from 'vitest';
import type { KernelReport, PruningReport } from '../src/pruning';

/**
 * The cubic schedule, Eq. (5) of Movement Pruning (Sanh et al., 2020), with (t − t_i) in the middle
 * case as in Zhu & Gupta (2018): v_i = 0 during t_i warm-up steps, then
 * v_f + (v_i − v_f)(1 − (t − t_i)/(T − t_i − t_f))³, then v_f for the last t_f steps (Δt = 1).
 */
export function cubicTarget(
  t: number,
  schedule: { finalSparsity: number; totalSteps: number; warmupSteps: number; cooldownSteps: number },
): number {
  const { finalSparsity, totalSteps, warmupSteps, cooldownSteps } = schedule;
  if (t < warmupSteps) return 0;
  if (t >= totalSteps - cooldownSteps) return finalSparsity;
  const span = totalSteps - warmupSteps - cooldownSteps;
  return finalSparsity + (0 - finalSparsity) * (1 - (t - warmupSteps) / span) ** 3;
}

/** Number kept at sparsity v of n weights: n − round(v·n) (the Top-v of Eq. 1 keeps exactly that many). */
export function keptAt(sparsity: number, total: number): number {
  return total - Math.round(sparsity * total);
}

/**
 * The global Top-v mask by magnitude: ones at the `keep` entries of largest |W| over all kernels
 * together (ties to the earlier entry), zeros elsewhere.
 */
export function topMagnitudeMasks(kernels: readonly number[][], keep: number): number[][] {
  const entries = kernels.flatMap((weights, kernel) =>
    weights.map((value, index) => ({ magnitude: Math.abs(value), kernel, index })),
  );
  entries.sort((a, b) => b.magnitude - a.magnitude || a.kernel - b.kernel || a.index - b.index);
  const masks = kernels.map((weights) => weights.map(() => 0));
  for (const entry of entries.slice(0, keep)) masks[entry.kernel]![entry.index] = 1;
  return masks;
}

function total(kernels: readonly KernelReport[]): number {
  return kernels.reduce((sum, kernel) => sum + kernel.weights.length, 0);
}

/** Each effective weight is W where M = 1 and exactly zero where M = 0; masks hold only 0 and 1. */
function expectMaskedWeights(kernels: readonly KernelReport[]): void {
  for (const kernel of kernels) {
    expect(kernel.weights).toHaveLength(kernel.shape.reduce((a, b) => a * b, 1));
    expect(kernel.mask.every((m) => m === 0 || m === 1)).toBe(true);
    kernel.effective.forEach((value, index) => {
      // W · 1 is W exactly in float32; W · 0 may be −0.
      if (kernel.mask[index] === 1) expect(value).toBe(kernel.weights[index]);
      else expect(Math.abs(value)).toBe(0);
    });
  }
}

/**
 * Checks one run: the one-shot masks are exactly the global Top-50% of |W|; the gradual run followed
 * Eq. 5 step by step, kept exactly n − round(v·n) weights after each step, lowered the loss, and
 * zeroed the pruned weights; nothing leaked.
 */
export function expectCorrectPruning(report: PruningReport): void {
  const { oneShot, gradual } = report;
  const n = total(oneShot.kernels);
  expect(n).toBe(12 * 16 + 16 * 4);
  const expected = topMagnitudeMasks(
    oneShot.kernels.map((kernel) => kernel.weights),
    keptAt(oneShot.sparsity, n),
  );
  expect(oneShot.kernels.map((kernel) => kernel.mask)).toEqual(expected);
  expect(oneShot.kernels.flatMap((kernel) => kernel.mask).filter((m) => m === 1)).toHaveLength(n / 2);
  expect(oneShot.kept).toBe(n / 2);
  expectMaskedWeights(oneShot.kernels);

  expect(gradual.steps).toHaveLength(gradual.totalSteps);
  gradual.steps.forEach((step, index) => {
    expect(step.step).toBe(index + 1);
    expect(step.target).toBeCloseTo(cubicTarget(index, gradual), 12);
    expect(step.kept).toBe(keptAt(step.target, n));
    expect(Number.isFinite(step.loss)).toBe(true);
  });
  expect(gradual.steps.at(-1)!.target).toBe(gradual.finalSparsity);
  expect(gradual.steps.at(-1)!.loss).toBeLessThan(gradual.initialLoss);
  expect(gradual.kernels.flatMap((kernel) => kernel.mask).filter((m) => m === 1)).toHaveLength(
    keptAt(gradual.finalSparsity, n),
  );
  expectMaskedWeights(gradual.kernels);

  expect(report.tensorsAfter).toBe(report.tensorsBefore);
}
