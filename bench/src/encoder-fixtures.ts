/**
 * What the encoder benchmarks share: the small encoder's shape, the seeds of the task splits, and
 * where the offline-pretrained encoder lives.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EncoderConfig } from '@fineprune/transformers';

/** The offline encoder: BERT-Tiny's shape (2 layers, hidden 128, 2 heads; Turc et al. 2019) with bert-base-uncased's vocabulary. */
export const SMALL_ENCODER: EncoderConfig = {
  vocabSize: 30522,
  hiddenSize: 128,
  numLayers: 2,
  numHeads: 2,
  intermediateSize: 512,
  maxPositions: 128,
  typeVocabSize: 2,
  layerNormEpsilon: 1e-12,
  hiddenActivation: 'gelu',
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
  initializerRange: 0.02,
};

/** Seed of the Brown train/dev split (by document). Pretraining leaves the dev documents out. */
export const BROWN_SPLIT_SEED = 0;
/** Seed of the SpamAssassin train/dev split (by message). */
export const SPAM_SPLIT_SEED = 0;

/**
 * Directory of the committed pretrained encoder that the transfer benchmarks start from
 * (model.safetensors, config.json, pretraining.json): BERT-Tiny's shape, pretrained with
 * bench/python/pretrain_encoder_torch.py on a GPU (Hugging Face BertForMaskedLM) on the token ids
 * of `pnpm encoder-data`.
 */
export const PRETRAINED_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'pretrained',
  'encoder-small',
);

/** Where `pnpm encoder-pretrain` (fineprune's own BERT on TF.js) writes its encoder. */
export const TFJS_PRETRAINED_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'pretrained',
  'encoder-small-tfjs',
);
