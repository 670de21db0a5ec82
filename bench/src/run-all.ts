/**
 * Runs every benchmark in sequence (one at a time: the machines have two cores) and writes each
 * one's JSON under results/. The paper-table reproductions (movement-fashion, loss-modelling,
 * encoder-pretrain, encoder-transfer) take from minutes to hours and are run on their own.
 *
 *   pnpm bench            (from the repository root, through turbo)
 */
import { main as backends } from './backends-bench';
import { main as encoderThroughput } from './encoder-throughput';
import { main as kthSelection } from './kth-selection';
import { main as lossModellingStage } from './loss-modelling-stage';
import { main as mainJob } from './main-job';
import { main as mlpStep } from './mlp-step';
import { main as movementStep } from './movement-step';
import { main as sparseKernels } from './sparse-kernels';
import { main as wasmKernels } from './wasm-kernels';

async function runAll(): Promise<void> {
  await kthSelection();
  await mlpStep(['--backend', 'wasm']);
  await mainJob();
  await movementStep([]);
  await wasmKernels([]);
  await sparseKernels([]);
  await lossModellingStage([]);
  await backends([]);
  await encoderThroughput([]);
}

runAll().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
