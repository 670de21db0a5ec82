/**
 * Runs every benchmark in sequence (one at a time: the machines have two cores) and writes each
 * one's JSON under results/.
 *
 *   pnpm bench            (from the repository root, through turbo)
 */
import { main as backends } from './backends-bench';
import { main as kthSelection } from './kth-selection';
import { main as lossModellingStage } from './loss-modelling-stage';
import { main as mainJob } from './main-job';
import { main as mlpStep } from './mlp-step';
import { main as movementStep } from './movement-step';

async function runAll(): Promise<void> {
  await kthSelection();
  await mlpStep(['--backend', 'wasm']);
  await mainJob();
  await movementStep([]);
  await lossModellingStage([]);
  await backends([]);
}

runAll().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
