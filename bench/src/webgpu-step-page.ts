/**
 * The browser side of `webgpu-step-browser`: sets up fineprune's WebGPU backend on `navigator.gpu`
 * and runs the measurement of webgpu-step-measure.ts on synthetic token batches (the corpora are
 * Node packages; the kernel counts do not depend on the tokens). Options come from the driver in
 * `window.webgpuStepOptions`; the result goes to `window.webgpuStepResult`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { registerWebGPUBackend, webgpuSelection } from '@fineprune/backend-webgpu';
import type { Batch } from '@fineprune/core';
import { createRandom, setBackend } from '@fineprune/tensor';
import type { EncoderConfig } from '@fineprune/transformers';
import { measureWebGPUSteps } from './webgpu-step-measure';

declare global {
  interface Window {
    webgpuStepOptions?: { config: EncoderConfig; steps: number; batchSize: number };
    webgpuStepResult?: Record<string, unknown>;
    webgpuStepError?: string;
  }
}

/** A batch of random token ids (the last quarter of every other sequence padded) and labels. */
function syntheticBatch(config: EncoderConfig, batchSize: number, step: number): Batch {
  const random = createRandom(1000 + step);
  const length = config.maxPositions;
  const ids = new Int32Array(batchSize * length);
  const mask = new Int32Array(batchSize * length);
  for (let row = 0; row < batchSize; row += 1) {
    const real = row % 2 === 0 ? length : Math.floor((3 * length) / 4);
    for (let column = 0; column < real; column += 1) {
      ids[row * length + column] = 1 + Math.floor(random.next() * (config.vocabSize - 1));
      mask[row * length + column] = 1;
    }
  }
  const labels = Int32Array.from({ length: batchSize }, () => Math.floor(random.next() * 15));
  return {
    x: {
      inputIds: tf.tensor2d(ids, [batchSize, length], 'int32'),
      tokenTypeIds: tf.zeros([batchSize, length], 'int32'),
      attentionMask: tf.tensor2d(mask, [batchSize, length], 'int32'),
    },
    y: tf.tensor1d(labels, 'int32'),
  };
}

async function run(): Promise<Record<string, unknown>> {
  const options = window.webgpuStepOptions;
  if (options === undefined) throw new Error('window.webgpuStepOptions is missing');
  registerWebGPUBackend();
  const selection = await setBackend('webgpu');
  const log = (line: string) => console.log(line);
  const measured = await measureWebGPUSteps({
    config: options.config,
    steps: options.steps,
    batch: (step) => syntheticBatch(options.config, options.batchSize, step),
    log,
  });
  return {
    backend: selection.backend,
    adapter: webgpuSelection()?.adapter,
    userAgent: navigator.userAgent,
    batch: `${options.batchSize} × ${options.config.maxPositions} tokens (synthetic ids)`,
    ...measured,
  };
}

run().then(
  (result) => {
    window.webgpuStepResult = result;
  },
  (error: unknown) => {
    window.webgpuStepError = error instanceof Error ? (error.stack ?? error.message) : String(error);
  },
);
