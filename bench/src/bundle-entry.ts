/**
 * The entry of the single-file bench bundle (`pnpm bundle`): the benchmarks that a machine without
 * pnpm or the corpora packages can run from a bundle, given the tokenized data (`encoder-data`).
 */
export { disposeWebGPU } from '@fineprune/backend-webgpu';
export { main as backends } from './backends-bench';
export { main as encoderPretrain } from './encoder-pretrain';
export { main as encoderThroughput } from './encoder-throughput';
export { main as encoderTransfer } from './encoder-transfer';
export { main as mlpStep } from './mlp-step';
export { main as movementStep } from './movement-step';
export { main as webgpuProjection } from './webgpu-projection';
export { main as webgpuStep } from './webgpu-step';
