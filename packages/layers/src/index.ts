export {
  type FromLayersModelOptions,
  fromLayersModel,
  isLayersPrunableModel,
  type LayersPrunableModel,
} from './from-layers-model';
export { type LayersLoss, type LossFunction, resolveLoss } from './losses';
export {
  type PrunableLayerSpec,
  prunableLayerClasses,
  prunableLayerSpec,
  registerPrunableLayer,
} from './registry';
export { declaresPrunableWeights, type PrunableLayer } from './prunable-weights';
export { maskedWeights, type NamedTensor, saveStripped, strip } from './strip';
export { type ShrinkResult, type ShrunkStructure, shrink } from './shrink';
export type { SkippedStructure } from './channel-spaces';
export {
  type PrunedLayersModel,
  type PruneLayersModelOptions,
  pruneLayersModel,
} from './prune-layers-model';
export { type FileSystemHandler, type FileSystemOptions, fileSystem } from './file-system';
export {
  CHECKPOINT_FORMAT_VERSION,
  CHECKPOINT_PREFIX,
  type CheckpointMetadata,
  type DecodedSavedModel,
  type DecodeSavedModelOptions,
  decodeSavedModel,
  readCheckpointMetadata,
} from './checkpoint-contents';
export {
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  loadCheckpoint,
  type PrunerStateSource,
  saveCheckpoint,
} from './checkpoint';
