export {
  loadTfjsNodeGpu,
  NODE_GPU_BACKEND_NAME,
  NODE_GPU_PACKAGE,
  type NodeGpuOptions,
  registerNodeGpuBackend,
} from './node-gpu';
