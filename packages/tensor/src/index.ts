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
export { dense } from './dense';
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
export { FUSED_ADAM_KERNEL, type FusedAdamScalars, fusedAdamStep } from './fused-adam';
export {
  FUSED_KERNELS,
  type FusedKernelName,
  fusedKernelAvailable,
  registerFusedKernelGradients,
} from './fused-kernels';
export { countTensors, type LeakGuardOptions, withLeakGuard } from './leak-guard';
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
