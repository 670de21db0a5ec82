export {
  type CompressedRows,
  compressedRowsFromDense,
  type DenseToRowsOptions,
  type DenseValues,
  denseFromCompressedRows,
  MAX_LAYOUT_ELEMENTS,
  validateCompressedRows,
} from './layout/compressed-rows';
export { LANES, type SlicedRows, slicedRows, structureSections } from './layout/sliced-rows';
export { registerSparseKernels, sparseKernelConfigs } from './kernels/register';
export { SPARSE_MAT_MUL, type SparseMatMulAttributes } from './kernels/sparse-mat-mul';
export {
  batchBucket,
  clearSparseDenseChoices,
  type ProductPath,
  type SparseDenseChoice,
} from './inference/break-even';
export { sparseMatMul } from './inference/sparse-mat-mul-op';
export {
  type KernelToSparseOptions,
  SparseMatrix,
  sparseMatrix,
  sparseMatrixFromKernel,
} from './inference/sparse-matrix';
export {
  prepareSparseDense,
  prepareSparseDenseFromRows,
  type SparseDenseMode,
  type SparseDenseOptions,
  SparseDenseWeights,
  sparseDense,
} from './inference/sparse-dense';
export { type ValueEncoding, VALUE_ENCODINGS } from './format/values';
export { type MatrixLayout, MATRIX_LAYOUTS } from './format/tensor-layouts';
export {
  COMPACT_FORMAT,
  COMPACT_FORMAT_VERSION,
  type CompactHeader,
  type CompactModelDescription,
  type CompactTensorEntry,
  type LayersModelFields,
  MAX_COMPACT_TENSORS,
} from './format/header';
export {
  assembleCompactModel,
  COMPACT_MAGIC,
  isCompactModel,
  MAX_COMPACT_HEADER_BYTES,
} from './format/container';
export {
  type CompactExportOptions,
  type CompactModelInput,
  type CompactPlan,
  type CompactTensorInput,
  encodeCompactModel,
  largerThanSource,
  type PlannedTensor,
  planCompactModel,
} from './format/encode';
export {
  type CompactModel,
  CompactTensor,
  DEFAULT_MAX_DENSE_BYTES,
  type ReadCompactFileOptions,
  type ReadCompactOptions,
  readCompactFile,
  readCompactModel,
} from './format/read';
export {
  artifactsReferenceBytes,
  compactBytesOfModel,
  compactLayersHandler,
  type CompactSource,
  denseArtifactsOfCompact,
  encodeCompactArtifacts,
  modelArtifacts,
  planCompactArtifacts,
} from './format/layers-artifacts';
export {
  quantizeArtifacts,
  TFJS_QUANTIZATIONS,
  type TfjsQuantization,
} from './format/tfjs-quantization';
export {
  type LoadSparseLayersOptions,
  loadSparseLayersModel,
  type SparseDenseLayerInfo,
  SparseLayersModel,
} from './model/sparse-layers-model';
