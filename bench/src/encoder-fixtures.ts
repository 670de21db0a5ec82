/**
 * What the encoder benchmarks share: the small encoder's shape, the seeds of the task splits,
 * where the offline-pretrained encoder lives, and the dense fine-tuning step they time.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adam, Pruner } from '@fineprune/core';
import { topV } from '@fineprune/masks';
import { constant } from '@fineprune/schedulers';
import { magnitude } from '@fineprune/scores';
import { createBertModel, type EncoderConfig } from '@fineprune/transformers';

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

/**
 * Dense fine-tuning of a fresh seeded small encoder (15 labels): a pruner at sparsity 0 whose masks
 * are never re-selected, Adam 1e-4, embeddings frozen — `encoder-throughput`'s dense variant.
 */
export function denseEncoderPruner(): { pruner: Pruner; dispose: () => void } {
  const model = createBertModel({
    config: SMALL_ENCODER,
    task: { type: 'classification', numLabels: 15 },
    seed: 1,
  });
  const pruner = new Pruner({
    model,
    scores: magnitude(),
    mask: topV(),
    schedule: constant({ sparsity: 0, updateInterval: 1e9 }),
    optimizers: { weights: adam({ learningRate: 1e-4 }) },
  });
  return {
    pruner,
    dispose: () => {
      pruner.dispose();
      model.dispose();
    },
  };
}
