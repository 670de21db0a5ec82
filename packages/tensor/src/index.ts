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
  FUSED_ADAM_KERNEL,
  type FusedAdamScalars,
  fusedAdamStep,
  fusedAdamStepHostSlots,
} from './fused-adam';
export { WASM_HEAP_LIMIT_BYTES, wasmHeapExhausted } from './wasm-heap';
export { countTensors, type LeakGuardOptions, withLeakGuard } from './leak-guard';
export { maskedWeight } from './masked-weight';
export { createRandom, type RandomSource } from './random';
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
  type SelectionHint,
  thresholdMaskTensors,
  topCountMaskTensors,
  topCountMasks,
} from './select';
export { registerWasmTrainingKernels, wasmTrainingKernelNames } from './wasm-kernels';
