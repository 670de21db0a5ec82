export {
  bertBaseUncasedConfig,
  configFromHuggingFace,
  configToHuggingFace,
  type EncoderConfig,
  type HiddenActivation,
  type HuggingFaceConfigValue,
  layerHeads,
  layerIntermediateSize,
  validateConfig,
} from './config';
export {
  type BertLayoutEntry,
  type BertTask,
  type BertVariablePart,
  bertLayout,
  validateTask,
} from './layout';
export {
  type BertInputs,
  type BertModel,
  type BertModelOptions,
  type BertVariable,
  createBertModel,
  MASK_VALUE,
  mlmAccuracy,
} from './model';
export {
  applyProjection,
  type AttentionInputs,
  batchMatMul,
  gelu,
  geluTanh,
  layerNorm,
  multiHeadAttention,
  type Projection,
  type ProjectionFunction,
  type ProjectionWeights,
  rowCrossEntropy,
  seededDropout,
} from './ops';
export {
  type ExportHuggingFaceOptions,
  exportHuggingFace,
  huggingFaceConfig,
  type HuggingFaceLoadReport,
  huggingFaceNames,
  type HuggingFaceTensor,
  huggingFaceTensors,
  type LoadHuggingFaceOptions,
  loadHuggingFaceTensors,
  loadHuggingFaceWeights,
  MASK_SUFFIX,
  taskFromHuggingFace,
} from './checkpoint';
export { bertStructures } from './structures';
export { type ShrinkBertReport, shrinkBertModel } from './shrink';
