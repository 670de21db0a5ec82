export {
  BROWN_GENRES,
  type BrownDocument,
  type BrownGenre,
  brownPlainText,
  loadBrown,
  loadMobyDick,
  loadSotu,
  loadSpamAssassin,
  type SpamAssassinMessage,
  type TextDocument,
} from './corpora';
export type { MlmBatch, TextBatch, TextInputs } from './batch-types';
export {
  disposeBatch,
  type EncodeExamplesOptions,
  batchesFromEncoded,
  encodeExamples,
  type EncodedExamples,
  TextBatchSource,
} from './encode';
export { decodeQuotedPrintable, htmlToText, mailBody } from './mail';
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
export {
  type BrownGenreCounts,
  type BrownTaskOptions,
  type BrownTaskStats,
  brownGenreTask,
  chunkText,
  type SpamTaskOptions,
  type SpamTaskStats,
  spamTask,
  type TextExample,
  type TextTask,
} from './tasks';
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
