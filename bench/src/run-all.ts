/**
 * Runs every benchmark in sequence (one at a time: the machines have two cores) and writes each
 * one's JSON under results/.
 *
 *   pnpm bench            (from the repository root, through turbo)
 */
import { main as kthSelection } from './kth-selection';
import { main as mainJob } from './main-job';
import { main as mlpStep } from './mlp-step';

async function runAll(): Promise<void> {
  await kthSelection();
  await mlpStep(['--backend', 'wasm']);
  await mainJob();
}

runAll().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
