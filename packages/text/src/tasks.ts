/**
 * The format of a text classification task (`{ name, labels, train, dev, stats }` of labelled
 * examples), which {@link encodeExamples} encodes, and {@link chunkText}, which cuts a long text
 * into pieces an encoder of fixed length reads whole. Tasks built from corpora (Brown genres,
 * SpamAssassin) are in `@fineprune/corpora`.
 */

import type { BertTokenizer } from './tokenizer';

/**
 * One labelled text.
 *
 * @example
 * ```ts
 * const example: TextExample = { text: 'The jury said …', label: 0, source: 'ca01' };
 * ```
 */
export interface TextExample {
  /** The text to classify. */
  readonly text: string;
  /** Index into the task's `labels`. */
  readonly label: number;
  /** Id of the document the text comes from (all examples of one document share one split). */
  readonly source: string;
}

/**
 * A classification task: label names, a training and a development split, and facts about how
 * they were built.
 *
 * @example
 * ```ts
 * const train = [{ text: 'A fine day.', label: 1, source: 'doc-1' }];
 * const task: TextTask = { name: 'toy', labels: ['no', 'yes'], train, dev: [], stats: {} };
 * console.log(task.labels[task.train[0]!.label]); // 'yes'
 * ```
 */
export interface TextTask<Stats = unknown> {
  /** Task name, e.g. `brown-genre`. */
  readonly name: string;
  /** Label names; a label is an index here. */
  readonly labels: readonly string[];
  /** Training examples, in document order (shuffle with {@link encodeExamples}). */
  readonly train: readonly TextExample[];
  /** Development examples, in document order. */
  readonly dev: readonly TextExample[];
  /** How the task was built (counts per class and split, removed items). */
  readonly stats: Stats;
}

/** BERT's punctuation (ASCII symbol ranges and Unicode P*), at which BertPreTokenizer splits. */
const PUNCTUATION = /[!-/:-@[-`{-~]|\p{P}/u;

/**
 * Cuts a text into consecutive chunks of at most `budget` wordpieces, at whitespace (or, inside
 * an over-long word, at punctuation, where BERT's pre-tokenizer splits too), so that tokenizing a
 * chunk's text gives exactly the wordpieces it was counted with and the chunks together give the
 * text's. A single unbreakable word of more than `budget` wordpieces becomes one over-long chunk
 * (counted in `overlong`; impossible for `budget ≥ 100`, WordPiece's word limit).
 *
 * @param tokenizer - Counts wordpieces.
 * @param text - The text.
 * @param budget - Most wordpieces per chunk.
 * @param cache - Wordpiece counts per word, shared across calls to save time.
 * @returns Chunk texts (slices of `text`), the total wordpieces and the over-long chunk count.
 *
 * @example
 * ```ts
 * chunkText(tokenizer, 'hello, world! unaffable', 3);
 * // { chunks: ['hello,', 'world!', 'unaffable'], wordpieces: 7, overlong: 0 }
 * ```
 */
export function chunkText(
  tokenizer: BertTokenizer,
  text: string,
  budget: number,
  cache: Map<string, number> = new Map(),
): { chunks: string[]; wordpieces: number; overlong: number } {
  const count = (unit: string) => {
    let pieces = cache.get(unit);
    if (pieces === undefined) {
      pieces = tokenizer.tokenIds(unit).length;
      cache.set(unit, pieces);
    }
    return pieces;
  };
  const units: { start: number; end: number; pieces: number }[] = [];
  for (const match of text.matchAll(/\S+/g)) {
    const start = match.index!;
    const word = match[0];
    const pieces = count(word);
    if (pieces <= budget) {
      units.push({ start, end: start + word.length, pieces });
      continue;
    }
    // Too long for one chunk: split at punctuation, where the pre-tokenizer splits anyway.
    let from = 0;
    for (let i = 0; i <= word.length; i++) {
      const atEnd = i === word.length;
      if (!atEnd && !PUNCTUATION.test(word[i]!)) continue;
      if (i > from) units.push({ start: start + from, end: start + i, pieces: count(word.slice(from, i)) });
      if (!atEnd) units.push({ start: start + i, end: start + i + 1, pieces: count(word[i]!) });
      from = i + 1;
    }
  }
  const chunks: string[] = [];
  let wordpieces = 0;
  let overlong = 0;
  let first = 0;
  let used = 0;
  const flush = (end: number) => {
    if (end > first) {
      chunks.push(text.slice(units[first]!.start, units[end - 1]!.end));
      if (used > budget) overlong++;
    }
    first = end;
    used = 0;
  };
  for (let i = 0; i < units.length; i++) {
    const pieces = units[i]!.pieces;
    wordpieces += pieces;
    if (pieces === 0) continue;
    if (used + pieces > budget && used > 0) flush(i);
    used += pieces;
  }
  flush(units.length);
  return { chunks, wordpieces, overlong };
}
