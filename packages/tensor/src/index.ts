// By package name, so that the registration stays in one file of its own in dist (listed in
// package.json `sideEffects`) instead of a shared chunk.
import '@fineprune/tensor/register-gradients';
export { ADD_MANY_GROUP, addMany } from './add-many';
export {
  type BackendAttempt,
  type BackendName,
  type BackendProvider,
  type BackendSelection,
  backendProviders,
  currentBackend,
  defaultBackendName,
  registerBackendProvider,
  releaseWasmBackend,
  type SetBackendOptions,
  setBackend,
} from './backend';
export { batchMatMul, SLICED_BATCH_MAT_MUL_KERNEL } from './batch-mat-mul';
export { dense } from './dense';
export { FUSED_GELU_GRAD_KERNEL, FUSED_GELU_KERNEL, gelu, geluGradient, geluTanh } from './fused-gelu';
export { columnSums, FUSED_COLUMN_SUM_KERNEL } from './fused-column-sum';
export {
  FUSED_CROSS_ENTROPY_KERNELS,
  FUSED_CROSS_ENTROPY_MAX_SIZE,
  softmaxCrossEntropy,
} from './fused-cross-entropy';
export { dropoutMask, FUSED_DROPOUT_MASK_KERNEL } from './fused-dropout';
export { FUSED_GATHER_KERNEL, gatherRows } from './fused-gather';
export { FUSED_LAYER_NORM_GRAD_KERNEL, FUSED_LAYER_NORM_KERNEL, layerNorm } from './fused-layer-norm';
export {
  FUSED_SOFTMAX_GRAD_KERNEL,
  FUSED_SOFTMAX_KERNEL,
  scaledMaskedSoftmax,
  softmax,
} from './fused-softmax';
export { fusedKernelsEnabled, sparseRouteEnabled } from './fused-switch';
export { FUSED_TRANSPOSE_KERNEL, transposeLastTwo } from './fused-transpose';
export {
  check,
  ErrorCodes,
  FinepruneError,
  type FinepruneErrorCode,
  type FinepruneErrorOptions,
} from './errors';
export { checkJsonBounds, type JsonBounds, type JsonExcess, quoteText } from './json-bounds';
export { type ReadRegularFileOptions, readRegularFile } from './regular-file';
export {
  FUSED_GATE_KERNELS,
  fusedHardConcreteGate,
  fusedHardConcreteMaskedWeight,
  fusedHardConcreteTestMasks,
  fusedSigmoidSum,
  fusedUniformNoise,
  type HardConcreteGateParameters,
} from './fused-gates';
export {
  hardConcreteGateTensor,
  hardConcreteMaskedWeightTensor,
  hardConcreteTestMaskTensor,
  hardConcreteTestMaskTensors,
  sigmoidSumTensor,
  uniformNoiseTensor,
} from './gates';
export {
  FUSED_ADAM_KERNEL,
  type FusedAdamScalars,
  fusedAdamStep,
  fusedAdamStepHostSlots,
} from './fused-adam';
export { WASM_HEAP_LIMIT_BYTES, wasmHeapExhausted } from './wasm-heap';
export {
  FUSED_KERNELS,
  type FusedKernelName,
  fusedKernelAvailable,
  registerFusedKernelGradients,
} from './fused-kernels';
export { countTensors, type LeakGuardOptions, withLeakGuard } from './leak-guard';
export { type MaskedDenseActivation, type MaskedDenseOptions, maskedDense } from './masked-dense';
export {
  MASKED_SPARSE_KERNELS,
  SPARSE_ROUTE_MAX_DENSITY,
  straightThroughGradients,
} from './masked-sparse';
export { maskedWeight } from './masked-weight';
export { createRandom, isXoshiro128, type RandomSource } from './random';
export {
  importNodeBuiltin,
  isNode,
  type NodeBuiltinName,
  type NodeBuiltins,
  nodeBuiltinSync,
  sharedState,
} from './runtime';
export {
  kthLargest,
  kthLargestOfTensors,
  readFloat32,
  registerTopCountRoute,
  type SelectionHint,
  type TopCountRoute,
  thresholdMaskTensors,
  topCountMaskTensors,
  topCountMasks,
} from './select';
export { registerWasmTrainingKernels, wasmTrainingKernelNames } from './wasm-kernels';
export {
  coreCount,
  MAX_WASM_THREADS,
  parseWasmThreads,
  resolveWasmThreads,
  WASM_THREADS_VARIABLE,
  type WasmThreads,
  wasmThreadsInUse,
} from './wasm-threads';
