import { existsSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError, type PrunerState } from '@fineprune/core';
import type { Recipe } from '@fineprune/recipes';
import type { BertModel } from '@fineprune/transformers';
import {
  type BertPrunerStateSource,
  hasBertCheckpoint,
  loadBertCheckpoint,
  loadHuggingFaceDirectory,
  saveBertCheckpoint,
} from '@fineprune/transformers/node';
import type { RunCheckpointMetadata } from './checkpoint';
import type { RunData } from './run-data';

/** The `huggingFace` model section of a recipe. */
type HuggingFaceSection = Extract<Recipe['model'], { huggingFace: string }>;

function mismatch(message: string, fix: string, details: Record<string, unknown> = {}): FinepruneError {
  return new FinepruneError({
    code: ErrorCodes.SHAPE_MISMATCH,
    message,
    fix,
    details: { path: 'model.huggingFace', ...details },
  });
}

/**
 * Throws SHAPE_MISMATCH unless a BERT model reads the run's text data: token ids within its
 * vocabulary, sequences within its positions, one output per label.
 */
function checkBertFitsData(model: BertModel, data: RunData, where: string): void {
  if (data.kind !== 'text')
    throw mismatch(
      `${where}: a BERT model reads text, but ${data.name} is ${data.kind === 'features' ? 'images (flat feature vectors)' : 'a data module'}.`,
      'Use text data (data.text, or data.dataset: brown-genre | spam-assassin), or a TF.js model for this data.',
    );
  const { vocabSize, maxPositions } = model.config;
  if ((data.vocabularySize ?? 0) > vocabSize)
    throw mismatch(
      `${where}: the tokenizer's vocabulary has ${data.vocabularySize} entries but the model embeds ${vocabSize} (config.json vocab_size).`,
      'Tokenize with the vocab.txt the model was trained with (put it beside config.json, or set data.tokenizer.vocabulary).',
    );
  if ((data.sequenceLength ?? 0) > maxPositions)
    throw mismatch(
      `${where}: data.tokenizer.maxLength ${data.sequenceLength} is longer than the model's ${maxPositions} positions.`,
      `Set data.tokenizer.maxLength to at most ${maxPositions}.`,
    );
  const task = model.task;
  if (task.type !== 'classification' || task.numLabels !== data.classes)
    throw mismatch(
      `${where}: the model has ${task.type === 'classification' ? `${task.numLabels} outputs` : `a ${task.type} head`}, the ${data.name} task has ${data.classes} labels.`,
      'Train and distil models with one output per label of the task.',
      { classes: data.classes },
    );
}

/**
 * Opens a `model.huggingFace` folder (config.json + model.safetensors) as a BERT classifier with one
 * output per label of the data: the encoder must be complete; with `strict: false` (the default) a
 * missing or other-sized pooler or classifier starts fresh from the recipe's seed, as when
 * fine-tuning a pretrained encoder.
 *
 * @throws FinepruneError the loader's `IO_FAILED`, `CHECKPOINT_CORRUPT`, `CHECKPOINT_MISMATCH`, or
 *   `SHAPE_MISMATCH` when the model does not read the data
 *
 * @example
 * ```ts
 * const model = await openBertModel(recipe, recipe.model, { baseDirectory: '.', data });
 * ```
 */
export async function openBertModel(
  recipe: Recipe,
  section: HuggingFaceSection,
  options: { baseDirectory: string; data: RunData },
): Promise<BertModel> {
  const directory = path.resolve(options.baseDirectory, section.huggingFace);
  const { model } = await loadHuggingFaceDirectory(directory, {
    task: { type: 'classification', numLabels: options.data.classes },
    seed: recipe.seed,
    freezeEmbeddings: section.freezeEmbeddings,
    strict: section.strict,
  });
  try {
    checkBertFitsData(model, options.data, 'model.huggingFace');
    return model;
  } catch (error) {
    model.dispose();
    throw error;
  }
}

/**
 * True when the directory holds a BERT run checkpoint.
 *
 * @example
 * ```ts
 * hasBertRunCheckpoint('out/run/checkpoint');
 * ```
 */
export function hasBertRunCheckpoint(directory: string): boolean {
  return hasBertCheckpoint(directory);
}

/**
 * Loads a BERT run checkpoint: the model, the pruner state and the run metadata (checked to fit the data).
 *
 * @example
 * ```ts
 * const { model, state, metadata } = await resumeBertModel('out/run/checkpoint', data);
 * ```
 */
export async function resumeBertModel(
  directory: string,
  data: RunData,
): Promise<{ model: BertModel; state: PrunerState; metadata: RunCheckpointMetadata | undefined }> {
  const loaded = await loadBertCheckpoint(directory);
  try {
    checkBertFitsData(loaded.model, data, `the checkpoint in ${directory}`);
  } catch (error) {
    loaded.model.dispose();
    throw error;
  }
  const metadata = loaded.metadata as RunCheckpointMetadata | null;
  return {
    model: loaded.model,
    state: loaded.state,
    metadata: metadata?.formatVersion === 1 ? metadata : undefined,
  };
}

/**
 * Saves a BERT run checkpoint with its run metadata (the recipe key and the history).
 *
 * @example
 * ```ts
 * await saveBertRunCheckpoint('out/run/checkpoint', model, pruner, { formatVersion: 1, recipeKey, history });
 * ```
 */
export async function saveBertRunCheckpoint(
  directory: string,
  model: BertModel,
  pruner: BertPrunerStateSource,
  metadata: RunCheckpointMetadata,
): Promise<void> {
  await saveBertCheckpoint(model, pruner, directory, { metadata });
}

/**
 * True when a path names a Hugging Face folder (config.json, no model.json): a distillation
 * teacher given this way is loaded as a BERT model rather than a TF.js layers model.
 *
 * @example
 * ```ts
 * isHuggingFaceFolder(path.resolve(baseDirectory, './out/spam-dense/model'));
 * ```
 */
export function isHuggingFaceFolder(directory: string): boolean {
  return existsSync(path.join(directory, 'config.json')) && !existsSync(path.join(directory, 'model.json'));
}

/**
 * Opens a distillation teacher from a Hugging Face folder: a complete BERT classifier (`strict`:
 * every tensor of encoder and head present) with as many outputs as the student has labels.
 *
 * @throws FinepruneError the loader's errors (naming the file), `SHAPE_MISMATCH` when the student is
 *   no BERT classifier or the teacher's head has another number of labels
 *
 * @example
 * ```ts
 * const teacher = await openBertTeacher('/abs/out/spam-dense/model', student, 'lossTerms[0].options.teacher');
 * ```
 */
export async function openBertTeacher(
  directory: string,
  student: unknown,
  where: string,
): Promise<BertModel> {
  const task = (student as Partial<BertModel> | undefined)?.task;
  if (task?.type !== 'classification')
    throw mismatch(
      `${where}: ${directory} is a Hugging Face BERT folder, but the model being pruned is not a BERT classifier.`,
      'Distil a model.huggingFace student from a BERT teacher, or a TF.js model from a TF.js teacher (model.json).',
      { path: where },
    );
  const { model } = await loadHuggingFaceDirectory(directory, {
    task: { type: 'classification', numLabels: task.numLabels },
    strict: true,
  });
  return model;
}
