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
