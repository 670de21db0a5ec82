/**
 * Kernels and read-backs per encoder fine-tuning step on WebGPU in Node (Dawn), and milliseconds per
 * step, fused kernels against TF.js's op chains (see webgpu-step-measure.ts), on Brown genre batches
 * of `--batch` × 128 tokens. The kernel counts do not depend on the machine; the milliseconds do (on
 * a machine without a GPU Dawn runs on Mesa's llvmpipe, in software). Writes
 * results/webgpu-step[-<label>].json.
 *
 *   cd bench && npx tsx --conditions=source src/webgpu-step.ts [--steps 4] [--batch 16] [--label h100]
 */
import { parseArgs } from 'node:util';
import { disposeWebGPU, webgpuSelection } from '@fineprune/backend-webgpu';
import { batchesFromEncoded } from '@fineprune/text';
import { loadTask } from './encoder-data';
import { SMALL_ENCODER } from './encoder-fixtures';
import { runIfScript, selectBackend, writeResult } from './harness';
import { measureWebGPUSteps } from './webgpu-step-measure';

export async function main(argv = process.argv.slice(2)): Promise<Record<string, unknown>> {
  const { values } = parseArgs({
    args: argv,
    options: {
      steps: { type: 'string', default: '4' },
      batch: { type: 'string', default: '16' },
      label: { type: 'string' },
      data: { type: 'string' },
    },
  });
  const backend = await selectBackend('webgpu');
  const batchSize = Number(values.batch);
  const task = loadTask('brown-genre', values.data, 128);
  const source = batchesFromEncoded(task.train, { batchSize, seed: 1, classes: 15 });
  const measured = await measureWebGPUSteps({
    config: SMALL_ENCODER,
    steps: Number(values.steps),
    batch: (step) => source.batch(step),
    log: (line) => console.log(line),
  });
  const result = {
    backend: backend.backend,
    adapter: webgpuSelection()?.adapter,
    batch: `${batchSize} × 128 tokens (Brown genres)`,
    ...measured,
  };
  const file = writeResult(values.label ? `webgpu-step-${values.label}` : 'webgpu-step', result);
  console.log(JSON.stringify(result, null, 2));
  console.log(`written to ${file}`);
  await disposeWebGPU();
  return result;
}

runIfScript(import.meta.url, main);
