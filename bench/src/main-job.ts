/**
 * Runs the main job (gradual magnitude pruning of the MNIST MLP to 90%, full data, wasm) exactly as
 * `pnpm start` does, and records accuracy, wall time and peak memory in results/main-job.json.
 *
 *   cd bench && pnpm main-job
 */
import { runGradualMagnitude } from '@fineprune/example-gradual-magnitude/job';
import { writeResult, runIfScript } from './harness';

export async function main(): Promise<Record<string, unknown>> {
  const result = await runGradualMagnitude({});
  const record = {
    description:
      'pnpm start: 784-300-100-10 ReLU MLP, full MNIST, batch 100, Adam 1e-3, 10 epochs (2 dense, cubic to 90% global magnitude, 3 cool-down), Δt = 100',
    backend: result.backend.backend,
    steps: result.steps,
    denseTestAccuracy: result.denseAccuracy,
    prunedTestAccuracy: result.prunedAccuracy,
    targetPrunedTestAccuracy: 0.975,
    sparsity: result.report.sparsity,
    perLayer: result.report.parameters.map(({ name, shape, kept, sparsity }) => ({
      name,
      shape,
      kept,
      sparsity,
    })),
    seconds: Math.round(result.seconds * 10) / 10,
    targetSeconds: 300,
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  const file = writeResult('main-job', record);
  console.log(JSON.stringify(record, null, 2));
  console.log(`written to ${file}`);
  return record;
}

runIfScript(import.meta.url, main);
