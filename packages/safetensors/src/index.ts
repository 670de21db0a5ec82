/**
 * `@fineprune/safetensors`: a defensive reader and a deterministic writer of Hugging Face's
 * safetensors weight files, plus TF.js glue. The Node.js file layer (atomic writes) is the
 * subpath `@fineprune/safetensors/node`.
 */
export { decodeFloat32, decodeInt32 } from './decode';
export {
  type DtypeInfo,
  type DtypeKind,
  dtypeInfo,
  isSafetensorsDtype,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
} from './dtypes';
export {
  type EncodableDtype,
  encodeSafetensors,
  planSafetensorsStream,
  type SafetensorsInput,
  type StreamedTensor,
} from './encode';
export {
  bfloat16BitsToFloat32,
  float8E4M3BitsToFloat32,
  float8E5M2BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './half';
export {
  DEFAULT_MAX_HEADER_BYTES,
  type ReadSafetensorsOptions,
  readSafetensors,
  type SafetensorsFile,
  type SafetensorsTensor,
} from './read';
export {
  type SafetensorsFromTensorsOptions,
  safetensorsFromTensors,
  type TensorsFromSafetensorsOptions,
  tensorsFromSafetensors,
} from './tfjs';
