export {
  fusedWebGPUKernelNames,
  registerFusedWebGPUKernels,
  unregisterFusedWebGPUKernels,
} from './fused-kernels';
export { gpuTopCountMasks } from './gpu-selection';
export {
  type AdapterAttempt,
  type AdapterLike,
  type AdapterPreference,
  type DeviceLike,
  defaultAdapterPreferences,
  disposeWebGPU,
  type GpuLike,
  registerWebGPUBackend,
  requestWebGPUDevice,
  type WebGPUDeviceSelection,
  type WebGPUEnvironment,
  type WebGPUOptions,
  webgpuSelection,
} from './webgpu';
export { countWebGPUWork, type WebGPUWorkCounter, type WebGPUWorkCounts } from './work-counter';
