export type { MlmBatch, TextBatch, TextInputs } from './batch-types';
export {
  disposeBatch,
  type EncodeExamplesOptions,
  batchesFromEncoded,
  encodeExamples,
  TextBatchSource,
} from './encode';
export {
  type EncodedExamples,
  EncodedExamplesBuilder,
  type EncodeTruncatedOptions,
  encodeTruncated,
} from './encode-example';
export {
  type MlmArrays,
  type MlmBatchOptions,
  MlmBatchSource,
  type MlmCorpus,
  type MlmCorpusOptions,
  type MlmSplit,
  mlmBatches,
  mlmCorpus,
} from './mlm';
export { randomBelow, StreamDomain, streamRandom } from './streams';
export { chunkText, type TextExample, type TextTask } from './tasks';
export {
  BERT_VOCAB_SIZE,
  type BertTokenizer,
  type BertTokenizerOptions,
  bertBaseUncasedVocabulary,
  bertTokenizerJson,
  createBertTokenizer,
  type DecodeOptions,
  type EncodeOptions,
  type Encoded,
  fromSentencePieceVocabulary,
  type SpecialIds,
} from './tokenizer';
